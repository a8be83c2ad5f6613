"""Quarantine rows, withheld values and validation-run counts: what quality set aside, and why, kept for review.

Quarantine is keyed by the hash of the record's canonical JSON, so revalidating a batch (a retried task, a rerun
of an interval the source resends) adds each bad record once, however often it arrives. A factor withheld from a
published record (``quality.factors``) is kept the same way, keyed by the record's key, the factor and its raw
fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection

from exchange.db import upsert_insert
from exchange.staging import json_bytes
from exchange.tables import quarantine, validation_runs, withheld

__all__ = ["WithheldValue", "canonical_payload", "quarantine_records", "record_validation_run", "withhold_values"]


def canonical_payload(payload: Mapping[str, object]) -> str:
    """Compact JSON with sorted keys: equal records give equal text whatever order their keys arrived in.

    NaN is allowed on purpose: a source that sends it must still get its record quarantined, not a crash. A lone
    surrogate is kept as its JSON escape, which every database stores (no UTF-8 encoder takes the character
    itself), and NUL is escaped by JSON already (PostgreSQL text cannot hold it).
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return json_bytes(text).decode()


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"quarantine payload holds a {type(value).__name__}; raw records must be JSON values")


def quarantine_records(
    conn: Connection,
    *,
    dataset: str,
    contract_version: str,
    run_id: str,
    batch_id: str,
    entries: Iterable[tuple[Sequence[str], Mapping[str, object]]],
    now: datetime,
) -> int:
    """Store each (reason codes, raw record) once per dataset; returns how many records were new."""
    rows: dict[str, dict[str, object]] = {}
    for reasons, payload in entries:
        text = canonical_payload(payload)
        digest = hashlib.sha256(text.encode()).hexdigest()
        rows.setdefault(
            digest,
            {
                "dataset": dataset,
                "payload_hash": digest,
                "reasons": json.dumps(sorted(set(reasons))),
                "payload": text,
                "contract_version": contract_version,
                "run_id": run_id,
                "batch_id": batch_id,
                "quarantined_at": now,
            },
        )
    if not rows:
        return 0
    statement = (
        upsert_insert(conn, quarantine)
        .on_conflict_do_nothing(index_elements=[quarantine.c.dataset, quarantine.c.payload_hash])
        .returning(quarantine.c.id)
    )
    return len(conn.execute(statement, list(rows.values())).all())


@dataclass(frozen=True)
class WithheldValue:
    """One factor of one published record, published as null: the record's key (JSON), why, and what was sent."""

    key: str
    factor: str
    reasons: Sequence[str]
    raw: Mapping[str, object]


def withhold_values(
    conn: Connection,
    *,
    dataset: str,
    contract_version: str,
    run_id: str,
    batch_id: str,
    values: Iterable[WithheldValue],
    now: datetime,
) -> int:
    """Store each withheld factor value once (per record key, factor and raw fields); returns how many were new."""
    rows: dict[tuple[str, str, str], dict[str, object]] = {}
    for value in values:
        text = canonical_payload(value.raw)
        digest = hashlib.sha256(text.encode()).hexdigest()
        rows.setdefault(
            (value.key, value.factor, digest),
            {
                "dataset": dataset,
                "key": value.key,
                "factor": value.factor,
                "reasons": json.dumps(sorted(set(value.reasons))),
                "raw": text,
                "raw_hash": digest,
                "contract_version": contract_version,
                "run_id": run_id,
                "batch_id": batch_id,
                "withheld_at": now,
            },
        )
    if not rows:
        return 0
    statement = (
        upsert_insert(conn, withheld)
        .on_conflict_do_nothing(
            index_elements=[withheld.c.dataset, withheld.c.key, withheld.c.factor, withheld.c.raw_hash]
        )
        .returning(withheld.c.id)
    )
    return len(conn.execute(statement, list(rows.values())).all())


def record_validation_run(
    conn: Connection,
    *,
    batch_id: str,
    dataset: str,
    run_id: str,
    contract_version: str,
    rows: int,
    valid: int,
    quarantined: int,
    results: Mapping[str, int],
    now: datetime,
) -> None:
    """Counts of one validation of one dataset in one batch; revalidating the batch replaces them."""
    values = {
        "batch_id": batch_id,
        "dataset": dataset,
        "run_id": run_id,
        "contract_version": contract_version,
        "rows": rows,
        "valid": valid,
        "quarantined": quarantined,
        "results": json.dumps(dict(sorted(results.items()))),
        "validated_at": now,
    }
    statement = upsert_insert(conn, validation_runs).values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[validation_runs.c.batch_id, validation_runs.c.dataset],
            set_={name: statement.excluded[name] for name in values if name not in ("batch_id", "dataset")},
        )
    )
