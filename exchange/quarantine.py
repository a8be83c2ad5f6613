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

from sqlalchemy import Connection, Engine, Select, select

from exchange.db import upsert_insert
from exchange.staging import json_bytes
from exchange.tables import batches, quarantine, validation_runs, withheld

__all__ = [
    "QuarantinedRecord",
    "WithheldValue",
    "canonical_payload",
    "list_quarantined",
    "payload_hash",
    "quarantine_records",
    "quarantined_record",
    "record_validation_run",
    "release_replayed",
    "replayable_records",
    "withhold_values",
]


def canonical_payload(payload: Mapping[str, object]) -> str:
    """Compact JSON with sorted keys: equal records give equal text whatever order their keys arrived in.

    NaN is allowed on purpose: a source that sends it must still get its record quarantined, not a crash. A lone
    surrogate is kept as its JSON escape, which every database stores (no UTF-8 encoder takes the character
    itself), and NUL is escaped by JSON already (PostgreSQL text cannot hold it).
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return json_bytes(text).decode()


def payload_hash(payload: Mapping[str, object]) -> str:
    """The key a record is quarantined under: sha256 of its canonical JSON."""
    return hashlib.sha256(canonical_payload(payload).encode()).hexdigest()


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
        digest = hashlib.sha256(text.encode()).hexdigest()  # payload_hash, without writing the JSON twice
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


@dataclass(frozen=True)
class QuarantinedRecord:
    """One quarantined record: why, under which contract version, from which run and batch, and what was sent."""

    id: int
    dataset: str
    reasons: list[str]
    contract_version: str
    run_id: str
    batch_id: str
    quarantined_at: datetime
    payload: str
    payload_hash: str


def _records(query: Select[tuple[object, ...]], conn: Connection) -> list[QuarantinedRecord]:
    return [
        QuarantinedRecord(
            row.id,
            row.dataset,
            json.loads(row.reasons),
            row.contract_version,
            row.run_id,
            row.batch_id,
            row.quarantined_at,
            row.payload,
            row.payload_hash,
        )
        for row in conn.execute(query)
    ]


def _filtered(dataset: str | None, reason: str | None) -> Select[tuple[object, ...]]:
    query = select(quarantine).order_by(quarantine.c.id)
    if dataset is not None:
        query = query.where(quarantine.c.dataset == dataset)
    if reason is not None:  # reasons is a JSON array of codes: match the quoted code, never a part of another
        query = query.where(quarantine.c.reasons.contains(json.dumps(reason), autoescape=True))
    return query


def list_quarantined(
    engine: Engine, *, dataset: str | None = None, reason: str | None = None, after_id: int = 0, limit: int = 100
) -> list[QuarantinedRecord]:
    """Quarantined records by id, optionally of one dataset or with one reason; page with ``after_id``."""
    with engine.connect() as conn:
        return _records(_filtered(dataset, reason).where(quarantine.c.id > after_id).limit(limit), conn)


def quarantined_record(engine: Engine, record_id: int) -> QuarantinedRecord | None:
    with engine.connect() as conn:
        found = _records(select(quarantine).where(quarantine.c.id == record_id), conn)
    return found[0] if found else None


def replayable_records(
    conn: Connection, *, dataset: str, source: str, ids: Sequence[int] | None = None, reason: str | None = None
) -> list[QuarantinedRecord]:
    """The records of ``dataset`` that runs of ``source`` quarantined (their batch is one of its batches): raw
    records as the connector read them, which its stream can read again. What the device gateway quarantined under
    the same dataset came from another path and is left alone."""
    of_source = select(batches.c.batch_id).where(batches.c.source == source)
    query = _filtered(dataset, reason).where(quarantine.c.batch_id.in_(of_source))
    if ids is not None:
        query = query.where(quarantine.c.id.in_(list(ids)))
    return _records(query, conn)


def release_replayed(conn: Connection, replayed: Mapping[str, str], *, keep: set[str] | None = None) -> int:
    """Delete replayed quarantine rows (``replayed``: id → payload hash, as staged), only those whose hash is in
    ``keep`` when given; returns how many went. Rows are matched by id and hash both, so a rerun finds them gone
    and a record quarantined again since (a new id) is never taken for the one that was replayed."""
    from sqlalchemy import and_, or_

    chosen = [(int(record_id), digest) for record_id, digest in replayed.items() if keep is None or digest in keep]
    if not chosen:
        return 0
    match = or_(
        *(and_(quarantine.c.id == record_id, quarantine.c.payload_hash == digest) for record_id, digest in chosen)
    )
    return conn.execute(quarantine.delete().where(match)).rowcount
