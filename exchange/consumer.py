"""The read side a consuming department sees: which datasets exist, and what changed since the last sequence seen.

A consumer keeps the last ``seq`` it processed and asks for what came after; sequence numbers are gapless per
dataset, so a jump tells it something went wrong rather than silently skipping changes.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from exchange.errors import UnknownDatasetError
from exchange.tables import change_log, datasets, published_keys, quarantine

__all__ = [
    "MAX_LIMIT",
    "MAX_SEQ",
    "ChangeEntry",
    "DatasetSummary",
    "changes_since",
    "list_datasets",
    "quarantined_counts",
]

MAX_SEQ = 2**63 - 1
"""Sequence numbers are BIGINT: no entry lies beyond this, and the database refuses to compare with a larger one."""
MAX_LIMIT = 100_000
"""The most entries one call returns: a consumer pages with ``since``, and one answer must fit in memory."""
_SHOWN_KEY_CHARS = 100


@dataclass(frozen=True)
class DatasetSummary:
    key: str
    contract_version: str
    rows: int
    last_seq: int
    last_published_at: datetime | None
    quarantined: int


@dataclass(frozen=True)
class ChangeEntry:
    """One change-log entry; ``key`` holds the primary-key values, timestamps as ISO 8601 UTC strings."""

    dataset: str
    seq: int
    key: list[object]
    op: str
    contract_version: str
    run_id: str
    changed_at: datetime


def list_datasets(engine: Engine) -> list[DatasetSummary]:
    """Every dataset that has a row in ``datasets`` (published at least once, if only an empty batch), by key."""
    held = (
        select(quarantine.c.dataset, func.count().label("quarantined")).group_by(quarantine.c.dataset).subquery("held")
    )
    query = (
        select(
            datasets.c.key,
            datasets.c.contract_version,
            datasets.c.row_count,
            datasets.c.last_seq,
            datasets.c.last_published_at,
            func.coalesce(held.c.quarantined, 0),
        )
        .select_from(datasets.outerjoin(held, held.c.dataset == datasets.c.key))
        .order_by(datasets.c.key)
    )
    with engine.connect() as conn:
        return [
            DatasetSummary(key, version, int(rows), int(last_seq), published_at, int(held_count))
            for key, version, rows, last_seq, published_at, held_count in conn.execute(query)
        ]


def changes_since(engine: Engine, dataset: str, since: int, *, limit: int = 1000) -> list[ChangeEntry]:
    """Entries with ``seq > since``, oldest first, at most ``limit``; resume with the last ``seq`` returned.

    Arguments outside what the store holds are refused here, before a query, so a caller gets one clear sentence
    rather than the driver's overflow error with the SQL attached.
    """
    if not 0 <= since <= MAX_SEQ:
        raise ValueError(f"since must be a sequence number from 0 to {MAX_SEQ} (2^63-1), got {_shown_int(since)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be from 1 to {MAX_LIMIT:,}, got {_shown_int(limit)}; page with since instead")
    with engine.connect() as conn:
        known = conn.execute(select(datasets.c.key).where(datasets.c.key == dataset)).first()
        if known is None:
            raise UnknownDatasetError(f"no published dataset {_shown_key(dataset)}; published: {published_keys(conn)}")
        rows = conn.execute(
            select(change_log)
            .where(change_log.c.dataset == dataset, change_log.c.seq > since)
            .order_by(change_log.c.seq)
            .limit(limit)
        ).mappings()
        return [
            ChangeEntry(
                dataset=row["dataset"],
                seq=int(row["seq"]),
                key=list(json.loads(row["key"])),
                op=row["op"],
                contract_version=row["contract_version"],
                run_id=row["run_id"],
                changed_at=row["changed_at"],
            )
            for row in rows
        ]


def _shown_key(dataset: str) -> str:
    """A dataset key as an error repeats it: a caller's 5,000-character key is cut, not echoed whole."""
    return repr(dataset if len(dataset) <= _SHOWN_KEY_CHARS else f"{dataset[:_SHOWN_KEY_CHARS]}…")


def _shown_int(value: int) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"{text[:30]}… ({len(text)} digits)"


def quarantined_counts(engine: Engine, dataset: str) -> dict[str, int]:
    """Quarantined records per reason code (a record with two reasons counts under both), by reason.

    A dataset may have quarantined records before it was ever published (every row bad), so an unknown key is
    not an error here: it simply has no counts.
    """
    counts: Counter[str] = Counter()
    with engine.connect() as conn:
        for reasons in conn.execute(select(quarantine.c.reasons).where(quarantine.c.dataset == dataset)).scalars():
            counts.update(json.loads(reasons))
    return dict(sorted(counts.items()))
