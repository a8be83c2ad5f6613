"""Errors of the exchange package, grouped by what the caller should do.

```
ExchangeError
├── StoreUnavailableError   database, broker or object store unreachable: retry the task later
├── StoreConfigError        the object store refuses the keys or its URL is malformed: fix the setting named
├── BatchNotFoundError      a task was handed a batch id that was never staged: rerun from extract
├── CursorExpiredError      a consumer's cursor is older than the retained change log: restart from a snapshot
├── UnknownDatasetError     a consumer asked for a dataset that was never published: check the key
├── InvalidFrameError       publish was handed a frame that breaks its contract (duplicate keys, missing
│                           columns, naive times): a bug in the caller; nothing was written
├── CorruptSnapshotError    a snapshot object is missing or differs from its recorded sha256: do not load it;
│                           restore it or write it again, replay the change log meanwhile
├── SharedTableError        a shared Delta table is ahead of the hub's change log (a hub rebuilt from scratch):
│                           remove the table and sync it again
└── AccessError             a department's request cannot be served as asked: the API answers 4xx
    ├── InvalidTokenError   no such token, wrong secret, expired or revoked: get a new token (401)
    ├── UnknownDepartmentError  the department code is not registered: `waterhub departments list`
    └── InvalidQueryError   a filter, cursor or limit the dataset cannot take: fix the request (400)
```
"""

__all__ = [
    "AccessError",
    "BatchNotFoundError",
    "CorruptSnapshotError",
    "CursorExpiredError",
    "ExchangeError",
    "InvalidFrameError",
    "InvalidQueryError",
    "InvalidTokenError",
    "SharedTableError",
    "StoreConfigError",
    "StoreUnavailableError",
    "UnknownDatasetError",
    "UnknownDepartmentError",
]


class ExchangeError(Exception):
    """Base of every exchange error."""


class StoreUnavailableError(ExchangeError):
    """A backing service (database, broker, object store) could not be reached.

    ``hint`` says what to do, for the CLI's one-line answer; the message already names the service (by host and
    port or by redacted URL, never with credentials).
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class StoreConfigError(ExchangeError):
    """A store that refuses our keys refuses them again on every retry: the operator fixes the named setting."""


class BatchNotFoundError(ExchangeError):
    """The staged batch a task was asked to work on does not exist."""


class CursorExpiredError(ExchangeError):
    """The change log no longer holds entries that far back."""


class SharedTableError(ExchangeError):
    """A shared Delta table cannot follow the change log it was built from."""


class UnknownDatasetError(ExchangeError):
    """The dataset key names nothing the hub has published; ``waterhub datasets`` lists what exists."""


class InvalidFrameError(ExchangeError):
    """The quality runner hands publish a clean frame; one that is not clean is a bug upstream, not bad data."""


class CorruptSnapshotError(ExchangeError):
    """A consumer seeds its copy from a snapshot and trusts it whole, so a damaged one is refused, never repaired."""


class AccessError(ExchangeError):
    """What a department asked for cannot be served as asked; the message is safe to show to that department."""


class InvalidTokenError(AccessError):
    """The bearer token names no live token; the message never repeats the token."""


class UnknownDepartmentError(AccessError):
    """Tokens and grants belong to a registered department, so a typo in its code is refused, not created."""


class InvalidQueryError(AccessError):
    """A filter, cursor or limit the dataset cannot take; ``slug`` is the stable kind of problem it is."""

    def __init__(self, message: str, *, slug: str = "invalid-query") -> None:
        super().__init__(message)
        self.slug = slug
