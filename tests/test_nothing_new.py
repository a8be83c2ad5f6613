"""A run that finds nothing new: its extract task, in a fresh process as a Celery worker runs it, reads the source,
judges nothing again and closes the run itself (``Pipeline.close_if_nothing_new``: the DAG then skips every later
task), without loading Great Expectations, pandas, pyarrow or, with an empty outbox, the MQTT client. The run still
counts as published (its source stays fresh), its staging is removed, and what waits in the outbox is sent. A run
with one new record is not closed early: it is judged and published as before. Real PostgreSQL, broker and
simulator over a socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import func, select

from connectors.water_quality import WaterQualitySimulator
from connectors.water_quality.settings import WaterQualitySourceSettings
from connectors.water_quality.simulator import RunningSimulator
from contracts.water_quality import WaterQualitySample
from exchange.staging import STAGING_REMOVED
from exchange.state import read_watermark
from exchange.tables import batches, change_log, dataset_table, outbox
from waterhub.freshness import check_freshness
from waterhub.pipeline import Pipeline
from waterhub.settings import Settings

API_KEY = "nothing-new-key"
RUN_END = datetime(2026, 12, 31, tzinfo=UTC)
HEAVY = ("great_expectations", "pandas", "pyarrow", "quality.runner", "exchange.publish", "exchange.notify", "paho")

# The extract task of a run in its own interpreter, the way the DAG runs it (extract, then close the run if nothing
# is new); prints the batch id, whether it closed the run, and the heavy modules the process ended up holding.
_EXTRACT_TASK = f"""
import json, sys
from datetime import datetime
from waterhub.pipeline import Pipeline
pipeline = Pipeline.from_environment("water_quality")
batch_id = pipeline.extract(run_id=sys.argv[1], interval_end=datetime.fromisoformat({RUN_END.isoformat()!r}))
closed = pipeline.close_if_nothing_new(batch_id)
loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps({{"batch_id": batch_id, "closed": closed, "loaded": loaded}}))
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


def _extract_task(env: dict[str, str], run_id: str) -> dict[str, object]:
    done = subprocess.run(  # noqa: S603 - our own interpreter running our own step
        [sys.executable, "-c", _EXTRACT_TASK, run_id], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _run(pipeline: Pipeline, run_id: str, *, notify: bool = True) -> str:
    batch_id = pipeline.extract(run_id=run_id, interval_end=RUN_END)
    pipeline.validate(batch_id)
    pipeline.publish(batch_id)
    if notify:
        pipeline.notify(batch_id)
    pipeline.snapshot(batch_id)
    return batch_id


def _changes(pipeline: Pipeline) -> int:
    with pipeline.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(change_log)).scalar_one())


def _pending(pipeline: Pipeline) -> int:
    with pipeline.engine.connect() as conn:
        query = select(func.count()).select_from(outbox).where(outbox.c.dispatched_at.is_(None))
        return int(conn.execute(query).scalar_one())


def test_a_run_that_finds_nothing_new_closes_in_extract_without_loading_the_quality_suite(
    pipeline: Pipeline, task_env: dict[str, str]
) -> None:
    _run(pipeline, "first")
    changes = _changes(pipeline)
    extracted = _extract_task(task_env, "quiet")
    assert extracted["closed"] is True
    assert extracted["loaded"] == []
    batch_id = str(extracted["batch_id"])
    manifest = pipeline.manifest(batch_id)
    assert manifest["status"] == "snapshotted"
    assert manifest[STAGING_REMOVED] is True
    assert list(pipeline.store.list(f"staging/{batch_id}/")) == []
    for name, entry in manifest["streams"].items():
        assert entry["fetched"] > 0, name  # the source was read: the records were there, only not new
        assert entry["already_published"] == entry["unchanged"] == entry["fetched"], name
        assert entry["first_seq"] is None, name
    assert _changes(pipeline) == changes
    with pipeline.engine.connect() as conn:
        created = conn.execute(select(batches.c.created_at).where(batches.c.batch_id == batch_id)).scalar_one()
    last_runs = {
        f.last_run_at
        for f in check_freshness(pipeline.engine, pipeline.settings, now=RUN_END, raise_events=False)
        if f.source == "water_quality"
    }
    assert last_runs == {created}  # the quiet run keeps its source fresh


def test_a_run_that_finds_nothing_new_sends_what_waits_in_the_outbox(
    pipeline: Pipeline, task_env: dict[str, str]
) -> None:
    _run(pipeline, "first", notify=False)  # as if the first run's notify had failed every retry
    assert _pending(pipeline) > 0
    extracted = _extract_task(task_env, "quiet")
    assert extracted["closed"] is True
    assert "exchange.notify" in cast("list[str]", extracted["loaded"])  # something waited: the broker was used
    assert _pending(pipeline) == 0


def test_a_run_with_one_new_record_is_not_closed_early_and_publishes_it(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    _run(pipeline, "first")
    _run(pipeline, "quiet")
    simulator.advance(hours=1)  # one station: one new sample
    newest = max(simulator.truth.valid_updated_at())
    batch_id = pipeline.extract(run_id="one-new", interval_end=RUN_END)
    assert pipeline.close_if_nothing_new(batch_id) is False
    assert pipeline.manifest(batch_id)["status"] == "extracted"
    pipeline.validate(batch_id)
    pipeline.publish(batch_id)
    samples = pipeline.manifest(batch_id)["streams"]["samples"]
    assert (samples["valid"], samples["inserted"]) == (1, 1)
    assert samples["already_published"] == samples["fetched"] - 1
    table = dataset_table(WaterQualitySample)
    with pipeline.engine.connect() as conn:
        assert conn.execute(select(func.max(table.c.updated_at))).scalar_one() == newest
        assert read_watermark(conn, "water_quality", "samples") == newest
