"""The one retry policy of every source: which answers are retried, how long we wait, when we give up.

Retries live here and in Airflow's task ``retries`` only (STYLE rule 5). This layer rides out seconds-long blips
(429, 5xx, timeouts, dropped connections) with jittered exponential backoff, honours ``Retry-After`` up to
``max_retry_after_s`` and bounds both the attempts and the total time; an outage longer than that budget fails the
run, and Airflow tries the whole task again minutes later. What to do with an answer is one table
(``RESPONSE_RULES``, ``EXCEPTION_RULES``), as Airbyte's default error mapping is, so a new status is one line.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_before_delay
from tenacity.wait import wait_exponential_jitter

if TYPE_CHECKING:
    from connectors.http.settings import HttpClientSettings

__all__ = [
    "EXCEPTION_RULES",
    "RESPONSE_RULES",
    "Action",
    "ExceptionRule",
    "ResponseRule",
    "RetriableError",
    "build_retrying",
    "classify_exception",
    "classify_status",
    "retry_after_s",
]


class Action(StrEnum):
    """What the client does with an answer."""

    OK = "ok"
    RETRY = "retry"
    FAIL = "fail"


@dataclass(frozen=True)
class ResponseRule:
    """Statuses, what to do with them, and (for failures) what the operator should check.

    ``hint`` may name ``{key_setting}`` and ``{url_setting}``, filled with the source's environment variables.
    """

    statuses: range
    action: Action
    hint: str = ""


@dataclass(frozen=True)
class ExceptionRule:
    """A transport exception class and what to do when a request raises it."""

    exception: type[Exception]
    action: Action
    hint: str = ""


RESPONSE_RULES: tuple[ResponseRule, ...] = (
    ResponseRule(range(200, 300), Action.OK),
    ResponseRule(range(401, 402), Action.FAIL, "Check the API key ({key_setting})."),
    ResponseRule(range(403, 404), Action.FAIL, "Check that the API key ({key_setting}) may read this path."),
    ResponseRule(range(404, 405), Action.FAIL, "Check the base URL ({url_setting})."),
    ResponseRule(range(408, 409), Action.RETRY),
    ResponseRule(range(429, 430), Action.RETRY),
    ResponseRule(range(500, 600), Action.RETRY),
    ResponseRule(range(300, 400), Action.FAIL, "The source redirects; check the base URL ({url_setting})."),
    ResponseRule(range(400, 500), Action.FAIL, "The source refused the request; check {url_setting} and the stream."),
)
"""First match wins. A status no rule names fails (an unknown answer is not retried blindly)."""

EXCEPTION_RULES: tuple[ExceptionRule, ...] = (
    ExceptionRule(httpx.UnsupportedProtocol, Action.FAIL, "Check the base URL ({url_setting})."),
    ExceptionRule(httpx.InvalidURL, Action.FAIL, "Check the base URL ({url_setting})."),
    ExceptionRule(httpx.LocalProtocolError, Action.FAIL, "Check the source's settings ({url_setting}, {key_setting})."),
    ExceptionRule(httpx.TimeoutException, Action.RETRY),
    ExceptionRule(httpx.TransportError, Action.RETRY),
    ExceptionRule(httpx.DecodingError, Action.RETRY),  # a body cut or garbled in transit (bad gzip, charset)
)
"""Order matters: ``UnsupportedProtocol`` and ``LocalProtocolError`` are ``TransportError`` subclasses."""

_UNKNOWN_STATUS = ResponseRule(range(0), Action.FAIL, "The source answered with an unexpected status.")


def classify_status(status: int) -> ResponseRule:
    """The rule for an HTTP status (first match in ``RESPONSE_RULES``)."""
    for rule in RESPONSE_RULES:
        if status in rule.statuses:
            return rule
    return _UNKNOWN_STATUS


def classify_exception(exc: Exception) -> ExceptionRule | None:
    """The rule for a transport exception, or None for one that is not a transport problem (a bug: let it rise)."""
    for rule in EXCEPTION_RULES:
        if isinstance(exc, rule.exception):
            return rule
    return None


class RetriableError(Exception):
    """One failed attempt worth another; it never leaves the client (exhaustion becomes SourceUnavailableError).

    ``reason`` is short and safe to show: a status (``503``) or a transport problem (``timeout``).
    """

    def __init__(self, reason: str, *, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after_s = retry_after_s


def retry_after_s(response: httpx.Response, now: datetime | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds, or None when there is no usable hint.

    RFC 9110 allows delta-seconds or an HTTP-date. A date is measured against the response's own ``Date`` header
    when there is one, so a server whose clock is off from ours still gets the wait it meant; ``now`` is only the
    fallback (and is injectable so tests need no real clock).
    """
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    when = _http_date(value)
    if when is None:
        return None
    reference = _http_date(response.headers.get("Date", "")) or now or datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def build_retrying(settings: HttpClientSettings, *, sleep: Callable[[float], None] = time.sleep) -> Retrying:
    """A tenacity ``Retrying`` for one request: backoff or the server's hint, bounded in attempts and total time.

    ``stop_before_delay`` (rather than ``stop_after_delay``) gives up *before* a wait that would overrun
    ``max_retry_time_s``, so the budget is a real bound. A hint longer than ``max_retry_after_s`` is not retried
    at all: sleeping an hour inside a task is worse than failing now and letting Airflow come back.
    """
    backoff = wait_exponential_jitter(
        multiplier=settings.backoff_initial_s, max=settings.backoff_max_s, jitter=settings.backoff_initial_s
    )

    def wait(state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, RetriableError) and failure.retry_after_s is not None:
            return failure.retry_after_s
        return backoff(state)

    def worth_retrying(exc: BaseException) -> bool:
        if not isinstance(exc, RetriableError):
            return False
        return exc.retry_after_s is None or exc.retry_after_s <= settings.max_retry_after_s

    return Retrying(
        retry=retry_if_exception(worth_retrying),
        wait=wait,
        stop=stop_after_attempt(settings.max_attempts) | stop_before_delay(settings.max_retry_time_s),
        sleep=sleep,
        reraise=True,
    )
