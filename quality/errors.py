"""Errors of the quality package, grouped by what the caller should do.

```
QualityError
├── MissingReferenceKeysError  a contract checks references but no known keys were handed in: a caller bug
└── SuiteEvaluationError       Great Expectations could not evaluate an expectation: a bug, not bad data
```
A bad *record* is not an exception: it is a quarantine reason code on its row.
"""

__all__ = ["MissingReferenceKeysError", "QualityError", "SuiteEvaluationError"]


class QualityError(Exception):
    """Base of every quality error."""


class MissingReferenceKeysError(QualityError):
    """Validation was asked to check a reference without the keys it may point at."""


class SuiteEvaluationError(QualityError):
    """An expectation raised inside Great Expectations; nothing was quarantined or published for the batch."""
