"""`waterhub stack up` on this machine, as `make stack` starts it: Airflow 3 with the CeleryExecutor (PostgreSQL
metadata, Redis broker, two workers), SeaweedFS as the shared S3 store and the live simulator, on free ports and
databases of its own. The source DAG is triggered through Airflow's REST API; its run and the derived DAG its Asset
events start run on both workers, publish into the hub's database and leave snapshots in S3; `down` leaves no
process behind.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from contracts.water_quality import WaterQualitySample
from contracts.water_quality_class import HourlyWaterClass
from exchange.db import make_engine
from exchange.snapshots import latest_snapshot
from exchange.tables import change_log, dataset_table, quarantine
from waterhub.stack.airflow_api import AirflowApi
from waterhub.stack.launcher import BUCKET, Stack
from waterhub.stack.settings import StackSettings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RUN_TIMEOUT_S = 240


@pytest.fixture
def stack(tmp_path: Path, pg_url: str, redis_url: str, mqtt_url: str) -> Iterator[Stack]:
    """A stack on free ports with databases, Redis queue and state of its own; stopped and its databases dropped
    after the test, whatever happened."""
    settings = StackSettings.isolated(
        tmp_path / "stack",
        postgres_url=SecretStr(pg_url),
        redis_url=redis_url,
        mqtt_url=SecretStr(mqtt_url),
        unpause="water_quality_class",  # the source DAG is unpaused by the test, after it triggered its run
    )
    stack = Stack(settings)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        assert stack.processes.descendants_left() == []
        stack.drop_databases()


@pytest.fixture
def hub(stack: Stack) -> Iterator[Engine]:
    engine = make_engine(stack.database_url(stack.settings.hub_database))
    yield engine
    engine.dispose()


def _count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


def _hosts(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, str]:
    """Task id → the worker that ran it, for every task instance that ran."""
    return {
        instance["task_id"]: instance["hostname"]
        for instance in api.task_instances(dag_id, run_id)
        if instance["state"] in {"success", "skipped"} and instance["hostname"]
    }


def _derived_runs(api: AirflowApi) -> list[dict[str, Any]]:
    """The derived DAG's runs, once the source run's Asset events made the first (one per event the scheduler saw
    apart: the stations' and the samples' events may start one run or two)."""
    deadline = time.monotonic() + 60
    while not (runs := api.dag_runs("water_quality_class")) and time.monotonic() < deadline:
        time.sleep(1)
    return runs


def test_the_stack_runs_the_source_and_derived_dags_on_both_celery_workers(stack: Stack, hub: Engine) -> None:
    tick = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with stack.api() as api:
        run_id = api.trigger("water_quality", logical_date=tick)  # stands in for this hour's scheduled run
        api.set_paused("water_quality", False)
        run = api.wait_for_run("water_quality", run_id, timeout_s=RUN_TIMEOUT_S)
        assert run["state"] == "success", api.task_instances("water_quality", run_id)
        assert [r["dag_run_id"] for r in api.dag_runs("water_quality")] == [run_id]  # no second, scheduled run

        derived_runs = _derived_runs(api)
        assert {r["run_type"] for r in derived_runs} == {"asset_triggered"}
        for derived in derived_runs:
            finished = api.wait_for_run("water_quality_class", derived["dag_run_id"], timeout_s=RUN_TIMEOUT_S)
            assert finished["state"] == "success", api.task_instances("water_quality_class", derived["dag_run_id"])

        source_hosts = _hosts(api, "water_quality", run_id)
        derived_hosts = {
            host
            for derived in derived_runs
            for host in _hosts(api, "water_quality_class", derived["dag_run_id"]).values()
        }
    assert {"extract", "validate", "publish", "notify", "snapshot"} <= set(source_hosts)
    assert set(source_hosts.values()) | derived_hosts == {"worker-1", "worker-2"}

    samples = _count(hub, dataset_table(WaterQualitySample))
    assert samples > 0
    logged = _count(hub, change_log, change_log.c.dataset == "water_quality.samples", change_log.c.run_id == run_id)
    assert logged == samples  # a first run inserts every sample it publishes, each with one change-log entry
    assert _count(hub, quarantine, quarantine.c.run_id == run_id) > 0  # the simulator plants bad records
    assert _count(hub, dataset_table(HourlyWaterClass)) > 0

    client = stack.s3_client()
    snapshot = latest_snapshot(hub, "water_quality.samples")
    assert snapshot is not None
    assert snapshot.row_count == samples
    stored = {item.object_name for item in client.list_objects(BUCKET, prefix="hub/", recursive=True)}
    assert f"hub/{snapshot.object_key}" in stored
    assert any(name.startswith("hub/snapshots/water_quality.hourly_classes/") for name in stored)
    assert [name for name in stored if name.startswith("hub/staging/")] == []  # a snapshotted run's staging goes
