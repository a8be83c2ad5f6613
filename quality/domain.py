"""Domain rules: what a dataset must satisfy beyond its contract, registered by dataset key.

A rule is checks plus the derived columns they read, so it runs in the same vectorized suite as the contract's own
checks and its failures go to quarantine under their own reason codes. A source's rules live in a module of
``quality.rules`` and register with ``@domain_rule("<dataset key>")``. Those modules are found, not listed: the
first question for rules imports every module of the package, so a rule module cannot silently vanish because
nothing imports it (as the contracts registry finds contract modules). ``build_suite`` adds them to the suite.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import quality.rules
from quality.suite import Check, DerivedColumn

__all__ = ["DomainRule", "domain_rule", "domain_rules_for", "rule_datasets"]


@dataclass(frozen=True)
class DomainRule:
    name: str
    checks: tuple[Check, ...]
    derived: tuple[DerivedColumn, ...] = ()


_RULES: dict[str, list[Callable[[], DomainRule]]] = {}
_loaded = False


def domain_rule(dataset: str) -> Callable[[Callable[[], DomainRule]], Callable[[], DomainRule]]:
    """Register a rule factory for ``dataset``; factories run when a suite is built, so this module stays cheap."""

    def register(factory: Callable[[], DomainRule]) -> Callable[[], DomainRule]:
        _RULES.setdefault(dataset, []).append(factory)
        return factory

    return register


def domain_rules_for(dataset: str) -> Iterator[DomainRule]:
    """The rules registered for ``dataset``, built now (a rule's factory may import pandas)."""
    _load()
    for factory in _RULES.get(dataset, []):
        yield factory()


def rule_datasets() -> set[str]:
    """Every dataset key some rule is registered for: a test holds each to a registered contract, so a rule filed
    under a misspelt key fails loudly instead of never running."""
    _load()
    return set(_RULES)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for info in sorted(pkgutil.iter_modules(quality.rules.__path__, prefix="quality.rules."), key=lambda i: i.name):
        importlib.import_module(info.name)
    _loaded = True
