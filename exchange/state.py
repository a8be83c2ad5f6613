"""Incremental watermarks: the highest cursor value that was actually published, one row per source stream and
partition (``''`` for a stream read whole; the context's JSON for one station or one parent record, so each
partition resumes on its own).

STYLE rule 6: the watermark advances in the publish transaction and never moves backwards, so a rerun of an old
interval (or a late retry) cannot make the next run skip data it already fetched, and a failed run moves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, Insert, select

from exchange.db import upsert_insert
from exchange.tables import stream_state

__all__ = ["advance_watermark", "advance_watermarks", "read_watermark", "read_watermarks"]


def read_watermark(conn: Connection, source: str, stream: str, partition: str = "") -> datetime | None:
    """The stored cursor value in UTC, or None for a stream (partition) never published (read it in full)."""
    value: datetime | None = conn.execute(
        select(stream_state.c.cursor_value).where(
            stream_state.c.source == source,
            stream_state.c.stream == stream,
            stream_state.c.partition_key == partition,
        )
    ).scalar_one_or_none()
    return value


def read_watermarks(conn: Connection, source: str, stream: str) -> dict[str, datetime]:
    """Every stored partition's watermark of a stream in one query: a child stream may have a partition per parent
    record (tens of thousands), and a query each would cost more than their pages."""
    query = select(stream_state.c.partition_key, stream_state.c.cursor_value).where(
        stream_state.c.source == source, stream_state.c.stream == stream
    )
    return {partition: value for partition, value in conn.execute(query)}


def advance_watermark(
    conn: Connection,
    source: str,
    stream: str,
    value: datetime,
    *,
    run_id: str,
    now: datetime,
    partition: str = "",
) -> datetime:
    """Move the watermark up to ``value`` if that is later than what is stored; returns the value now stored.

    One conditional upsert, so two runs racing on the same stream cannot lower it either.
    """
    advance_watermarks(conn, source, stream, {partition: value}, run_id=run_id, now=now)
    stored = read_watermark(conn, source, stream, partition)
    if stored is None:  # pragma: no cover - the upsert above always leaves a row
        raise RuntimeError(f"{source}/{stream}: watermark row missing right after its upsert")
    return stored


def advance_watermarks(
    conn: Connection, source: str, stream: str, moves: Mapping[str, datetime], *, run_id: str, now: datetime
) -> None:
    """``advance_watermark`` for many partitions of a stream (partition → value) in one statement."""
    if now.tzinfo is None or any(value.tzinfo is None for value in moves.values()):
        raise ValueError(f"{source}/{stream}: watermarks {dict(moves)!r} and now {now!r} must be aware datetimes")
    if not moves:
        return
    rows = [
        {"source": source, "stream": stream, "partition_key": partition, "cursor_value": value, "run_id": run_id}
        | {"updated_at": now}
        for partition, value in moves.items()
    ]
    conn.execute(_forward_upsert(conn), rows)


def _forward_upsert(conn: Connection) -> Insert:
    """The conditional upsert of a watermark row: a stored value is only ever replaced by a later one, so two runs
    racing on the same stream cannot lower it either."""
    statement = upsert_insert(conn, stream_state)
    return statement.on_conflict_do_update(
        index_elements=[stream_state.c.source, stream_state.c.stream, stream_state.c.partition_key],
        set_={
            "cursor_value": statement.excluded.cursor_value,
            "run_id": statement.excluded.run_id,
            "updated_at": statement.excluded.updated_at,
        },
        where=stream_state.c.cursor_value < statement.excluded.cursor_value,
    )
