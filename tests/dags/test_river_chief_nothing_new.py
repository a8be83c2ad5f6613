"""A river-chief DAG run that finds nothing new still sends the province the report an earlier run failed to send.

The first run publishes and its ``push_to_province`` step fails one report (the platform answers 500 to every
attempt). The next run, a whole DAG run through Airflow (`airflow dags test`) with the platform unchanged, finds
nothing new: its extract closes the run and every later task, the ``push_to_province`` task included, is skipped.
So the pending report can only be resent by the ``after_publish`` steps extract runs itself on that path. The
platform's simulator is the judge: it keeps every report it accepted, keyed by idempotency key. Real PostgreSQL,
broker and simulator over a socket.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.errors import SourceUnavailableError
from connectors.river_chief.simulator import RunningPlatform
from exchange.tables import batches, province_reports
from tests.river_chief_hub import CLIENT_ID, SECRET, hub_pipeline, served_platform, sync
from waterhub.local_airflow import LocalAirflow
from waterhub.province_push import push_to_province

pytestmark = pytest.mark.slow

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
PAGE_SIZE = 500


@pytest.fixture
def platform() -> Iterator[RunningPlatform]:
    with served_platform(seed=3, days=20) as running:
        yield running


def _task_state(airflow: LocalAirflow, run_id: str, task_id: str) -> str:
    """A task's final state in a DAG run, from Airflow's own metadata database."""
    with sqlite3.connect(airflow.home / "airflow.db") as metadata:
        row = metadata.execute(
            "select state from task_instance where run_id = ? and task_id = ?", (run_id, task_id)
        ).fetchone()
    return str(row[0])


def test_a_run_with_nothing_new_resends_the_report_the_last_run_failed_to_send(
    platform: RunningPlatform, tmp_path: Path, pg_schema_url: str, mqtt_url: str
) -> None:
    data_dir = tmp_path / "var"
    pipeline = hub_pipeline(platform, data_dir, pg_schema_url, page_size=PAGE_SIZE)
    simulator = platform.simulator
    sync(pipeline, platform, "run-1")
    platform.faults.server_error(3)  # the first report fails all three attempts
    with pytest.raises(SourceUnavailableError, match=r"1 of .* report"):
        push_to_province(pipeline)
    with pipeline.engine.connect() as conn:
        rows = {row.record_key: row for row in conn.execute(select(province_reports))}
    failed = {key for key, row in rows.items() if row.ack_id is None}
    assert len(failed) == 1
    assert len(rows) >= 2  # one report failed, others were acknowledged
    failed_problem = next(iter(failed))[2:-2]  # key is a JSON array: ["Q..."]
    assert failed_problem not in simulator.reports
    assert platform.faults.pending == 0

    airflow = LocalAirflow(home=tmp_path / "airflow", dags_folder=DAGS_FOLDER)
    airflow.migrate(log_path=tmp_path / "migrate.log")
    env = {
        "WATERHUB_DATA_DIR": str(data_dir),
        "WATERHUB_DATABASE_URL": pg_schema_url,
        "WATERHUB_MQTT_URL": mqtt_url,
        "WATERHUB_RIVER_CHIEF__BASE_URL": platform.base_url,
        "WATERHUB_RIVER_CHIEF__CLIENT_ID": CLIENT_ID,
        "WATERHUB_RIVER_CHIEF__CLIENT_SECRET": SECRET,
        "WATERHUB_RIVER_CHIEF__PAGE_SIZE": str(PAGE_SIZE),
    }
    quiet_run = airflow.test_dag("river_chief", log_path=tmp_path / "run-2.log", extra=env)

    with pipeline.engine.connect() as conn:
        status = conn.execute(select(batches.c.status).where(batches.c.run_id == quiet_run)).scalar_one()
        acknowledged = conn.execute(
            select(province_reports.c.ack_id, province_reports.c.attempts).where(
                province_reports.c.record_key.in_(failed)
            )
        ).one()
        total = len(conn.execute(select(province_reports.c.record_key)).all())
    assert _task_state(airflow, quiet_run, "extract") == "success"
    assert _task_state(airflow, quiet_run, "push_to_province") == "skipped"  # closed by extract: nothing new
    assert status == "snapshotted"
    assert acknowledged.ack_id is not None
    assert acknowledged.attempts == 2
    assert total == len(rows)  # no report was added: nothing new was published
    reports = simulator.reports
    assert set(reports) == {key[2:-2] for key in rows}  # every report reached the province ...
    assert all(len(sent) == 1 for sent in reports.values())  # ... exactly once, the failed one included
    pipeline.engine.dispose()
