"""Watermarks on real PostgreSQL and SQLite: they only move forward, and only when their transaction commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select

from exchange.state import advance_watermark, advance_watermarks, read_watermark, read_watermarks
from exchange.tables import stream_state

T1 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def watermark(engine: Engine, source: str = "water_quality", stream: str = "samples") -> datetime | None:
    with engine.connect() as conn:
        return read_watermark(conn, source, stream)


class _PublishFailedError(Exception):
    pass


def _advance_then_fail(engine: Engine, value: datetime) -> None:
    with engine.begin() as conn:
        advance_watermark(conn, "water_quality", "samples", value, run_id="doomed", now=NOW)
        raise _PublishFailedError


def test_a_stream_never_published_has_no_watermark(engine: Engine) -> None:
    assert watermark(engine) is None


def test_advancing_stores_the_value_as_an_aware_utc_time(engine: Engine) -> None:
    with engine.begin() as conn:
        stored = advance_watermark(conn, "water_quality", "samples", T1, run_id="run-1", now=NOW)

    assert stored == T1
    read = watermark(engine)
    assert read == T1
    assert read is not None
    assert read.utcoffset() == timedelta(0)
    with engine.connect() as conn:
        row = conn.execute(select(stream_state)).mappings().one()
    assert (row["run_id"], row["updated_at"]) == ("run-1", NOW)


def test_the_watermark_moves_forward(engine: Engine) -> None:
    with engine.begin() as conn:
        advance_watermark(conn, "water_quality", "samples", T1, run_id="run-1", now=NOW)
    with engine.begin() as conn:
        stored = advance_watermark(conn, "water_quality", "samples", T2, run_id="run-2", now=NOW + timedelta(hours=1))

    assert stored == T2
    assert watermark(engine) == T2


def test_the_watermark_never_moves_backwards(engine: Engine) -> None:
    with engine.begin() as conn:
        advance_watermark(conn, "water_quality", "samples", T2, run_id="run-2", now=NOW)
    with engine.begin() as conn:
        stored = advance_watermark(conn, "water_quality", "samples", T1, run_id="rerun-1", now=NOW + timedelta(hours=1))

    assert stored == T2  # the caller learns what is really stored
    assert watermark(engine) == T2
    with engine.connect() as conn:
        assert conn.execute(select(stream_state.c.run_id)).scalar_one() == "run-2"  # the row was not touched


def test_the_same_instant_in_another_zone_is_not_a_move(engine: Engine) -> None:
    beijing = timezone(timedelta(hours=8))
    with engine.begin() as conn:
        advance_watermark(conn, "water_quality", "samples", T2, run_id="run-2", now=NOW)
    with engine.begin() as conn:
        stored = advance_watermark(conn, "water_quality", "samples", T2.astimezone(beijing), run_id="run-3", now=NOW)
        earlier = advance_watermark(
            conn, "water_quality", "samples", datetime(2026, 3, 1, 14, 30, tzinfo=beijing), run_id="run-4", now=NOW
        )  # 06:30 UTC: earlier than T2 although its wall clock reads later

    assert stored == T2
    assert earlier == T2
    with engine.connect() as conn:
        assert conn.execute(select(stream_state.c.run_id)).scalar_one() == "run-2"


def test_a_rolled_back_advance_leaves_the_watermark_unchanged(engine: Engine) -> None:
    with engine.begin() as conn:
        advance_watermark(conn, "water_quality", "samples", T1, run_id="run-1", now=NOW)

    with pytest.raises(_PublishFailedError):
        _advance_then_fail(engine, T2)

    assert watermark(engine) == T1


def test_a_rolled_back_first_advance_leaves_no_watermark(engine: Engine) -> None:
    with pytest.raises(_PublishFailedError):
        _advance_then_fail(engine, T1)

    assert watermark(engine) is None


def test_the_advance_is_visible_inside_its_own_transaction(engine: Engine) -> None:
    with engine.begin() as conn:
        advance_watermark(conn, "water_quality", "samples", T1, run_id="run-1", now=NOW)
        assert read_watermark(conn, "water_quality", "samples") == T1


def test_streams_and_sources_have_separate_watermarks(engine: Engine) -> None:
    with engine.begin() as conn:
        advance_watermark(conn, "water_quality", "samples", T2, run_id="run-1", now=NOW)
        advance_watermark(conn, "water_quality", "stations", T1, run_id="run-1", now=NOW)

    assert watermark(engine, "water_quality", "samples") == T2
    assert watermark(engine, "water_quality", "stations") == T1
    assert watermark(engine, "hydrology", "samples") is None


def test_naive_times_are_refused(engine: Engine) -> None:
    naive = datetime(2026, 3, 1, 6, 0)  # noqa: DTZ001 - the naive time under test
    with pytest.raises(ValueError, match="aware"), engine.begin() as conn:
        advance_watermark(conn, "water_quality", "samples", naive, run_id="run-1", now=NOW)

    assert watermark(engine) is None


def test_each_partition_keeps_its_own_watermark(engine: Engine) -> None:
    """A station whose data is late must not hold back, nor be skipped by, another station's watermark."""
    north, south = '{"station":"S1"}', '{"station":"S2"}'
    with engine.begin() as conn:
        advance_watermark(conn, "river", "readings", T2, run_id="run-1", now=NOW, partition=north)
        advance_watermark(conn, "river", "readings", T1, run_id="run-1", now=NOW, partition=south)
    with engine.begin() as conn:
        advance_watermark(conn, "river", "readings", T1, run_id="run-2", now=NOW, partition=north)  # never back
    with engine.connect() as conn:
        assert read_watermark(conn, "river", "readings", north) == T2
        assert read_watermark(conn, "river", "readings", south) == T1
        assert read_watermark(conn, "river", "readings") is None  # the unpartitioned read has none yet


def test_many_partitions_advance_in_one_statement_each_only_forward(engine: Engine) -> None:
    with engine.begin() as conn:
        advance_watermarks(conn, "river_chief", "problem_steps", {"a": T2, "b": T1}, run_id="run-1", now=NOW)
    with engine.begin() as conn:
        moves = {"a": T1, "b": T2, "c": T1}  # a would go back: it stays at T2
        advance_watermarks(conn, "river_chief", "problem_steps", moves, run_id="run-2", now=NOW)
        advance_watermarks(conn, "river_chief", "problems", {"": T1}, run_id="run-2", now=NOW)

    with engine.connect() as conn:
        marks = read_watermarks(conn, "river_chief", "problem_steps")
        runs = dict(conn.execute(select(stream_state.c.partition_key, stream_state.c.run_id)).all())
    assert marks == {"a": T2, "b": T2, "c": T1}
    assert all(value.utcoffset() == timedelta(0) for value in marks.values())
    assert (runs["a"], runs["b"]) == ("run-1", "run-2")


def test_a_naive_watermark_among_many_is_refused_and_none_moves(engine: Engine) -> None:
    moves = {"a": T1, "b": T2.replace(tzinfo=None)}
    with engine.begin() as conn, pytest.raises(ValueError, match="aware"):
        advance_watermarks(conn, "river_chief", "problem_steps", moves, run_id="run-1", now=NOW)
    with engine.connect() as conn:
        assert read_watermarks(conn, "river_chief", "problem_steps") == {}
