"""A run that finds nothing new, each step in a fresh process as a Celery worker runs a task: it reads the source and
judges nothing again, so no step loads Great Expectations, pandas or pyarrow (seconds of every task's start). A run
with one new record judges and publishes it as before. Real PostgreSQL, broker and simulator over a socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.water_quality import WaterQualitySimulator
from connectors.water_quality.settings import WaterQualitySourceSettings
from connectors.water_quality.simulator import RunningSimulator
from contracts.water_quality import WaterQualitySample
from exchange.state import read_watermark
from exchange.tables import change_log, dataset_table
from waterhub.pipeline import Pipeline
from waterhub.settings import Settings

API_KEY = "nothing-new-key"
RUN_END = datetime(2026, 12, 31, tzinfo=UTC)
HEAVY = ("great_expectations", "pandas", "pyarrow", "quality.runner", "exchange.publish")

# One step of a run in its own interpreter, the way a DAG task runs it; prints its result and the heavy modules the
# process ended up holding.
_STEP = f"""
import json, sys
from datetime import datetime
from waterhub.pipeline import Pipeline
pipeline = Pipeline.from_environment("water_quality")
step, argument = sys.argv[1], sys.argv[2]
if step == "extract":
    result = pipeline.extract(run_id=argument, interval_end=datetime.fromisoformat({RUN_END.isoformat()!r}))
else:
    result = getattr(pipeline, step)(argument)
print(json.dumps({{"result": result, "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


@pytest.fixture
def simulator() -> WaterQualitySimulator:
    return WaterQualitySimulator(seed=5, api_key=API_KEY, stations=1, hours=6)


@pytest.fixture
def task_env(tmp_path: Path, pg_schema_url: str, running: RunningSimulator, mqtt_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "WATERHUB_HUB_ID": "nothing-new-test",
        "WATERHUB_DATA_DIR": str(tmp_path),
        "WATERHUB_DATABASE_URL": pg_schema_url,
        "WATERHUB_MQTT_URL": mqtt_url,
        "WATERHUB_WATER_QUALITY__BASE_URL": running.base_url,
        "WATERHUB_WATER_QUALITY__API_KEY": API_KEY,
    }


@pytest.fixture
def pipeline(tmp_path: Path, pg_schema_url: str, running: RunningSimulator, mqtt_url: str) -> Iterator[Pipeline]:
    settings = Settings(
        hub_id="nothing-new-test",
        data_dir=tmp_path,
        database_url=pg_schema_url,
        mqtt_url=mqtt_url,
        water_quality=WaterQualitySourceSettings(base_url=running.base_url, api_key=API_KEY),
    )
    pipe = Pipeline(settings, "water_quality")
    yield pipe
    pipe.engine.dispose()


def _task(env: dict[str, str], step: str, argument: str) -> dict[str, object]:
    done = subprocess.run(  # noqa: S603 - our own interpreter running our own step
        [sys.executable, "-c", _STEP, step, argument], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _run(pipeline: Pipeline, run_id: str) -> str:
    batch_id = pipeline.extract(run_id=run_id, interval_end=RUN_END)
    pipeline.validate(batch_id)
    pipeline.publish(batch_id)
    pipeline.snapshot(batch_id)
    return batch_id


def _changes(pipeline: Pipeline) -> int:
    with pipeline.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(change_log)).scalar_one())


def test_a_run_that_finds_nothing_new_loads_no_quality_suite_in_any_task(
    pipeline: Pipeline, task_env: dict[str, str]
) -> None:
    _run(pipeline, "first")
    changes = _changes(pipeline)
    extracted = _task(task_env, "extract", "quiet")
    batch_id = str(extracted["result"])
    steps = {step: _task(task_env, step, batch_id) for step in ("validate", "publish", "notify", "snapshot")}
    for step, answer in {"extract": extracted, **steps}.items():
        assert answer["loaded"] == [], step
    streams = pipeline.manifest(batch_id)["streams"]
    for name, entry in streams.items():
        assert entry["fetched"] > 0, name  # the source was read: the records were there, only not new
        assert entry["already_published"] == entry["fetched"], name
        assert entry["unchanged"] == entry["fetched"], name
    assert _changes(pipeline) == changes


def test_a_run_with_one_new_record_still_judges_and_publishes_it(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    _run(pipeline, "first")
    _run(pipeline, "quiet")
    simulator.advance(hours=1)  # one station: one new sample
    newest = max(simulator.truth.valid_updated_at())
    batch_id = _run(pipeline, "one-new")
    samples = pipeline.manifest(batch_id)["streams"]["samples"]
    assert (samples["valid"], samples["inserted"]) == (1, 1)
    assert samples["already_published"] == samples["fetched"] - 1
    table = dataset_table(WaterQualitySample)
    with pipeline.engine.connect() as conn:
        assert conn.execute(select(func.max(table.c.updated_at))).scalar_one() == newest
        assert read_watermark(conn, "water_quality", "samples") == newest
