"""Deletes on real PostgreSQL and SQLite: tombstones and rows a full-refresh stream no longer lists leave the table
and become ``delete`` entries in the change log, counted by the outbox; a tombstone older than the row is stale.

Expected keys are built here from the rows the tests publish (JSON arrays, ISO times with Z), never read back."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from sqlalchemy import Engine, select

from contracts import Contract
from contracts.water_quality import WaterQualitySample, WaterQualityStation
from exchange.publish import SMALL_FRAME_ROWS, publish_frame, publish_parts
from exchange.tables import change_log, dataset_table, outbox
from tests.exchange.rows import LATER, NOW, T0, publish, sample, station, typed_frame

STATIONS = WaterQualityStation.meta.key
SAMPLES = WaterQualitySample.meta.key


def log(engine: Engine, dataset: str) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        query = select(change_log.c.seq, change_log.c.op, change_log.c.key).where(change_log.c.dataset == dataset)
        return [tuple(row) for row in conn.execute(query.order_by(change_log.c.seq))]


def keys(engine: Engine, contract: type[Contract]) -> set[str]:
    table = dataset_table(contract)
    with engine.connect() as conn:
        return {str(code) for code in conn.execute(select(table.c[contract.meta.primary_key[0]])).scalars()}


def test_a_station_missing_from_a_full_refresh_is_deleted_and_logged(engine: Engine) -> None:
    publish(engine, WaterQualityStation, [station("44010001"), station("44010002"), station("44010003")], "run-1")
    with engine.begin() as conn:
        result = publish_frame(
            conn,
            WaterQualityStation,
            typed_frame(WaterQualityStation, [station("44010001"), station("44010003", name="Renamed")]),
            run_id="run-2",
            now=LATER,
            full_refresh=True,
        )
    assert (result.updated, result.deleted, result.first_seq, result.last_seq) == (1, 1, 4, 5)
    assert keys(engine, WaterQualityStation) == {"44010001", "44010003"}
    assert log(engine, STATIONS)[3:] == [(4, "update", '["44010003"]'), (5, "delete", '["44010002"]')]
    with engine.connect() as conn:
        event = conn.execute(select(outbox).where(outbox.c.run_id == "run-2")).mappings().one()
    assert (event["inserted"], event["updated"], event["deleted"], event["last_seq"]) == (0, 1, 1, 5)


def test_a_tombstone_deletes_its_row_once(engine: Engine) -> None:
    publish(engine, WaterQualitySample, [sample("44010001", 0), sample("44010001", 1)], "run-1")
    sampled_at = T0 + timedelta(hours=1)
    tombstone = pd.DataFrame(
        {"station_code": ["44010001"], "sampled_at": [sampled_at], "updated_at": [sampled_at + timedelta(hours=2)]}
    )
    for run in ("run-2", "run-3"):  # the same tombstone again deletes nothing more
        with engine.begin() as conn:
            result = publish_frame(
                conn,
                WaterQualitySample,
                typed_frame(WaterQualitySample, []),
                run_id=run,
                now=LATER,
                tombstones=tombstone,
            )
    assert result.deleted == 0
    hour_1 = '["44010001","2026-03-01T01:00:00Z"]'
    assert log(engine, SAMPLES)[2:] == [(3, "delete", hour_1)]
    assert keys(engine, WaterQualitySample) == {"44010001"}
    with engine.connect() as conn:
        table = dataset_table(WaterQualitySample)
        assert conn.execute(select(table.c.sampled_at)).scalars().all() == [T0]


def test_a_tombstone_older_than_the_stored_row_is_stale(engine: Engine) -> None:
    """The row was corrected after the source marked an older version deleted: the correction wins."""
    row = sample("44010001", 0)
    publish(engine, WaterQualitySample, [row], "run-1")
    tombstone = pd.DataFrame(
        {"station_code": ["44010001"], "sampled_at": [T0], "updated_at": [row["updated_at"] - timedelta(minutes=5)]}
    )
    with engine.begin() as conn:
        result = publish_frame(
            conn, WaterQualitySample, typed_frame(WaterQualitySample, []), run_id="run-2", now=NOW, tombstones=tombstone
        )
    assert (result.deleted, result.stale, result.event_id) == (0, 1, None)
    assert len(log(engine, SAMPLES)) == 1


def test_a_full_refresh_in_parts_deletes_only_what_no_part_lists(engine: Engine) -> None:
    """Publish reads a year's stream from staging a part at a time: a key of the first part is not missing from
    the stream because the last part lacks it, and the run is still one sequence range and one event."""
    publish(engine, WaterQualityStation, [station("44010001"), station("44010002"), station("44010003")], "run-1")
    parts = [
        typed_frame(WaterQualityStation, [station("44010001")]),
        typed_frame(WaterQualityStation, [station("44010003", name="Renamed")]),
    ]
    with engine.begin() as conn:
        result = publish_parts(conn, WaterQualityStation, parts, run_id="run-2", now=LATER, full_refresh=True)
    assert (result.unchanged, result.updated, result.deleted, result.first_seq, result.last_seq) == (1, 1, 1, 4, 5)
    assert keys(engine, WaterQualityStation) == {"44010001", "44010003"}
    assert log(engine, STATIONS)[3:] == [(4, "update", '["44010003"]'), (5, "delete", '["44010002"]')]
    with engine.connect() as conn:
        events = conn.execute(select(outbox).where(outbox.c.run_id == "run-2")).mappings().all()
    assert [(e["updated"], e["deleted"], e["first_seq"], e["last_seq"]) for e in events] == [(1, 1, 4, 5)]


def test_a_first_publish_in_parts_numbers_every_part_in_order_and_a_rerun_writes_nothing(engine: Engine) -> None:
    """Parts large enough for the bulk path: the second part of a first publish is new too, though the first
    part's rows are in the table by then."""
    hours = range(2 * SMALL_FRAME_ROWS + 2)
    rows = [sample("44010001", hour) for hour in hours]
    half = len(rows) // 2
    parts = [typed_frame(WaterQualitySample, rows[:half]), typed_frame(WaterQualitySample, rows[half:])]
    with engine.begin() as conn:
        first = publish_parts(conn, WaterQualitySample, parts, run_id="run-1", now=NOW)
    assert (first.inserted, first.first_seq, first.last_seq) == (len(rows), 1, len(rows))
    expected = [f'["44010001","{(T0 + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")}"]' for hour in hours]
    assert [key for _, _, key in log(engine, SAMPLES)] == expected
    with engine.begin() as conn:
        again = publish_parts(conn, WaterQualitySample, parts, run_id="run-2", now=LATER)
    assert (again.unchanged, again.changed, again.event_id) == (len(rows), 0, None)
