"""The pipeline's steps against the simulator, on real PostgreSQL and the real broker: records and state together.

Expected values come from the simulator's ground truth, never from the code under test (STYLE rules 22, 23).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import structlog
from pydantic import SecretStr
from sqlalchemy import Engine, event, func, select
from structlog.testing import capture_logs

from connectors.errors import SourceUnavailableError
from connectors.water_quality import WaterQualitySimulator
from connectors.water_quality.settings import WaterQualitySourceSettings
from connectors.water_quality.simulator import RunningSimulator, parse_beijing, sample_key
from contracts.types import BEIJING
from contracts.water_quality import WaterQualitySample, WaterQualityStation
from exchange.errors import BatchNotFoundError, StoreConfigError, StoreUnavailableError
from exchange.state import read_watermark
from exchange.subscriber import ChangeSubscriber
from exchange.tables import batches, change_log, dataset_table, outbox, quarantine
from waterhub.pipeline import Pipeline
from waterhub.settings import HttpClientSettings, Settings

API_KEY = "test-key-7"
RUN_END = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


@pytest.fixture
def simulator() -> WaterQualitySimulator:
    return WaterQualitySimulator(seed=11, api_key=API_KEY, stations=6, hours=12)


@pytest.fixture
def hub_settings(tmp_path: Path, pg_schema_url: str, running: RunningSimulator, mqtt_url: str) -> Settings:
    return Settings(
        hub_id="pipeline-test",
        data_dir=tmp_path,
        database_url=pg_schema_url,
        mqtt_url=mqtt_url,
        water_quality=WaterQualitySourceSettings(base_url=running.base_url, api_key=API_KEY, page_size=25),
        http=HttpClientSettings(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05, timeout_s=5),
    )


@pytest.fixture
def pipeline(hub_settings: Settings) -> Iterator[Pipeline]:
    pipe = Pipeline(hub_settings, "water_quality")
    yield pipe
    pipe.engine.dispose()


def _run(pipeline: Pipeline, run_id: str, interval_end: datetime = RUN_END) -> str:
    batch_id = pipeline.extract(run_id=run_id, interval_end=interval_end)
    pipeline.validate(batch_id)
    pipeline.publish(batch_id)
    return batch_id


def _sample_keys(engine: Engine) -> set[tuple[str, datetime]]:
    table = dataset_table(WaterQualitySample)
    with engine.connect() as conn:
        return {
            (row.station_code, row.sampled_at) for row in conn.execute(select(table.c.station_code, table.c.sampled_at))
        }


def _count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_a_run_publishes_exactly_the_valid_samples_and_quarantines_each_bad_one_with_its_reason(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    _run(pipeline, "run-1")
    engine = pipeline.engine
    truth = simulator.truth
    assert _sample_keys(engine) == truth.valid_sample_keys()
    assert _count(engine, dataset_table(WaterQualityStation)) == len(truth.stations)
    with engine.connect() as conn:
        stored = conn.execute(select(quarantine.c.reasons).where(quarantine.c.dataset == "water_quality.samples"))
        reasons = Counter(reason for (text,) in stored for reason in json.loads(text))
    expected = Counter(reason for _, reason in truth.bad_samples())
    assert reasons == expected
    samples_changes = _count(engine, change_log, change_log.c.dataset == "water_quality.samples")
    assert samples_changes == len(truth.valid_sample_keys())
    with engine.connect() as conn:
        watermark = read_watermark(conn, "water_quality", "samples")
    assert watermark == max(record_updated_at for record_updated_at in truth.valid_updated_at())


def test_only_references_to_keys_the_batch_did_not_validate_are_looked_up_among_published_ones(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    """The stations come in the same batch as their samples: only the codes of stations it did not list are looked
    up in the hub, and their samples are still refused (``unknown_station``)."""
    looked_up: set[str] = set()

    @event.listens_for(pipeline.engine, "before_cursor_execute")
    def _reference_lookups(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
    ) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO _WH_REFERENCE_KEYS"):
            for row in parameters if executemany else [parameters]:
                looked_up.update(str(value) for value in (row.values() if isinstance(row, dict) else row))

    _run(pipeline, "run-1")

    unknown = {
        str(record["station_code"]) for record, reason in simulator.truth.bad_samples() if reason == "unknown_station"
    }
    assert unknown  # the simulator plants samples of stations it does not list
    assert looked_up == unknown
    assert _sample_keys(pipeline.engine) == simulator.truth.valid_sample_keys()


def test_rerunning_the_same_interval_changes_nothing(pipeline: Pipeline) -> None:
    _run(pipeline, "run-1")
    engine = pipeline.engine
    before = (_count(engine, change_log), _count(engine, outbox), _count(engine, quarantine))
    _run(pipeline, "run-2")
    assert (_count(engine, change_log), _count(engine, outbox), _count(engine, quarantine)) == before


def test_an_incremental_run_reads_from_the_watermark_and_logs_only_new_and_corrected_samples(
    pipeline: Pipeline, simulator: WaterQualitySimulator, running: RunningSimulator
) -> None:
    _run(pipeline, "run-1")
    engine = pipeline.engine
    with engine.connect() as conn:
        watermark = read_watermark(conn, "water_quality", "samples")
    first_log = _count(engine, change_log, change_log.c.dataset == "water_quality.samples")
    simulator.advance(hours=1, corrections=3)
    _run(pipeline, "run-2")
    sample_requests = [r for r in running.requests if r.path.endswith("/samples")]
    assert watermark is not None
    assert sample_requests[-1].query["updated_since"] == watermark.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    with engine.connect() as conn:
        ops = Counter(
            conn.execute(
                select(change_log.c.op).where(
                    change_log.c.dataset == "water_quality.samples", change_log.c.seq > first_log
                )
            ).scalars()
        )
    assert ops == {"insert": len(simulator.truth.valid_sample_keys()) - first_log, "update": 3}


def test_the_watermark_never_passes_the_end_of_the_runs_interval(
    pipeline: Pipeline, simulator: WaterQualitySimulator, running: RunningSimulator
) -> None:
    """A sample updated after the interval's end is published, but the next run reads from the interval's end
    again (Meltano's signpost): a run can never skip what a concurrent correction wrote meanwhile."""
    cap = max(simulator.truth.valid_updated_at()) - timedelta(hours=3)
    _run(pipeline, "run-1", interval_end=cap)
    with pipeline.engine.connect() as conn:
        assert read_watermark(conn, "water_quality", "samples") == cap
    logged = _count(pipeline.engine, change_log)
    _run(pipeline, "run-2", interval_end=cap)
    sample_requests = [r for r in running.requests if r.path.endswith("/samples")]
    assert sample_requests[-1].query["updated_since"] == cap.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    assert _count(pipeline.engine, change_log) == logged


def test_a_record_changed_while_the_pages_were_read_holds_the_watermark_for_the_next_run(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    """Paged by number, a feed that changes mid-read can shift a record onto a page already read; a cursor later
    than the read's start shows the feed changed, so this run publishes what it read and moves no watermark."""
    last_update = max(simulator.truth.valid_updated_at())
    batch_id = pipeline.extract(run_id="run-1", interval_end=RUN_END, now=last_update)
    pipeline.validate(batch_id)
    pipeline.publish(batch_id)
    assert _sample_keys(pipeline.engine) == simulator.truth.valid_sample_keys()
    with pipeline.engine.connect() as conn:
        assert read_watermark(conn, "water_quality", "samples") is None
    _run(pipeline, "run-2")  # read with today's clock: nothing changed meanwhile
    with pipeline.engine.connect() as conn:
        assert read_watermark(conn, "water_quality", "samples") == last_update


def _committed_event_ids(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {dataset: event_id for dataset, event_id in conn.execute(select(outbox.c.dataset, outbox.c.event_id))}


def _expected_summary(truth: Any, event_ids: dict[str, str]) -> dict[str, tuple[object, ...]]:
    """What the first publish of the simulator's data commits: every valid record inserted, seq 1..n, one event."""
    stations, samples = len(truth.stations), len(truth.valid_sample_keys())
    return {
        "stations": (stations, 0, 0, 1, stations, event_ids["water_quality.stations"]),
        "samples": (samples, 0, 0, 1, samples, event_ids["water_quality.samples"]),
    }


def _summary(pipeline: Pipeline, batch_id: str) -> dict[str, tuple[object, ...]]:
    fields = ("inserted", "updated", "unchanged", "first_seq", "last_seq", "event_id")
    streams = pipeline.manifest(batch_id)["streams"]
    return {name: tuple(entry[field] for field in fields) for name, entry in streams.items()}


def test_a_rerun_of_a_publish_whose_status_update_was_lost_reports_what_committed(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    batch_id = pipeline.extract(run_id="run-1", interval_end=RUN_END)
    pipeline.validate(batch_id)
    with pipeline.engine.connect() as conn:
        validated = conn.execute(select(batches.c.status, batches.c.manifest).where(batches.c.batch_id == batch_id))
        status, manifest = validated.one()
    pipeline.publish(batch_id)
    # The state a kill between the publish commit and the batch's status update left behind: the data and the
    # outbox committed, the batch still "validated" without a publish summary.
    with pipeline.engine.begin() as conn:
        conn.execute(batches.update().where(batches.c.batch_id == batch_id).values(status=status, manifest=manifest))

    pipeline.publish(batch_id)

    assert _summary(pipeline, batch_id) == _expected_summary(simulator.truth, _committed_event_ids(pipeline.engine))
    assert pipeline.manifest(batch_id)["status"] == "published"


def test_a_cleared_and_rerun_publish_keeps_the_summary_of_the_publish_that_committed(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    batch_id = _run(pipeline, "run-1")
    before = (_count(pipeline.engine, change_log), _count(pipeline.engine, outbox))

    counts = pipeline.publish(batch_id)  # Airflow's "clear" on the publish task: the same batch once more

    assert (_count(pipeline.engine, change_log), _count(pipeline.engine, outbox)) == before
    assert _summary(pipeline, batch_id) == _expected_summary(simulator.truth, _committed_event_ids(pipeline.engine))
    assert counts["samples"]["inserted"] == len(simulator.truth.valid_sample_keys())


def test_exhausted_retries_publish_nothing_and_keep_the_watermark(
    pipeline: Pipeline, running: RunningSimulator
) -> None:
    running.faults.server_error(times=100)
    with pytest.raises(SourceUnavailableError, match="water_quality/stations"):
        pipeline.extract(run_id="run-1", interval_end=RUN_END)
    engine = pipeline.engine
    assert _count(engine, change_log) == 0
    assert _count(engine, dataset_table(WaterQualitySample)) == 0
    with engine.connect() as conn:
        assert read_watermark(conn, "water_quality", "samples") is None


def test_log_lines_written_inside_a_step_name_its_source_run_and_batch(
    pipeline: Pipeline, running: RunningSimulator
) -> None:
    """The connector's retry line knows nothing of runs; the step binds them (for its own line too), and they go once
    the step is over."""
    running.faults.server_error(times=1)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as lines:
        batch_id = pipeline.extract(run_id="run-7", interval_end=RUN_END)
        structlog.get_logger("after").info("after_the_step")
    bound = ("water_quality", "run-7", batch_id)
    retried = [line for line in lines if line["event"] == "request_failed"]
    assert len(retried) == 1
    assert (retried[0]["source"], retried[0]["run_id"], retried[0]["batch_id"]) == bound
    extracted = [line for line in lines if line["event"] == "batch_extracted"]
    assert [(line["source"], line["run_id"], line["batch_id"]) for line in extracted] == [bound]
    assert "run_id" not in lines[-1]
    assert "batch_id" not in lines[-1]


def test_notify_sends_one_cloudevent_per_dataset_with_the_logged_sequence_range(
    pipeline: Pipeline, simulator: WaterQualitySimulator, mqtt_url: str
) -> None:
    with ChangeSubscriber(mqtt_url) as subscriber:
        batch_id = _run(pipeline, "run-1")
        assert pipeline.notify(batch_id) == {"sent": 2}
        with pipeline.engine.connect() as conn:
            ids = set(conn.execute(select(outbox.c.event_id).where(outbox.c.dispatched_at.is_not(None))).scalars())
        events = {e.dataset: e for e in subscriber.wait_for(ids, timeout_s=10) if e.event_id in ids}
    truth = simulator.truth
    stations, samples = events["water_quality.stations"], events["water_quality.samples"]
    assert (stations.first_seq, stations.last_seq, stations.inserted) == (1, len(truth.stations), len(truth.stations))
    valid = len(truth.valid_sample_keys())
    assert (samples.first_seq, samples.last_seq, samples.inserted, samples.updated) == (1, valid, valid, 0)
    assert samples.dataschema == f"urn:waterhub:contract:water_quality.samples:{WaterQualitySample.meta.version}"
    assert {(e.source, e.hub_id) for e in events.values()} == {("urn:waterhub:pipeline-test", "pipeline-test")}


def test_a_notify_that_cannot_reach_the_broker_fails_and_keeps_the_events_for_its_retry(
    hub_settings: Settings, pipeline: Pipeline, mqtt_url: str, dead_port: int
) -> None:
    batch_id = _run(pipeline, "run-1")
    dead = hub_settings.model_copy(update={"mqtt_url": SecretStr(f"mqtt://127.0.0.1:{dead_port}")})
    broken = Pipeline(dead, "water_quality")
    with pytest.raises(StoreUnavailableError, match="stay in the outbox"):
        broken.notify(batch_id)
    broken.engine.dispose()
    assert _count(pipeline.engine, outbox, outbox.c.dispatched_at.is_(None)) == 2
    with ChangeSubscriber(mqtt_url) as subscriber:
        assert pipeline.notify(batch_id) == {"sent": 2}
        with pipeline.engine.connect() as conn:
            ids = set(conn.execute(select(outbox.c.event_id)).scalars())
        received = {e.event_id for e in subscriber.wait_for(ids, timeout_s=10)}
    assert ids <= received


def test_snapshot_writes_each_datasets_state_at_its_last_sequence_once(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    batch_id = _run(pipeline, "run-1")
    first = pipeline.snapshot(batch_id)
    assert pipeline.manifest(batch_id)["streams"]["samples"]["snapshot_created"] is True
    path = Path(first["samples"].removeprefix("file://"))
    written = path.stat().st_mtime_ns
    again = pipeline.snapshot(batch_id)
    assert again == first
    assert pipeline.manifest(batch_id)["streams"]["samples"]["snapshot_created"] is False
    assert path.stat().st_mtime_ns == written
    table = pq.read_table(path)
    assert table.num_rows == len(simulator.truth.valid_sample_keys())
    stored = set(zip(table["station_code"].to_pylist(), table["sampled_at"].to_pylist(), strict=True))
    assert stored == simulator.truth.valid_sample_keys()
    assert pipeline.manifest(batch_id)["streams"]["samples"]["snapshot_seq"] == len(stored)


def test_a_late_rerun_of_an_older_batchs_publish_keeps_the_newer_corrections(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    """A cleared publish task of run-1 rerun after run-2 published corrections: the older versions are stale."""
    older = _run(pipeline, "run-1")
    simulator.advance(hours=1, corrections=3)
    _run(pipeline, "run-2")
    engine = pipeline.engine
    before = (_count(engine, change_log), _count(engine, outbox))

    replayed = pipeline.publish(older)

    assert (replayed["samples"]["updated"], replayed["samples"]["stale"]) == (0, 3)
    assert (_count(engine, change_log), _count(engine, outbox)) == before
    table = dataset_table(WaterQualitySample)
    columns = [table.c[name] for name in ("station_code", "sampled_at", "updated_at", "ammonia_nitrogen")]
    with engine.connect() as conn:
        stored = {(code, at): (updated, ammonia) for code, at, updated, ammonia in conn.execute(select(*columns))}
    truth = simulator.truth
    outcomes = truth.published_outcomes()
    expected = {
        sample_key(record): (
            parse_beijing(str(record["updated_at"])),
            outcomes[sample_key(record)]["ammonia_nitrogen"].value,
        )
        for record in truth.valid_samples()
    }
    assert stored == expected


def test_a_snapshotted_run_leaves_no_staging_and_a_step_asked_to_reread_it_says_why(pipeline: Pipeline) -> None:
    batch_id = _run(pipeline, "run-1")
    assert list(pipeline.store.list(f"staging/{batch_id}/"))  # staged until the run's last step

    pipeline.snapshot(batch_id)

    assert list(pipeline.store.list(f"staging/{batch_id}/")) == []
    with pytest.raises(BatchNotFoundError, match="from extract"):
        pipeline.publish(batch_id)


def test_a_dag_task_refuses_a_relative_data_dir_that_would_hold_its_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_schema_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WATERHUB_DATABASE_URL", pg_schema_url)
    monkeypatch.setenv("WATERHUB_DATA_DIR", "var")
    with pytest.raises(StoreConfigError, match="WATERHUB_DATA_DIR is relative"):
        Pipeline.from_environment("water_quality")
    monkeypatch.setenv("WATERHUB_DATA_DIR", str(tmp_path / "var"))
    assert Pipeline.from_environment("water_quality").settings.data_dir == tmp_path / "var"


def _held(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        stored = conn.execute(select(quarantine.c.reasons).where(quarantine.c.dataset == "water_quality.samples"))
        return Counter(reason for (text,) in stored for reason in json.loads(text))


def _replay(pipeline: Pipeline, **chosen: Any) -> tuple[str | None, dict[str, dict[str, int]]]:
    batch_id = pipeline.stage_replay("water_quality.samples", **chosen)
    if batch_id is None:
        return None, {}
    pipeline.validate(batch_id)
    return batch_id, pipeline.publish(batch_id)


def test_a_replay_after_the_fix_publishes_what_now_passes_and_holds_the_rest_once(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    """The fix: the stations the bureau had not yet listed are published. Their samples then pass; a superseded
    duplicate passes alone but is older than the copy published (stale); a sample with no time stays held."""
    from tests.exchange.rows import publish, station

    _run(pipeline, "run-1")
    engine = pipeline.engine
    truth = simulator.truth
    unknown = [record for record, reason in truth.bad_samples() if reason == "unknown_station"]
    duplicates = [record for record, reason in truth.bad_samples() if reason == "duplicate_key"]
    missing_time = [record for record, reason in truth.bad_samples() if reason == "sampled_at_missing"]
    assert min(len(unknown), len(duplicates), len(missing_time)) >= 1  # the simulator plants each kind
    with engine.connect() as conn:
        watermark = read_watermark(conn, "water_quality", "samples")
    publish(engine, WaterQualityStation, [station(str(r["station_code"])) for r in unknown], run_id="stations-fix")
    log_before = _count(engine, change_log, change_log.c.dataset == "water_quality.samples")

    batch_id, published = _replay(pipeline)

    assert batch_id is not None
    assert (published["samples"]["inserted"], published["samples"]["stale"]) == (len(unknown), len(duplicates))
    assert _held(engine) == Counter({"sampled_at_missing": len(missing_time)})
    assert _sample_keys(engine) == truth.valid_sample_keys() | {sample_key(r) for r in unknown}
    assert _count(engine, change_log, change_log.c.dataset == "water_quality.samples") == log_before + len(unknown)
    with engine.connect() as conn:
        assert read_watermark(conn, "water_quality", "samples") == watermark  # old records move no watermark

    with engine.connect() as conn:
        held_ids = set(conn.execute(select(quarantine.c.id)).scalars())
    pipeline.publish(batch_id)  # a retried publish of the replay changes nothing
    assert _count(engine, change_log, change_log.c.dataset == "water_quality.samples") == log_before + len(unknown)
    again, republished = _replay(pipeline)  # only what is still held is replayed, and it is held again

    assert again is not None
    assert pipeline.manifest(again)["streams"]["samples"]["fetched"] == len(missing_time)
    assert republished["samples"]["inserted"] == republished["samples"]["updated"] == 0
    assert _held(engine) == Counter({"sampled_at_missing": len(missing_time)})
    assert _count(engine, change_log, change_log.c.dataset == "water_quality.samples") == log_before + len(unknown)
    with engine.connect() as conn:
        assert len(set(conn.execute(select(quarantine.c.id)).scalars())) == len(held_ids)


def test_a_replay_chosen_by_reason_takes_only_those_records(
    pipeline: Pipeline, simulator: WaterQualitySimulator
) -> None:
    _run(pipeline, "run-1")
    before = _held(pipeline.engine)

    batch_id = pipeline.stage_replay("water_quality.samples", reason="sampled_at_missing")

    assert batch_id is not None
    assert pipeline.manifest(batch_id)["streams"]["samples"]["fetched"] == before["sampled_at_missing"]
    assert pipeline.stage_replay("water_quality.samples", reason="no_such_reason") is None
