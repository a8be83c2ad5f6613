"""publish_frame's two paths (row by row in plain Python for small frames, handed as rows or as a frame; bulk with
temporary tables and COPY for large ones) publish the same frames into the same rows, change log, outbox and
dataset row, on PostgreSQL and on SQLite.

Hypothesis draws a sequence of frames over a small key space, so frames insert new keys, repeat stored rows
unchanged, change values, and carry versions older, equal or newer than the stored ones (stale rows). The same
sequence is published with every frame row by row (handed as rows, then as a typed frame) and with every frame
bulk, each time into emptied tables. Times come in other zones and with nanoseconds as well, so the row path's
canonical values and hashes are held to the frame path's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, Select, delete, select

from contracts.water_quality import WaterQualitySample
from exchange import publish as publish_module
from exchange.publish import publish_frame
from exchange.tables import change_log, dataset_table, datasets, outbox
from tests.exchange.rows import NOW, sample, typed_frame

TABLE = dataset_table(WaterQualitySample)
KEYS = [(station, hour) for station in ("s1", "s2", "s3") for hour in range(4)]

_row = st.fixed_dictionaries(
    {
        "key": st.sampled_from(KEYS),
        "updated_minutes": st.sampled_from([10, 20, 30]),  # older, equal or newer than what a key holds
        "ph": st.sampled_from([7.0, 7.5, 8.25]),
        "ammonia_nitrogen": st.sampled_from([None, 0.25, 1.5]),
        "zone_hours": st.sampled_from([0, 8, -5]),
        "nanoseconds": st.sampled_from([0, 999]),
    }
)
_frames = st.lists(st.lists(_row, min_size=0, max_size=10, unique_by=lambda row: row["key"]), min_size=1, max_size=5)


def _frame_rows(drawn: Sequence[dict[str, Any]]) -> list[dict[str, object]]:
    rows = []
    for row in drawn:
        station, hour = row["key"]
        made = sample(station, hour, ph=row["ph"], ammonia_nitrogen=row["ammonia_nitrogen"])
        sampled_at = made["sampled_at"]
        assert isinstance(sampled_at, datetime)
        zone = timezone(timedelta(hours=row["zone_hours"]))
        updated_at = pd.Timestamp(sampled_at + timedelta(minutes=row["updated_minutes"])).tz_convert(zone)
        made["updated_at"] = updated_at + pd.Timedelta(nanoseconds=row["nanoseconds"])
        rows.append(made)
    return rows


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (TABLE, change_log, outbox, datasets):
            conn.execute(delete(table))


def _state(engine: Engine) -> dict[str, list[Any]]:
    """Everything a publish writes, without the database's own ids and the per-hub random epoch (and the event
    ids derived from it)."""
    key = WaterQualitySample.meta.key
    with engine.connect() as conn:
        rows = conn.execute(select(TABLE).order_by(*TABLE.primary_key.columns)).mappings().all()
        log = conn.execute(select(change_log).where(change_log.c.dataset == key).order_by(change_log.c.seq))
        events = conn.execute(select(outbox).where(outbox.c.dataset == key).order_by(outbox.c.first_seq))
        dataset = conn.execute(select(datasets).where(datasets.c.key == key)).mappings().all()
        return {
            "rows": [dict(row) for row in rows],
            "log": [_without(row, "id") for row in log.mappings()],
            "outbox": [_without(row, "id", "event_id") for row in events.mappings()],
            "dataset": [_without(row, "epoch") for row in dataset],
            "stored": _stored(conn, select(TABLE).order_by(*TABLE.primary_key.columns)),
            "stored_log": _stored(
                conn, select(change_log).where(change_log.c.dataset == key).order_by(change_log.c.seq)
            ),
        }


def _stored(conn: Connection, query: Select[Any]) -> list[tuple[Any, ...]]:
    """The rows as the driver returns them, untyped by SQLAlchemy: on SQLite the very text stored for a time, which
    SQL compares as text (a stale row is found by ``stored > incoming``), so both strategies must store the same."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return [tuple(row) for row in conn.exec_driver_sql(str(compiled)).all()]


def _without(row: Any, *names: str) -> dict[str, Any]:
    return {name: value for name, value in dict(row).items() if name not in names}


def _publish_all(engine: Engine, frames: Sequence[list[dict[str, object]]], *, path: str) -> list[dict[str, int]]:
    """Publish ``frames`` in order into emptied tables: ``rows`` and ``frame`` row by row (handed as mappings or as a
    typed frame), ``bulk`` column by column."""
    _empty(engine)
    counts = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(publish_module, "SMALL_FRAME_ROWS", -1 if path == "bulk" else 10_000)
        for number, rows in enumerate(frames):
            given = _full(rows) if path == "rows" else typed_frame(WaterQualitySample, rows)
            with engine.begin() as conn:
                now = NOW + timedelta(minutes=number)
                result = publish_frame(conn, WaterQualitySample, given, run_id=f"run-{number}", now=now)
            counts.append(result.counts() | {"first_seq": result.first_seq or 0, "last_seq": result.last_seq or 0})
    return counts


def _full(rows: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    """Rows as the gateway hands them: every field named, None for a gap."""
    return [{spec.name: row.get(spec.name) for spec in WaterQualitySample.field_specs()} for row in rows]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=_frames)
def test_row_and_bulk_paths_publish_the_same(engine: Engine, drawn: list[list[dict[str, Any]]]) -> None:
    frames = [_frame_rows(frame) for frame in drawn]
    bulk_counts = _publish_all(engine, frames, path="bulk")
    bulk_state = _state(engine)
    for path in ("rows", "frame"):
        assert _publish_all(engine, frames, path=path) == bulk_counts, path
        assert _state(engine) == bulk_state, path
    # Something was stored whenever a frame had rows: the comparison is not between two empty stores.
    assert len(bulk_state["rows"]) == len({row["key"] for frame in drawn for row in frame})
