"""Benchmark: the water-quality batch through its DAG on the stack's two Celery workers (``waterhub stack up``, REST
trigger) against ``dag.test()`` in one process (``airflow dags test``), in the same run, on the same simulator,
PostgreSQL server and S3 store, each with a hub database of its own: once with new data (the first run reads the
whole feed) and once finding nothing new (the second run of the same hour).

Per task it prints, for each side: the wait before the task started (after its upstream tasks ended, or the run
started: scheduling, the Celery hand-off), and its run time as Airflow records it (under Celery, a task process of
its own: process start, DAG file parse, imports and work; under ``dag.test()``, the work, with imports paid once by
the first task that needs them). It also times the imports alone, each in a fresh interpreter, and
``waterhub.pipeline`` once more in an interpreter that already holds Airflow's task runner (what a task process,
forked from its Celery worker, really pays for it). The goal of issue 17 is a nothing-new run costing under 2 s of
work beyond the process start: with nothing new, extract closes the run and every later task is skipped, so the
nothing-new run is one task process.

    .venv/bin/python benchmarks/bench_stack.py

Needs PostgreSQL (``WATERHUB_TEST_DATABASE_URL``), Redis (``WATERHUB_TEST_REDIS_URL``) and Mosquitto
(``WATERHUB_TEST_MQTT_URL``), as the tests do. Last line: one JSON object; ``*_ratio`` keys compare the two sides.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from waterhub.local_airflow import LocalAirflow
from waterhub.logs import configure_logging
from waterhub.stack.airflow_api import AirflowApi
from waterhub.stack.launcher import BUCKET, DAGS_FOLDER, Stack
from waterhub.stack.settings import StackSettings

DAG_ID = "water_quality"
RUN_TIMEOUT_S = 600
IMPORTS = {"waterhub.pipeline": "every task", "great_expectations": "validate"}
TASK_RUNNER = "airflow.sdk.execution_time.task_runner"


@dataclass(frozen=True)
class TaskTiming:
    wait_s: float
    run_s: float


@dataclass(frozen=True)
class RunTiming:
    wall_s: float  # from the run's start to its end, as Airflow records them
    tasks: dict[str, TaskTiming]

    @property
    def waiting_s(self) -> float:
        return sum(task.wait_s for task in self.tasks.values())

    @property
    def task_run_s(self) -> float:
        """Run time of every task that ran (a skipped task started no process and has none)."""
        return sum(task.run_s for task in self.tasks.values())


def _time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _timing(
    run_start: str | None, run_end: str | None, rows: list[dict[str, Any]], upstream: dict[str, list[str]]
) -> RunTiming:
    """Per task: the wait after its upstream tasks ended (or the run started) and its run time. A run without its
    own start or end (``dag.test()`` may not record them) spans its tasks."""
    ran = {
        row["task_id"]: row
        for row in rows
        if row["start_date"] and row["end_date"] and row.get("state") != "skipped"  # a skipped task started nothing
    }
    run_start = run_start or min(row["start_date"] for row in ran.values())
    run_end = run_end or max(row["end_date"] for row in ran.values())
    tasks = {}
    for task_id, row in ran.items():
        before = [_time(ran[up]["end_date"]) for up in upstream.get(task_id, []) if up in ran]
        ready = max(before) if before else _time(run_start)
        start, end = _time(row["start_date"]), _time(row["end_date"])
        tasks[task_id] = TaskTiming((start - ready).total_seconds(), (end - start).total_seconds())
    return RunTiming((_time(run_end) - _time(run_start)).total_seconds(), tasks)


def _upstream(downstream: dict[str, list[str]]) -> dict[str, list[str]]:
    upstream: dict[str, list[str]] = {task_id: [] for task_id in downstream}
    for task_id, after in downstream.items():
        for later in after:
            upstream[later].append(task_id)
    return upstream


def celery_run(api: AirflowApi, logical_date: datetime | None) -> RunTiming:
    """Trigger a run through the REST API, wait for it; its timing from Airflow's own records."""
    run_id = api.trigger(DAG_ID, logical_date=logical_date)
    api.set_paused(DAG_ID, False)  # no-op after the first run; a tick's run stands in for its scheduled one
    run = api.wait_for_run(DAG_ID, run_id, timeout_s=RUN_TIMEOUT_S)
    if run["state"] != "success":
        raise RuntimeError(f"{DAG_ID} run {run_id} ended {run['state']}")
    upstream = _upstream(api.downstream(DAG_ID))
    return _timing(run["start_date"], run["end_date"], api.task_instances(DAG_ID, run_id), upstream)


def dag_test_run(
    airflow: LocalAirflow, env: dict[str, str], log_path: Path, upstream: dict[str, list[str]]
) -> RunTiming:
    """One ``airflow dags test`` run (``dag.test()``: every task in that one process); timing from its metadata."""
    run_id = airflow.test_dag(DAG_ID, log_path=log_path, extra=env)
    with sqlite3.connect(airflow.home / "airflow.db") as metadata:
        metadata.row_factory = sqlite3.Row
        run = metadata.execute("select start_date, end_date from dag_run where run_id = ?", (run_id,)).fetchone()
        rows = metadata.execute(
            "select task_id, state, start_date, end_date from task_instance where run_id = ?", (run_id,)
        ).fetchall()
    return _timing(run["start_date"], run["end_date"], [dict(row) for row in rows], upstream)


def import_seconds(module: str, after: str | None = None) -> float:
    """Seconds an interpreter spends importing ``module``: a fresh one, or one that already imported ``after``."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    if after is not None:
        code = f"import {after}; {code}"
    done = subprocess.run(  # noqa: S603 - our own interpreter with a fixed module name
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"GX_ANALYTICS_ENABLED": "False"},
    )
    return float(done.stdout.strip().splitlines()[-1])


def _print_table(runs: dict[str, RunTiming]) -> None:
    names = list(runs)
    task_ids = list(next(iter(runs.values())).tasks)
    print(f"{'task':<18}" + "".join(f"{name:>26}" for name in names))
    print(f"{'':<18}" + "".join(f"{'wait s':>13}{'run s':>13}" for _ in names))
    for task_id in task_ids:
        cells = "".join(
            f"{runs[n].tasks[task_id].wait_s:>13.2f}{runs[n].tasks[task_id].run_s:>13.2f}"
            if task_id in runs[n].tasks
            else f"{'-':>13}{'-':>13}"
            for n in names
        )
        print(f"{task_id:<18}{cells}")
    print(f"{'whole run':<18}" + "".join(f"{runs[n].waiting_s:>13.2f}{runs[n].wall_s:>13.2f}" for n in names))


def main() -> None:
    configure_logging(debug=False, as_json=False)  # the figures, not the schema migration's log
    pg_url = os.environ.get("WATERHUB_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("WATERHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379")
    mqtt_url = os.environ.get("WATERHUB_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
    work = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    settings = StackSettings.isolated(
        work / "stack", postgres_url=SecretStr(pg_url), redis_url=redis_url, mqtt_url=SecretStr(mqtt_url), unpause=""
    )
    stack = Stack(settings)
    local_database = settings.hub_database.replace("stack_hub_", "stack_local_")
    started = time.monotonic()
    try:
        stack.up()
        up_s = time.monotonic() - started
        tick = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        with stack.api() as api:
            celery = {"celery new": celery_run(api, tick), "celery nothing new": celery_run(api, None)}
            upstream = _upstream(api.downstream(DAG_ID))
        stack.create_database(local_database)
        airflow = LocalAirflow(home=work / "local-airflow", dags_folder=DAGS_FOLDER)
        airflow.migrate(log_path=work / "local-migrate.log")
        env = stack.hub_environment() | {
            "WATERHUB_DATA_DIR": str(work / "local"),
            "WATERHUB_DATABASE_URL": stack.database_url(local_database),
            "WATERHUB_OBJECT_STORE_URL": f"s3://{BUCKET}/local?endpoint={stack.s3_endpoint}",
        }
        local = {
            "dag.test new": dag_test_run(airflow, env, work / "local-1.log", upstream),
            "dag.test nothing new": dag_test_run(airflow, env, work / "local-2.log", upstream),
        }
        imports = {module: import_seconds(module) for module in IMPORTS}
        pipeline_in_task = import_seconds("waterhub.pipeline", after=TASK_RUNNER)
    finally:
        stack.down()
        stack.drop_databases()
        stack.drop_database(local_database)
    load = os.getloadavg()[0]
    runs = {**celery, **local}
    print(
        f"stack up in {up_s:.1f} s; load average {load:.2f}; two workers of concurrency {settings.worker_concurrency}"
    )
    _print_table(runs)
    for module, who in IMPORTS.items():
        print(f"import {module} in a fresh interpreter ({who} under Celery pays it): {imports[module]:.2f} s")
    print(f"import waterhub.pipeline after Airflow's task runner (what a task process adds): {pipeline_in_task:.2f} s")
    print(f"task run time, nothing new: {len(runs['celery nothing new'].tasks)} task(s) ran under Celery")
    new, nothing = runs["celery new"], runs["celery nothing new"]
    local_new, local_nothing = runs["dag.test new"], runs["dag.test nothing new"]
    print(
        json.dumps(
            {
                "stack_up_s": round(up_s, 2),
                "celery_new_data_s": round(new.wall_s, 2),
                "dag_test_new_data_s": round(local_new.wall_s, 2),
                "celery_nothing_new_s": round(nothing.wall_s, 2),
                "dag_test_nothing_new_s": round(local_nothing.wall_s, 2),
                "celery_waiting_new_data_s": round(new.waiting_s, 2),
                "celery_waiting_nothing_new_s": round(nothing.waiting_s, 2),
                "celery_task_run_nothing_new_s": round(nothing.task_run_s, 2),
                "celery_tasks_run_nothing_new": len(nothing.tasks),
                "dag_test_task_run_nothing_new_s": round(local_nothing.task_run_s, 2),
                **{f"import_{module}_s": round(seconds, 2) for module, seconds in imports.items()},
                "import_waterhub.pipeline_after_task_runner_s": round(pipeline_in_task, 2),
                "celery_vs_dag_test_new_data_ratio": round(new.wall_s / local_new.wall_s, 2),
                "celery_vs_dag_test_nothing_new_ratio": round(nothing.wall_s / local_nothing.wall_s, 2),
                "nothing_new_vs_new_data_celery_ratio": round(nothing.wall_s / new.wall_s, 2),
                "load_average": round(load, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
