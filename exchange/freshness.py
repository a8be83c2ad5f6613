"""Freshness: has each dataset's source published within the interval it is expected to?

A source "published" when one of its runs reached publish (``batches`` at status published or later), whether or
not anything changed: a quiet source that runs on time is fresh; one whose runs fail or stopped is not. Replays of
quarantine are not runs of the source and do not count. A dataset is stale once its source's last published run is
older than its expected interval times a grace factor; each stale spell raises one event through the outbox (type
``STALE_EVENT_TYPE``, its id derived from the dataset, its epoch and that last run), so MQTT and any other outbox
reader hear of it once, however often the check runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select

from exchange.db import upsert_insert
from exchange.tables import STALE_EVENT_TYPE, batches, datasets, outbox

__all__ = ["Freshness", "SourceSchedule", "dataset_freshness", "raise_stale_events"]

_PUBLISHED = ("published", "snapshotted")
_REPLAY_PREFIX = "replay__"
_STALE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:waterhub:stale")


@dataclass(frozen=True)
class SourceSchedule:
    """A source, the datasets it publishes and how often it is expected to publish (None: not on a schedule)."""

    source: str
    datasets: Sequence[str]
    interval: timedelta | None


@dataclass(frozen=True)
class Freshness:
    dataset: str
    source: str
    last_run_at: datetime | None
    """When the source's last run that reached publish started; None if none has."""
    expected_interval: timedelta | None
    stale_after: timedelta | None
    stale: bool


def dataset_freshness(
    conn: Connection, schedules: Sequence[SourceSchedule], *, now: datetime, grace: float
) -> list[Freshness]:
    """Every scheduled dataset's freshness at ``now``. A source that never published is not called stale (it has
    not started); one off any schedule never is."""
    query = (
        select(batches.c.source, func.max(batches.c.created_at))
        .where(batches.c.status.in_(_PUBLISHED), ~batches.c.run_id.startswith(_REPLAY_PREFIX))
        .group_by(batches.c.source)
    )
    last_runs: dict[str, datetime] = {source: at for source, at in conn.execute(query)}
    found = []
    for schedule in schedules:
        last = last_runs.get(schedule.source)
        stale_after = None if schedule.interval is None else schedule.interval * grace
        stale = last is not None and stale_after is not None and now - last > stale_after
        found += [
            Freshness(key, schedule.source, last, schedule.interval, stale_after, stale) for key in schedule.datasets
        ]
    return found


def raise_stale_events(conn: Connection, found: Sequence[Freshness], *, now: datetime) -> int:
    """One outbox event per stale spell of each stale dataset that has been published; returns how many were new."""
    stale = {entry.dataset: entry for entry in found if entry.stale}
    if not stale:
        return 0
    known: Mapping[str, tuple[str, str, int]] = {
        key: (epoch, version, last_seq)
        for key, epoch, version, last_seq in conn.execute(
            select(datasets.c.key, datasets.c.epoch, datasets.c.contract_version, datasets.c.last_seq).where(
                datasets.c.key.in_(list(stale))
            )
        )
    }
    rows = []
    for key, (epoch, version, last_seq) in known.items():
        entry = stale[key]
        last, interval = entry.last_run_at, entry.expected_interval
        if last is None or interval is None:  # never so when stale; the type checker cannot know
            continue
        detail = {
            "source": entry.source,
            "last_run_at": last.isoformat(),
            "expected_interval_s": interval.total_seconds(),
            "checked_at": now.isoformat(),
        }
        spell = f"{key}:{epoch}:{last.isoformat()}"
        rows.append(
            {
                "event_id": str(uuid.uuid5(_STALE_NAMESPACE, spell)),
                "event_type": STALE_EVENT_TYPE,
                "detail": json.dumps(detail),
                "dataset": key,
                "contract_version": version,
                "run_id": f"freshness__{now.isoformat()}",
                "first_seq": last_seq,
                "last_seq": last_seq,
                "inserted": 0,
                "updated": 0,
                "deleted": 0,
                "created_at": now,
                "attempts": 0,
            }
        )
    if not rows:
        return 0
    statement = upsert_insert(conn, outbox).on_conflict_do_nothing(index_elements=[outbox.c.event_id])
    return len(conn.execute(statement.returning(outbox.c.id), rows).all())
