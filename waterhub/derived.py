"""Derived datasets: declared once in ``derived.toml``, computed from their inputs' changes, published like sources.

A derivation is a function (``Derive``) from the keys its inputs changed to the rows of its outputs. The runner
here gives it those keys and publishes what it returns through ``exchange.publish.publish_frame``, the one write
path (change log, outbox, newer data wins), in one transaction that also advances the derivation's position in
each input's change log (``exchange.derived_state``). So a failed run moves nothing, a rerun with no new input
changes writes nothing, and only the keys an input change touched are recomputed.

The runner owns the version of every derived row: the contract's ``version_field`` is an integer, set to the sum of
the inputs' sequences the run derived up to. Positions only grow, so a later run's rows are always newer and a late
retry of an older run can never write its results over them; a tombstone carries the same version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

import structlog
from sqlalchemy import Connection

from contracts import Contract, get_contract
from waterhub.hub import Hub
from waterhub.settings import Settings
from waterhub.sources import declaration_tables, imported

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DERIVED_FILE",
    "Derivation",
    "DerivationInputs",
    "Derive",
    "DerivedDeclaration",
    "DerivedRows",
    "declared_derivations",
    "derivation_declaration",
]

log = structlog.get_logger(__name__)

DERIVED_FILE = Path(__file__).with_name("derived.toml")
_KEYS = frozenset({"title", "derivation", "owner", "inputs", "outputs"})


@dataclass(frozen=True)
class DerivationInputs:
    """What a derivation reads: the keys each input changed since the last run, and the hub's tables through
    ``conn`` (inside the publishing transaction)."""

    conn: Connection
    changes: Mapping[str, pd.DataFrame]
    """Input dataset → the primary keys its change log named since the last run (deleted keys too), typed as its
    table holds them. Empty frames for inputs that did not change."""


@dataclass(frozen=True)
class DerivedRows:
    """One output's recomputed rows (every field of its contract but the version field, which the runner sets) and
    the keys that no longer derive from anything (deleted)."""

    rows: pd.DataFrame
    deleted: pd.DataFrame | None = None
    """Primary-key columns of rows to delete; None: nothing to delete."""


Derive = Callable[[DerivationInputs], Mapping[str, DerivedRows]]
"""A derivation: output dataset key → its recomputed rows, for every output declared."""


@dataclass(frozen=True)
class DerivedDeclaration:
    """One derived dataset as ``derived.toml`` declares it."""

    name: str
    title: str
    derivation: str
    owner: str
    inputs: tuple[str, ...]
    outputs: Mapping[str, str]
    """Short name (the DAG's ``changed_<name>`` task) → output dataset key."""

    def function(self) -> Derive:
        found = imported(self.derivation)
        if not callable(found):
            raise TypeError(f"{DERIVED_FILE.name}: {self.name}.derivation = {self.derivation!r} is not callable")
        return cast("Derive", found)

    def output_contracts(self) -> list[type[Contract]]:
        """Each output's contract; its version field must be an integer the runner can set."""
        contracts = [get_contract(key) for key in self.outputs.values()]
        for contract in contracts:
            if contract.field_spec(contract.meta.version_field).type != "integer":
                raise TypeError(
                    f"{contract.meta.key}: a derived dataset's version field ({contract.meta.version_field}) must be "
                    "an integer: the runner sets it to the inputs' sequence the row was derived at"
                )
        return contracts


@cache
def declared_derivations() -> dict[str, DerivedDeclaration]:
    """Every declared derivation by name, in file order."""
    return {
        name: DerivedDeclaration(name=name, **{**entry, "inputs": tuple(entry["inputs"])})
        for name, entry in declaration_tables(DERIVED_FILE, _KEYS).items()
    }


def derivation_declaration(name: str) -> DerivedDeclaration:
    try:
        return declared_derivations()[name]
    except KeyError:
        known = ", ".join(declared_derivations())
        raise KeyError(f"no derived dataset {name!r} in {DERIVED_FILE.name}; declared: {known}") from None


class Derivation(Hub):
    """The steps of one derived dataset's DAG, bound to one hub from ``Settings``."""

    def __init__(self, settings: Settings, name: str) -> None:
        super().__init__(settings)
        self.declaration = derivation_declaration(name)

    @classmethod
    def from_environment(cls, name: str) -> Derivation:
        """For DAG tasks: a task is an entry point, so it is where Settings are read."""
        return cls(Settings(), name)

    def publish(self, *, run_id: str, now: datetime | None = None) -> list[str]:
        """Derive from the inputs' changes since the last run and publish, in one transaction; returns the output
        datasets that changed (what the DAG emits Asset events for)."""
        from exchange.derived_state import advance_input_position, changed_keys, input_positions, last_seqs
        from exchange.publish import publish_frame

        now = now or datetime.now(UTC)
        declaration = self.declaration
        contracts = declaration.output_contracts()
        with structlog.contextvars.bound_contextvars(derivation=declaration.name, run_id=run_id):
            with self.engine.begin() as conn:
                up_to = last_seqs(conn, declaration.inputs)
                since = input_positions(conn, declaration.name, declaration.inputs)
                if up_to == since:
                    log.info("derivation_up_to_date", positions=since)
                    return []
                changes = {
                    dataset: changed_keys(conn, get_contract(dataset), since[dataset], up_to[dataset])
                    for dataset in declaration.inputs
                }
                derived = declaration.function()(DerivationInputs(conn, changes))
                if set(derived) != {contract.meta.key for contract in contracts}:
                    raise ValueError(
                        f"{declaration.derivation} returned {sorted(derived)}, not the outputs declared for "
                        f"{declaration.name}: {sorted(declaration.outputs.values())}"
                    )
                version = sum(up_to.values())
                changed = []
                for contract in contracts:
                    output = derived[contract.meta.key]
                    result = publish_frame(
                        conn,
                        contract,
                        _versioned(contract, output.rows, version),
                        run_id=run_id,
                        now=now,
                        tombstones=None if output.deleted is None else _versioned(contract, output.deleted, version),
                    )
                    if result.changed:
                        changed.append(contract.meta.key)
                for dataset, seq in up_to.items():
                    advance_input_position(conn, declaration.name, dataset, seq, run_id=run_id, now=now)
            log.info(
                "derivation_published",
                changes={dataset: len(keys) for dataset, keys in changes.items()},
                positions=up_to,
                changed=changed,
            )
            return changed

    def notify(self, now: datetime | None = None) -> dict[str, int]:
        """Send what the outbox holds, as a source DAG's notify does."""
        from waterhub.pipeline import send_outbox

        return {"sent": send_outbox(self.settings, self.engine, self.declaration.name, now=now or datetime.now(UTC))}

    def snapshot(self, now: datetime | None = None) -> dict[str, str]:
        """A Parquet snapshot of each output at its last sequence, unless one exists for that sequence. An output
        never published (no input has published yet) has nothing to snapshot."""
        from sqlalchemy import select

        from exchange.snapshots import write_snapshot
        from exchange.tables import datasets

        now = now or datetime.now(UTC)
        with self.engine.connect() as conn:
            published = set(conn.execute(select(datasets.c.key)).scalars())
        return {
            contract.meta.key: write_snapshot(self.engine, self.store, contract, now=now).uri
            for contract in self.declaration.output_contracts()
            if contract.meta.key in published
        }


def _versioned(contract: type[Contract], frame: pd.DataFrame, version: int) -> pd.DataFrame:
    return frame.assign(**{contract.meta.version_field: version})
