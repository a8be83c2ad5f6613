"""Authentication as ``httpx.Auth`` objects, so a stream never sees a credential (STYLE rule 4)."""

from __future__ import annotations

from collections.abc import Generator

import httpx
from pydantic import SecretStr

__all__ = ["ApiKeyHeader"]


class ApiKeyHeader(httpx.Auth):
    """Sends a static API key in one request header (the bureau's ``X-Api-Key``).

    The key stays a ``SecretStr`` until the moment the header is written, so it cannot end up in a ``repr``, a log
    line or an error message by accident.
    """

    def __init__(self, header: str, key: SecretStr) -> None:
        self.header = header
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self._key.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return f"ApiKeyHeader(header={self.header!r}, key=SecretStr('**********'))"
