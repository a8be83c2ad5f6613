"""The pipeline's seams end to end on PostgreSQL, against a small simulator over a real socket: a stream
partitioned per station resumes each station from its own watermark, and tombstones and stations a full refresh
no longer lists become deletes in the change log, the table and the event.

Expected watermarks and keys come from the data the tests put into the simulator, never from the hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import waterhub.pipeline
from connectors.http.settings import HttpClientSettings
from exchange.state import read_watermark
from exchange.tables import change_log, dataset_table, outbox, quarantine
from tests.plant_app import PlantReading, PlantSimulator, PlantSource, PlantStation, registered
from waterhub.pipeline import Pipeline
from waterhub.settings import Settings

T0 = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
HTTP = HttpClientSettings(max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02, timeout_s=5)


@pytest.fixture
def plant() -> Iterator[tuple[PlantSimulator, str]]:
    simulator = PlantSimulator()
    for code in ("S1", "S2", "S3"):
        simulator.add_station(code, T0)
    for n in range(3):
        simulator.add_reading("S1", n, T0 + timedelta(minutes=10 * n))
    simulator.add_reading("S2", 0, T0 + timedelta(minutes=5))
    with simulator.served() as server:
        yield simulator, server.base_url


def run(pipe: Pipeline, run_id: str, now: datetime) -> str:
    batch_id = pipe.extract(run_id=run_id, interval_end=now, now=now)
    pipe.validate(batch_id, now=now)
    pipe.publish(batch_id, now=now)
    return batch_id


@pytest.fixture
def pipe(plant: tuple[PlantSimulator, str], tmp_path: Path, pg_schema_url: str) -> Iterator[Pipeline]:
    _, base_url = plant
    settings = Settings(data_dir=tmp_path, database_url=pg_schema_url, http=HTTP)
    registration = registered()
    next(registration)
    pipeline = Pipeline(settings, "plant", source=PlantSource(base_url, HTTP))
    try:
        yield pipeline
    finally:
        pipeline.engine.dispose()
        next(registration, None)


def test_each_station_resumes_from_its_own_watermark(pipe: Pipeline, plant: tuple[PlantSimulator, str]) -> None:
    simulator, _ = plant
    run(pipe, "run-1", T0 + timedelta(hours=1))
    with pipe.engine.connect() as conn:
        marks = {code: read_watermark(conn, "plant", "readings", f'{{"station":"{code}"}}') for code in ("S1", "S2")}
        assert read_watermark(conn, "plant", "readings", '{"station":"S3"}') is None  # nothing published for S3
    assert marks == {"S1": T0 + timedelta(minutes=20), "S2": T0 + timedelta(minutes=5)}

    simulator.add_reading("S1", 3, T0 + timedelta(minutes=70))
    before = len(simulator.requests)
    run(pipe, "run-2", T0 + timedelta(hours=2))
    asked = {e.path: e.query.get("updated_since") for e in simulator.requests[before:] if "readings" in e.path}
    assert asked == {  # Beijing time, each station from its own watermark
        "/stations/S1/readings": "2026-11-22 08:20:00",
        "/stations/S2/readings": "2026-11-22 08:05:00",
        "/stations/S3/readings": None,
    }
    with pipe.engine.connect() as conn:
        assert read_watermark(conn, "plant", "readings", '{"station":"S1"}') == T0 + timedelta(minutes=70)
        assert read_watermark(conn, "plant", "readings", '{"station":"S2"}') == T0 + timedelta(minutes=5)


def test_tombstones_and_stations_gone_from_a_full_refresh_are_deleted(
    pipe: Pipeline, plant: tuple[PlantSimulator, str]
) -> None:
    simulator, _ = plant
    run(pipe, "run-1", T0 + timedelta(hours=1))
    del simulator.stations["S3"]
    simulator.add_reading("S1", 1, T0 + timedelta(minutes=50), deleted=True)
    run(pipe, "run-2", T0 + timedelta(hours=2))

    with pipe.engine.connect() as conn:
        deletes = conn.execute(
            select(change_log.c.dataset, change_log.c.key).where(change_log.c.op == "delete").order_by(change_log.c.seq)
        ).all()
        stations = set(conn.execute(select(dataset_table(PlantStation).c.code)).scalars())
        readings = set(conn.execute(select(dataset_table(PlantReading).c.station, dataset_table(PlantReading).c.n)))
        events = {row.dataset: row.deleted for row in conn.execute(select(outbox).where(outbox.c.run_id == "run-2"))}
    assert [tuple(row) for row in deletes] == [("plant.stations", '["S3"]'), ("plant.readings", '["S1",1]')]
    assert stations == {"S1", "S2"}
    assert readings == {("S1", 0), ("S1", 2), ("S2", 0)}
    assert events == {"plant.stations": 1, "plant.readings": 1}


def test_records_staged_in_parts_are_validated_whole_and_quarantined_with_their_own_payload(
    pipe: Pipeline, plant: tuple[PlantSimulator, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts of two records: S1's four readings span two parts, and the bad one in the second part is quarantined
    with its own payload, not its neighbour's."""
    simulator, _ = plant
    monkeypatch.setattr(waterhub.pipeline, "CHUNK_RECORDS", 2)
    simulator.readings["S1"].append({"station": "S1", "n": 9, "value": "abc", "updated_at": "2026-11-22 08:30:00"})
    batch_id = run(pipe, "run-1", T0 + timedelta(hours=1))

    entry = pipe.manifest(batch_id)["streams"]["readings"]
    assert (entry["fetched"], len(entry["raw"])) == (5, 3)  # S1: 4 records in 2 parts, S2: 1 record in 1 part
    with pipe.engine.connect() as conn:
        table = dataset_table(PlantReading)
        published = set(conn.execute(select(table.c.station, table.c.n)))
        payloads = [json.loads(p) for p in conn.execute(select(quarantine.c.payload)).scalars()]
    assert published == {("S1", 0), ("S1", 1), ("S1", 2), ("S2", 0)}
    assert payloads == [{"station": "S1", "n": 9, "value": "abc", "updated_at": "2026-11-22 08:30:00"}]


def test_a_stream_validated_in_chunks_keeps_the_latest_of_a_key_across_them(
    pipe: Pipeline, plant: tuple[PlantSimulator, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One staged part of two records per validation chunk: S1's reading 0, sent again later with a new value,
    lands in another chunk than its first version. The later version is published and the first quarantined as
    ``duplicate_key``, as in a batch validated whole; the bad record in the middle chunk is held with its own
    payload."""
    simulator, _ = plant
    monkeypatch.setattr(waterhub.pipeline, "CHUNK_RECORDS", 2)
    monkeypatch.setattr(waterhub.pipeline, "VALIDATE_CHUNK_RECORDS", 2)
    first = dict(simulator.readings["S1"][0])
    bad = {"station": "S1", "n": 9, "value": "abc", "updated_at": "2026-11-22 08:30:00"}
    again = {"station": "S1", "n": 0, "value": 7.5, "updated_at": "2026-11-22 08:40:00"}
    simulator.readings["S1"] += [bad, again]
    batch_id = run(pipe, "run-1", T0 + timedelta(hours=1))

    entry = pipe.manifest(batch_id)["streams"]["readings"]
    assert (entry["fetched"], len(entry["raw"])) == (6, 3)  # S1 0,1 | S1 2,9 | S1 0 again, S2 0
    assert (entry["valid"], entry["quarantined"], entry["reasons"].get("duplicate_key")) == (4, 2, 1)
    with pipe.engine.connect() as conn:
        table = dataset_table(PlantReading)
        published = {
            n: value for n, value in conn.execute(select(table.c.n, table.c.value).where(table.c.station == "S1"))
        }
        held = {
            json.dumps(json.loads(payload), sort_keys=True): json.loads(reasons)
            for payload, reasons in conn.execute(select(quarantine.c.payload, quarantine.c.reasons))
        }
    assert published == {0: 7.5, 1: 1.0, 2: 2.0}
    assert set(held) == {json.dumps(first, sort_keys=True), json.dumps(bad, sort_keys=True)}
    assert held[json.dumps(first, sort_keys=True)] == ["duplicate_key"]
    assert "duplicate_key" not in held[json.dumps(bad, sort_keys=True)]


def test_a_key_superseded_two_chunks_later_is_published_once_as_its_later_row(
    pipe: Pipeline, plant: tuple[PlantSimulator, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation chunks of two records, each chunk's valid rows staged as it is judged: S1's reading 0 of chunk 1
    is corrected in chunk 3, after its chunk was staged. The key is staged and published once, as its later
    version, with one change-log entry, and the watermark moves to that version's update."""
    simulator, _ = plant
    monkeypatch.setattr(waterhub.pipeline, "CHUNK_RECORDS", 2)
    monkeypatch.setattr(waterhub.pipeline, "VALIDATE_CHUNK_RECORDS", 2)
    simulator.add_reading("S1", 3, T0 + timedelta(minutes=30))
    simulator.readings["S1"].append({"station": "S1", "n": 0, "value": 7.5, "updated_at": "2026-11-22 08:40:00"})
    batch_id = run(pipe, "run-1", T0 + timedelta(hours=1))

    entry = pipe.manifest(batch_id)["streams"]["readings"]
    parts = [
        frame[["station", "n", "value"]].values.tolist() for frame in pipe.staging.iter_frame(entry["valid_parts"])
    ]
    assert parts == [[["S1", 1, 1.0]], [["S1", 2, 2.0], ["S1", 3, 3.0]], [["S1", 0, 7.5], ["S2", 0, 0.0]]]
    assert (entry["valid"], entry["quarantined"], entry["reasons"]) == (5, 1, {"duplicate_key": 1})
    with pipe.engine.connect() as conn:
        table = dataset_table(PlantReading)
        published = set(conn.execute(select(table.c.station, table.c.n, table.c.value)))
        changes = conn.execute(
            select(change_log.c.key, change_log.c.op).where(change_log.c.dataset == "plant.readings")
        ).all()
        s1_mark = read_watermark(conn, "plant", "readings", '{"station":"S1"}')
    assert published == {("S1", 0, 7.5), ("S1", 1, 1.0), ("S1", 2, 2.0), ("S1", 3, 3.0), ("S2", 0, 0.0)}
    assert sorted(tuple(change) for change in changes) == [
        ('["S1",0]', "insert"),
        ('["S1",1]', "insert"),
        ('["S1",2]', "insert"),
        ('["S1",3]', "insert"),
        ('["S2",0]', "insert"),
    ]
    assert s1_mark == T0 + timedelta(minutes=40)
