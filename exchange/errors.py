"""Errors of the exchange package, grouped by what the caller should do.

```
ExchangeError
├── StoreUnavailableError   database, broker or object store unreachable: retry the task later
├── BatchNotFoundError      a task was handed a batch id that was never staged: rerun from extract
└── CursorExpiredError      a consumer's cursor is older than the retained change log: restart from a snapshot
```
"""

__all__ = ["BatchNotFoundError", "CursorExpiredError", "ExchangeError", "StoreUnavailableError"]


class ExchangeError(Exception):
    """Base of every exchange error."""


class StoreUnavailableError(ExchangeError):
    """A backing service (database, broker, object store) could not be reached."""


class BatchNotFoundError(ExchangeError):
    """The staged batch a task was asked to work on does not exist."""


class CursorExpiredError(ExchangeError):
    """The change log no longer holds entries that far back."""
