"""Authentication as ``httpx.Auth`` objects, so a stream never sees a credential (STYLE rule 4).

Each auth names the field of the source's settings block that holds its credential (``setting_field``), so an
error about a refused credential names the variable the operator actually has to fix.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Generator

import httpx
from pydantic import SecretStr

from connectors.errors import SourceConfigError
from connectors.http.retry import Action, RetriableError, classify_status

__all__ = ["ApiKeyHeader", "OAuth2ClientCredentials"]


class ApiKeyHeader(httpx.Auth):
    """Sends a static API key in one request header (the bureau's ``X-Api-Key``).

    The key stays a ``SecretStr`` until the moment the header is written, so it cannot end up in a ``repr``, a log
    line or an error message by accident.
    """

    def __init__(self, header: str, key: SecretStr, *, setting_field: str = "api_key") -> None:
        self.header = header
        self.setting_field = setting_field
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self._key.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return f"ApiKeyHeader(header={self.header!r}, key=SecretStr('**********'))"


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth 2.0 client credentials (RFC 6749 §4.4): a bearer token from ``token_url``, fetched when first needed,
    fetched again ``leeway_s`` before it expires, and once more when the API answers 401 anyway (a token revoked or
    expired early mid-run). A second 401 with a fresh token is the API's answer, and is passed on.

    The token endpoint's failures are judged by the same table as any answer: 429 and 5xx are retried by the
    client, a refusal is a settings problem naming ``client_secret``'s variable. The token and the secret never
    appear in a repr, a log line or an error.
    """

    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        scope: str | None = None,
        leeway_s: float = 30.0,
        setting_field: str = "client_secret",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self.leeway_s = leeway_s
        self.setting_field = setting_field
        self.tokens_fetched = 0
        self._secret = client_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: SecretStr | None = None
        self._expires_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None or self._clock() >= self._expires_at - self.leeway_s:
            yield from self._fetch_token(request)
        response = yield self._signed(request)
        if response.status_code == 401:
            yield from self._fetch_token(request)
            yield self._signed(request)

    def _signed(self, request: httpx.Request) -> httpx.Request:
        assert self._token is not None  # noqa: S101 - _fetch_token ran before, or raised
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return request

    def _fetch_token(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        form = {"grant_type": "client_credentials", "client_id": self.client_id}
        form["client_secret"] = self._secret.get_secret_value()
        if self.scope:
            form["scope"] = self.scope
        asked_at = self._clock()
        response = yield httpx.Request("POST", request.url.join(self.token_url), data=form)
        response.read()
        rule = classify_status(response.status_code)
        if rule.action is Action.RETRY:
            raise RetriableError(f"token {response.status_code}", status=response.status_code)
        if rule.action is not Action.OK:
            raise SourceConfigError(
                f"the token endpoint {self.token_url} refused our client credentials ({response.status_code}).",
                status=response.status_code,
                setting_field=self.setting_field,
            )
        try:
            body = json.loads(response.content)
            token, lifetime = str(body["access_token"]), float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise SourceConfigError(
                f"the token endpoint {self.token_url} answered without a usable access_token ({type(exc).__name__}).",
                status=response.status_code,
                setting_field=self.setting_field,
            ) from exc
        with self._lock:
            self._token, self._expires_at = SecretStr(token), asked_at + lifetime
            self.tokens_fetched += 1

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r})"
