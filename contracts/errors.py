"""Errors of the contracts package, grouped by what the caller should do.

```
ContractError
├── UnknownContractError     no contract under that key/version: fix the name
└── IncompatibleChangeError  a change breaks consumers without a major version bump: bump it
```
A bad *record* is not an exception: it is a quarantine reason (see ``quality``).
"""

__all__ = ["ContractError", "IncompatibleChangeError", "UnknownContractError"]


class ContractError(Exception):
    """Base of every contract error."""


class UnknownContractError(ContractError, KeyError):
    """The registry has no contract under the key (and version) asked for."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown contract"


class IncompatibleChangeError(ContractError):
    """A new contract version breaks its consumers but keeps the old major version."""
