"""The one HTTP client of every source: explicit timeout, ``User-Agent``, auth, the retry policy, JSON pages.

A request either returns a parsed page or raises one of the three ``connectors.errors`` a caller can act on;
nothing above this module retries (STYLE rule 5). Pages are parsed with the NaN/Infinity tokens kept as strings:
Python's ``json`` would turn them into float NaN, which looks like a measurement and slips past checks that only
look for missing values, while the string ``"NaN"`` is quarantined by quality with a reason.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx
import msgspec
import structlog

from connectors.errors import ConnectorError, SourceConfigError, SourceDataError, SourceUnavailableError
from connectors.http.paginators import Page
from connectors.http.retry import Action, RetriableError, build_retrying, classify_exception, classify_status
from connectors.http.retry import retry_after_s as read_retry_after_s

if TYPE_CHECKING:
    from connectors.http.settings import HttpClientSettings

__all__ = ["USER_AGENT", "SourceClient", "SourceLabel", "build_client", "parse_json_page"]

USER_AGENT = f"waterhub/{version('waterhub')}"
"""Sent with every request, so a source's operator can tell our traffic apart and reach us."""

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SourceLabel:
    """What an error message needs to say about a source: its name, who runs it, and the settings it really has
    (not every source has an ``API_KEY`` or a ``BASE_URL``): the field holding its address and its credential."""

    name: str
    title: str
    settings_prefix: str
    url_field: str | None = "base_url"
    credential_field: str | None = None

    def setting(self, field: str | None) -> str | None:
        """The environment variable of a field of the source's settings block."""
        return f"{self.settings_prefix}{field.upper()}" if field else None

    @property
    def key_setting(self) -> str | None:
        return self.setting(self.credential_field)

    @property
    def url_setting(self) -> str | None:
        return self.setting(self.url_field)

    def hint(self, template: str) -> str:
        return template.format(
            key_setting=self.key_setting or "the source's credentials",
            url_setting=self.url_setting or "the source's address",
        )


def build_client(base_url: str, auth: httpx.Auth, settings: HttpClientSettings) -> httpx.Client:
    """The httpx client every source uses: one timeout for connect/read/write/pool, our UA, no redirects.

    Redirects are not followed: an API that redirects is usually a wrong base URL landing on a login page, and
    following it would turn a configuration mistake into a confusing parse error.
    """
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        timeout=httpx.Timeout(settings.timeout_s),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        follow_redirects=False,
    )


_FAST_DECODER = msgspec.json.Decoder()


def _keep_token(token: str) -> str:
    return token


def _finite_or_text(text: str) -> float | str:
    """``1e400`` overflows to infinity: keep the text, as for the ``Infinity`` token, so quality can refuse it."""
    value = float(text)
    return value if math.isfinite(value) else text


def parse_json_page(content: bytes) -> object:
    """Parse a page, keeping ``NaN``, ``Infinity``, ``-Infinity`` and overflowing numbers as text (see the module
    docstring): every float on a page is finite, so a staged batch is always valid JSON.

    Raises ``ValueError`` for anything that is not JSON, and ``RecursionError`` for JSON nested deeper than the
    recursion limit; the caller turns either into ``SourceDataError``.

    msgspec parses a page several times faster, to the same values, but refuses what the standard parser takes:
    the tokens above, a number beyond a float, an escape of half a surrogate pair, text in UTF-16 or after a byte
    order mark. A page it refuses is parsed by the standard parser, which keeps or refuses it as it always did.
    """
    try:
        return _FAST_DECODER.decode(content)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return json.loads(content, parse_constant=_keep_token, parse_float=_finite_or_text)


class SourceClient:
    """An open ``httpx.Client`` plus the retry policy: ``get_page`` is the only way streams touch the network.

    ``sleep`` and ``now`` are injectable so tests can record the waits the policy chose; requests still go over
    real sockets.
    """

    def __init__(
        self,
        client: httpx.Client,
        settings: HttpClientSettings,
        label: SourceLabel,
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.label = label
        self._sleep = sleep
        self._now = now

    def close(self) -> None:
        self.client.close()

    def get_page(
        self,
        path: str,
        params: Mapping[str, str | int],
        *,
        stream: str,
        resume: str,
        cursor_params: Collection[str] = (),
    ) -> Page:
        """GET one page with retries and parse it; the page keeps its headers and URL for the paginator.

        ``stream`` and ``resume`` only feed error messages: which stream failed, and where the next run starts.
        ``cursor_params`` name the parameters carrying a watermark or a page token: a 400 to a request carrying
        one is the source refusing that value (an expired token), not a wrong setting.
        """
        where = f"{self.label.name}/{stream}"
        target = f"{path}?{urlencode(params)}" if params else path
        response, attempts = self._with_retries(
            lambda: self.client.get(path, params=dict(params)),
            where=where,
            target=target,
            resume=resume,
            refusable={name for name in cursor_params if name in params},
        )
        outcome = f"Nothing was published; {resume}. Tell the owner of {self.label.title}."
        try:
            return Page(parse_json_page(response.content), response.headers, str(response.url))
        except RecursionError as exc:
            raise SourceDataError(
                f"{where}: GET {target} returned a page nested deeper than Python's recursion limit "
                f"({sys.getrecursionlimit()}) lets it read. {outcome}",
                stream=where,
                status=response.status_code,
                attempts=attempts,
            ) from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise SourceDataError(
                f"{where}: GET {target} returned a page that is not valid JSON ({type(exc).__name__} at byte "
                f"{getattr(exc, 'pos', '?')} of {len(response.content)}). {outcome}",
                stream=where,
                status=response.status_code,
                attempts=attempts,
            ) from exc

    def post_json(self, path: str, body: Mapping[str, object], *, headers: Mapping[str, str], what: str) -> object:
        """POST ``body`` as JSON with the same retries as a page, and parse the answer; ``what`` names the request in
        errors ("river_chief/reports"). Only for requests the receiver makes idempotent (an ``Idempotency-Key``):
        a retry after a lost answer must not do the thing twice."""
        where = f"{self.label.name}/{what}"
        response, attempts = self._with_retries(
            lambda: self.client.post(path, json=dict(body), headers=dict(headers)),
            where=where,
            target=path,
            resume="the next run sends it again",
            refusable=set(),
            method="POST",
        )
        try:
            return parse_json_page(response.content)
        except (ValueError, RecursionError, UnicodeDecodeError) as exc:
            raise SourceDataError(
                f"{where}: POST {path} was answered with something that is not JSON ({type(exc).__name__}). "
                f"Tell the owner of {self.label.title}.",
                stream=where,
                status=response.status_code,
                attempts=attempts,
            ) from exc

    def _with_retries(
        self,
        send: Callable[[], httpx.Response],
        *,
        where: str,
        target: str,
        resume: str,
        refusable: Collection[str],
        method: str = "GET",
    ) -> tuple[httpx.Response, int]:
        """``send`` with the retry policy: the successful answer and the attempts it took, or the error a caller
        can act on."""
        started = time.monotonic()
        attempts = 0
        response: httpx.Response | None = None
        try:
            for attempt in build_retrying(self.settings, sleep=self._sleep):
                with attempt:
                    attempts += 1
                    try:
                        response = self._attempt(
                            send, where=where, target=f"{method} {target}", attempts=attempts, refusable=refusable
                        )
                    except RetriableError as exc:
                        log.info(
                            "request_failed",
                            source=self.label.name,
                            stream=where.partition("/")[2],
                            target=target,
                            attempt=attempts,
                            reason=exc.reason,
                            retry_after_s=exc.retry_after_s,
                        )
                        raise
        except RetriableError as exc:
            elapsed = time.monotonic() - started
            raise self._unavailable(
                exc, where=where, target=f"{method} {target}", attempts=attempts, elapsed_s=elapsed, resume=resume
            ) from exc
        except ConnectorError as exc:
            if exc.stream is not None:  # already said where and what to do
                raise
            setting = exc.setting or self.label.setting(exc.setting_field)
            raise type(exc)(
                f"{where}: {method} {target}: {exc} Nothing was published. Check {setting or 'the source settings'}.",
                stream=where,
                status=exc.status,
                attempts=attempts,
                setting=setting,
            ) from exc
        assert response is not None  # noqa: S101 - the loop only ends without raising after a successful attempt
        return response, attempts

    def _attempt(
        self,
        send: Callable[[], httpx.Response],
        *,
        where: str,
        target: str,
        attempts: int,
        refusable: Collection[str],
    ) -> httpx.Response:
        try:
            response = send()
        except httpx.HTTPError as exc:
            transport_rule = classify_exception(exc)
            if transport_rule is None:
                raise
            if transport_rule.action is Action.RETRY:
                what = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection failed"
                raise RetriableError(f"{what}: {type(exc).__name__}") from exc
            raise SourceConfigError(
                f"{where}: {target} could not be sent ({type(exc).__name__}). Nothing was published. "
                f"{self.label.hint(transport_rule.hint)}",
                stream=where,
                attempts=attempts,
                setting=self._setting_of(transport_rule.hint),
            ) from exc
        rule = classify_status(response.status_code)
        if rule.action is Action.OK:
            return response
        if rule.action is Action.RETRY:
            now = self._now() if self._now is not None else None
            raise RetriableError(
                str(response.status_code),
                status=response.status_code,
                retry_after_s=read_retry_after_s(response, now),
            )
        status = response.status_code
        refused = sorted(refusable)
        if status == 400 and refused:
            raise SourceDataError(
                f"{where}: {target} was refused (400 {response.reason_phrase}) for the value of "
                f"{', '.join(refused)} we sent: a watermark or page token the source no longer accepts, not a "
                "setting. Nothing was published; the next run starts again from the stored watermark. If it "
                f"persists, tell the owner of {self.label.title}.",
                stream=where,
                status=status,
                attempts=attempts,
            )
        raise SourceConfigError(
            f"{where}: {target} was refused ({status} {response.reason_phrase}). "
            f"Nothing was published; this is not retried. {self.label.hint(rule.hint)}",
            stream=where,
            status=status,
            attempts=attempts,
            setting=self._setting_of(rule.hint),
        )

    def _setting_of(self, hint: str) -> str | None:
        """The variable a rule's hint tells the operator to check: the credential's before the address's."""
        if "{key_setting}" in hint and self.label.key_setting:
            return self.label.key_setting
        return self.label.url_setting if "{url_setting}" in hint else None

    def _unavailable(
        self, exc: RetriableError, *, where: str, target: str, attempts: int, elapsed_s: float, resume: str
    ) -> SourceUnavailableError:
        limit = self.settings.max_retry_after_s
        if exc.retry_after_s is not None and exc.retry_after_s > limit:
            return SourceUnavailableError(
                f"{where}: {target} answered {exc.reason} asking us to retry after {exc.retry_after_s:.0f} s, "
                f"longer than the {limit:.0f} s we wait (WATERHUB_HTTP__MAX_RETRY_AFTER_S). Nothing was published; "
                f"{resume}. Airflow retries the task later.",
                stream=where,
                status=exc.status,
                attempts=attempts,
                setting="WATERHUB_HTTP__MAX_RETRY_AFTER_S",
            )
        times = "once" if attempts == 1 else f"{attempts} times"
        return SourceUnavailableError(
            f"{where}: {target} failed {times} in {elapsed_s:.0f} s ({exc.reason}). Nothing was published; "
            f"{resume}. Check that {self.label.title} is up.",
            stream=where,
            status=exc.status,
            attempts=attempts,
        )
