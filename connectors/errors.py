"""Errors of the connectors package, grouped by what the caller should do.

```
ConnectorError
├── SourceConfigError       bad URL, 401/403/404, a request the source refuses: fix settings; never retried
├── SourceUnavailableError  retries exhausted on 429/5xx/timeouts/connection errors, or a Retry-After hint
│                           longer than we wait: Airflow retries the task later
└── SourceDataError         unparseable or malformed page, pagination loop, a cursor or page token the source
                            refuses (400): tell the source's owner
```
Each carries what a caller or a test reads as data, not text: ``stream`` (``source/stream``), ``status`` (the
last HTTP status, if any), ``attempts`` and ``setting`` (the environment variable to check, when settings are the
likely cause). A bad *record* is not an exception: it is a quarantine reason (see ``quality``). Messages say what,
where and what to do (STYLE rule 15) and never carry a key, a token or a payload.
"""

from __future__ import annotations

__all__ = ["ConnectorError", "SourceConfigError", "SourceDataError", "SourceUnavailableError"]


class ConnectorError(Exception):
    """Base of every connector error.

    ``setting_field`` is the field of the source's settings block at fault (``api_key``), for code that knows the
    field but not the source; the client turns it into ``setting`` (``WATERHUB_WATER_QUALITY__API_KEY``).
    """

    def __init__(
        self,
        message: str,
        *,
        stream: str | None = None,
        status: int | None = None,
        attempts: int | None = None,
        setting: str | None = None,
        setting_field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.stream = stream
        self.status = status
        self.attempts = attempts
        self.setting = setting
        self.setting_field = setting_field


class SourceConfigError(ConnectorError):
    """The source refused us for a reason retrying cannot fix (wrong key, wrong URL): an operator fixes settings."""


class SourceUnavailableError(ConnectorError):
    """The source stayed unreachable or overloaded for the whole retry budget; a later run will likely succeed."""


class SourceDataError(ConnectorError):
    """The source answered, but with something we cannot read as pages; its owner has to fix the feed."""
