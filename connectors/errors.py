"""Errors of the connectors package, grouped by what the caller should do.

```
ConnectorError
├── SourceConfigError       bad URL, 401/403/404, a request the source refuses: fix settings; never retried
├── SourceUnavailableError  retries exhausted on 429/5xx/timeouts/connection errors, or a Retry-After hint
│                           longer than we wait: Airflow retries the task later
└── SourceDataError         unparseable or malformed page, pagination loop: tell the source's owner
```
A bad *record* is not an exception: it is a quarantine reason (see ``quality``). Messages say what, where and what
to do (STYLE rule 15) and never carry a key, a token or a payload.
"""

from __future__ import annotations

__all__ = ["ConnectorError", "SourceConfigError", "SourceDataError", "SourceUnavailableError"]


class ConnectorError(Exception):
    """Base of every connector error."""


class SourceConfigError(ConnectorError):
    """The source refused us for a reason retrying cannot fix (wrong key, wrong URL): an operator fixes settings."""


class SourceUnavailableError(ConnectorError):
    """The source stayed unreachable or overloaded for the whole retry budget; a later run will likely succeed."""


class SourceDataError(ConnectorError):
    """The source answered, but with something we cannot read as pages; its owner has to fix the feed."""
