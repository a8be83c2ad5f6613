"""Incremental watermarks: the highest cursor value that was actually published, one row per source stream and
partition (``''`` for a stream read whole; the context's JSON for one station or one parent record, so each
partition resumes on its own).

STYLE rule 6: the watermark advances in the publish transaction and never moves backwards, so a rerun of an old
interval (or a late retry) cannot make the next run skip data it already fetched, and a failed run moves nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from exchange.db import upsert_insert
from exchange.tables import stream_state

__all__ = ["advance_watermark", "read_watermark"]


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
    if value.tzinfo is None or now.tzinfo is None:
        raise ValueError(f"{source}/{stream}: watermark {value!r} and now {now!r} must be aware datetimes")
    statement = upsert_insert(conn, stream_state).values(
        source=source, stream=stream, partition_key=partition, cursor_value=value, run_id=run_id, updated_at=now
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[stream_state.c.source, stream_state.c.stream, stream_state.c.partition_key],
            set_={
                "cursor_value": statement.excluded.cursor_value,
                "run_id": statement.excluded.run_id,
                "updated_at": statement.excluded.updated_at,
            },
            where=stream_state.c.cursor_value < statement.excluded.cursor_value,
        )
    )
    stored = read_watermark(conn, source, stream, partition)
    if stored is None:  # pragma: no cover - the upsert above always leaves a row
        raise RuntimeError(f"{source}/{stream}: watermark row missing right after its upsert")
    return stored
