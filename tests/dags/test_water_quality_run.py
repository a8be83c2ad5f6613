"""Whole DAG runs through Airflow (`airflow dags test`), on real PostgreSQL and the real broker.

The first run publishes what the simulator's ground truth says is valid and announces it, on the broker and as
Airflow asset events, and Airflow's OpenLineage listener writes its lineage to a file: the simulator's endpoints in,
the hub's datasets out; the derived DAG run after it names the datasets it reads and those it publishes. The second
run of the same data finds nothing new: its extract closes the run (recorded as published, staging removed) and
every later task is skipped, so it changes nothing and announces nothing, in either place. A third run, after the
source moved on, is judged and published as the first was.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from connectors.water_quality import WaterQualitySimulator
from contracts.water_quality import WaterQualitySample
from exchange.db import make_engine
from exchange.snapshots import latest_snapshot
from exchange.subscriber import ChangeSubscriber
from exchange.tables import batches, change_log, dataset_table, outbox
from waterhub.local_airflow import LocalAirflow

pytestmark = pytest.mark.slow

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
API_KEY = "dag-test-key"


@pytest.fixture
def hub(pg_schema_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_schema_url)
    yield engine
    engine.dispose()


def _count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


def _asset_events(airflow: LocalAirflow, run_id: str) -> list[tuple[str, str]]:
    """(asset name, emitting task) of every asset event a DAG run left in Airflow's own metadata database."""
    with sqlite3.connect(airflow.home / "airflow.db") as metadata:
        rows = metadata.execute(
            "select asset.name, asset_event.source_task_id from asset_event"
            " join asset on asset.id = asset_event.asset_id where asset_event.source_run_id = ?",
            (run_id,),
        )
        return sorted(rows.fetchall())


def _task_states(airflow: LocalAirflow, run_id: str) -> dict[str, str]:
    """Each task's final state in a DAG run, from Airflow's own metadata database."""
    with sqlite3.connect(airflow.home / "airflow.db") as metadata:
        rows = metadata.execute("select task_id, state from task_instance where run_id = ?", (run_id,))
        return dict(rows.fetchall())


def _lineage(path: Path) -> dict[str, tuple[set[tuple[str, str]], set[tuple[str, str]]]]:
    """(inputs, outputs) of each task's COMPLETE event in an OpenLineage file transport's output, by job name."""
    found = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event["eventType"] == "COMPLETE":
            found[event["job"]["name"]] = tuple(
                {(d["namespace"], d["name"]) for d in event.get(side) or []} for side in ("inputs", "outputs")
            )
    return found  # type: ignore[return-value]


def test_the_dag_publishes_the_valid_samples_once_a_rerun_stops_after_extract_and_new_data_publishes_again(
    tmp_path: Path, pg_schema_url: str, mqtt_url: str, hub: Engine
) -> None:
    simulator = WaterQualitySimulator(seed=5, api_key=API_KEY, stations=5, hours=10)
    airflow = LocalAirflow(home=tmp_path / "airflow", dags_folder=DAGS_FOLDER)
    airflow.migrate(log_path=tmp_path / "migrate.log")
    with simulator.serve(host="127.0.0.1", port=0) as running, ChangeSubscriber(mqtt_url) as subscriber:
        env = {
            "WATERHUB_DATA_DIR": str(tmp_path / "var"),
            "WATERHUB_DATABASE_URL": pg_schema_url,
            "WATERHUB_MQTT_URL": mqtt_url,
            "WATERHUB_WATER_QUALITY__BASE_URL": running.base_url,
            "WATERHUB_WATER_QUALITY__API_KEY": API_KEY,
            "WATERHUB_HUB_ID": "dag-test-hub",
        }
        lineage = tmp_path / "lineage.jsonl"
        transport = json.dumps({"type": "file", "log_file_path": str(lineage), "append": True})
        first_run = airflow.test_dag(
            "water_quality",
            log_path=tmp_path / "run-1.log",
            extra=env | {"AIRFLOW__OPENLINEAGE__TRANSPORT": transport},
        )
        valid = simulator.truth.valid_sample_keys()
        table = dataset_table(WaterQualitySample)
        with hub.connect() as conn:
            published = set(conn.execute(select(table.c.station_code, table.c.sampled_at)))
        assert published == valid
        assert _count(hub, change_log, change_log.c.dataset == "water_quality.samples") == len(valid)
        with hub.connect() as conn:
            event_ids = set(conn.execute(select(outbox.c.event_id).where(outbox.c.run_id == first_run)).scalars())
        events = {e.dataset: e for e in subscriber.wait_for(event_ids, timeout_s=15) if e.event_id in event_ids}
        samples_event = events["water_quality.samples"]
        assert (samples_event.first_seq, samples_event.last_seq, samples_event.inserted) == (1, len(valid), len(valid))
        snapshot = latest_snapshot(hub, "water_quality.samples")
        assert snapshot is not None
        assert (snapshot.seq, snapshot.row_count) == (len(valid), len(valid))

        assert _asset_events(airflow, first_run) == [
            ("water_quality.samples", "changed_samples"),
            ("water_quality.stations", "changed_stations"),
        ]

        endpoints = {(running.base_url, "/api/v1/stations"), (running.base_url, "/api/v1/samples")}
        hub_datasets = {("waterhub://dag-test-hub", key) for key in ("water_quality.stations", "water_quality.samples")}
        jobs = _lineage(lineage)
        assert jobs["water_quality.extract"] == (endpoints, set())
        assert jobs["water_quality.publish"] == (endpoints, hub_datasets)

        derived_run = airflow.test_dag(
            "water_quality_class",
            log_path=tmp_path / "derived.log",
            extra=env | {"AIRFLOW__OPENLINEAGE__TRANSPORT": transport},
        )
        assert _task_states(airflow, derived_run)["publish"] == "success"
        classes = {("waterhub://dag-test-hub", f"water_quality.{name}") for name in ("hourly_classes", "daily_classes")}
        assert _lineage(lineage)["water_quality_class.publish"] == (hub_datasets, classes)
        changes = _count(hub, change_log)

        second_run = airflow.test_dag("water_quality", log_path=tmp_path / "run-2.log", extra=env)
        assert second_run != first_run
        states = _task_states(airflow, second_run)
        assert states.pop("extract") == "success"
        assert set(states.values()) == {"skipped"}  # no task after extract ran
        assert {"validate", "publish", "notify", "snapshot", "changed_samples"} <= set(states)
        with hub.connect() as conn:
            status = conn.execute(select(batches.c.status).where(batches.c.run_id == second_run)).scalar_one()
        assert status == "snapshotted"  # closed by extract: recorded as published, the source stays fresh
        assert _count(hub, change_log) == changes
        assert _count(hub, outbox, outbox.c.run_id == second_run) == 0
        time.sleep(1)  # an event the second run sent would be here by now; the broker is on loopback
        assert [event for event in subscriber.events if event.run_id == second_run] == []
        assert _asset_events(airflow, second_run) == []

        simulator.advance(hours=1)
        third_run = airflow.test_dag("water_quality", log_path=tmp_path / "run-3.log", extra=env)
        assert set(_task_states(airflow, third_run).values()) <= {"success", "skipped"}
        assert _task_states(airflow, third_run)["validate"] == "success"
        with hub.connect() as conn:
            published = set(conn.execute(select(table.c.station_code, table.c.sampled_at)))
        assert published == simulator.truth.valid_sample_keys()
        assert ("water_quality.samples", "changed_samples") in _asset_events(airflow, third_run)
