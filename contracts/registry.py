"""The one list of contracts, by key and version, and the compatibility rule between versions.

Contract modules are found, not listed: on first use every module of the ``contracts`` package is imported and each
``Contract`` subclass with its own ``meta`` defined there is registered. A new contract module therefore cannot be
left out by forgetting a list, and importing the registry stays cheap until a contract is asked for.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import contracts
from contracts.base import Contract, FieldSpec
from contracts.errors import IncompatibleChangeError, UnknownContractError

__all__ = [
    "all_contracts",
    "breaking_changes",
    "check_compatible",
    "contract_modules",
    "get_contract",
    "register",
    "registered_elsewhere",
]

_REGISTRY: dict[tuple[str, str], type[Contract]] = {}
_loaded = False


def register(contract: type[Contract]) -> type[Contract]:
    """Add a contract; registering a second class under the same key and version is a mistake."""
    ident = (contract.meta.key, contract.meta.version)
    existing = _REGISTRY.get(ident)
    if existing is not None and existing is not contract:
        raise ValueError(f"{ident[0]} {ident[1]} is registered twice ({existing.__name__}, {contract.__name__})")
    _REGISTRY[ident] = contract
    return contract


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module_name in contract_modules():
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Contract)
                and "meta" in vars(value)
                and value.__module__ == module_name
            ):
                register(value)
    _loaded = True


def contract_modules() -> list[str]:
    """Every module of the ``contracts`` package, in name order: the places a contract may be defined."""
    return sorted(info.name for info in pkgutil.iter_modules(contracts.__path__, prefix="contracts."))


def registered_elsewhere() -> list[type[Contract]]:
    """The contracts registered so far from outside the ``contracts`` package's modules (a test's, an extension's):
    those the package's module files do not stand for."""
    modules = set(contract_modules())
    return [contract for contract in _REGISTRY.values() if contract.__module__ not in modules]


def all_contracts() -> Iterator[type[Contract]]:
    """Every registered contract, by key, oldest version first."""
    _load()
    yield from (contract for _, contract in sorted(_REGISTRY.items(), key=lambda item: _order(item[1])))


def _order(contract: type[Contract]) -> tuple[str, tuple[int, int, int]]:
    return contract.meta.key, contract.meta.version_tuple


def get_contract(key: str, version: str | None = None) -> type[Contract]:
    """The contract under ``key``: the given version, or the newest one."""
    _load()
    versions = [contract for (k, _), contract in _REGISTRY.items() if k == key]
    if version is not None:
        versions = [contract for contract in versions if contract.meta.version == version]
    if not versions:
        known = ", ".join(sorted({k for k, _ in _REGISTRY})) or "none"
        wanted = f"{key} {version}" if version else key
        raise UnknownContractError(f"no contract {wanted}; registered: {known}")
    return max(versions, key=lambda contract: contract.meta.version_tuple)


def breaking_changes(old: type[Contract], new: type[Contract]) -> list[str]:
    """What in ``new`` would break a consumer of ``old``: removed or retyped fields, tighter rules, a new key."""
    problems: list[str] = []
    if old.meta.primary_key != new.meta.primary_key:
        problems.append(f"primary key changed {old.meta.primary_key} -> {new.meta.primary_key}")
    new_specs = {spec.name: spec for spec in new.field_specs()}
    for before in old.field_specs():
        after = new_specs.pop(before.name, None)
        if after is None:
            problems.append(f"field {before.name} removed")
            continue
        problems.extend(f"field {before.name}: {change}" for change in _field_changes(before, after))
    problems.extend(f"field {spec.name} added as required" for spec in new_specs.values() if not spec.nullable)
    return problems


def _field_changes(before: FieldSpec, after: FieldSpec) -> list[str]:
    changes = []
    if before.type != after.type:
        changes.append(f"type {before.type} -> {after.type}")
    if before.nullable and not after.nullable:
        changes.append("no longer nullable")
    if _tighter(before.minimum, after.minimum, lower=True) or _tighter(before.maximum, after.maximum, lower=False):
        changes.append("range narrowed")
    if after.allowed is not None and not set(after.allowed) >= set(before.allowed or after.allowed):
        changes.append("allowed values narrowed")
    if after.allowed is not None and before.allowed is None:
        changes.append("allowed values introduced")
    if after.pattern != before.pattern and after.pattern is not None:
        changes.append(f"pattern {before.pattern} -> {after.pattern}")
    if after.earliest is not None and (before.earliest is None or after.earliest > before.earliest):
        changes.append("earliest plausible time raised")
    return changes


def _tighter(before: float | None, after: float | None, *, lower: bool) -> bool:
    if after is None:
        return False
    if before is None:
        return True
    return after > before if lower else after < before


def check_compatible(old: type[Contract], new: type[Contract]) -> None:
    """Refuse a new version that breaks consumers unless its major version moved up."""
    if new.meta.version_tuple <= old.meta.version_tuple:
        raise IncompatibleChangeError(
            f"{new.meta.key}: version {new.meta.version} must be greater than {old.meta.version}"
        )
    problems = breaking_changes(old, new)
    if problems and new.meta.major == old.meta.major:
        raise IncompatibleChangeError(
            f"{new.meta.key} {new.meta.version} breaks {old.meta.version} consumers ({'; '.join(problems)}); "
            f"publish it as {old.meta.major + 1}.0.0 side by side with the old version"
        )
