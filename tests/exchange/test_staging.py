"""A batch staged by one task and read by the next, through the local folder and an S3-compatible store alike."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from contracts.water_quality import WaterQualitySample
from exchange.errors import BatchNotFoundError
from exchange.staging import STAGING_REMOVED, Batch, BatchStaging, batch_id_for
from exchange.tables import ensure_schema
from tests.exchange.conftest import Stores
from tests.exchange.rows import NOW, sample, typed_frame


@pytest.fixture
def staging(sqlite_engine: Engine, stores: Stores) -> BatchStaging:
    ensure_schema(sqlite_engine)
    return BatchStaging(sqlite_engine, stores.new("objects"))


def test_records_and_frames_come_back_as_staged(staging: BatchStaging) -> None:
    records: list[dict[str, object]] = [
        {"st": "11000001", "w01001": "7.12", "name": '小关 "north"\n'},
        {"st": "11000002", "w01001": None},
    ]
    frame = typed_frame(WaterQualitySample, [sample("11000001", 0), sample("11000002", 1, ph=None)])
    batch = staging.open(source="water_quality", run_id="manual__1", interval_end=NOW, now=NOW)

    raw_keys = staging.put_records(batch, "samples", records, chunk=1)
    frame_key = staging.put_frame(batch, "samples.valid", frame)
    staged = staging.update(batch, status="validated", streams={"samples": {"raw": raw_keys, "valid": frame_key}})

    batch_id = batch_id_for("water_quality", "manual__1")
    assert list(staging.iter_records(raw_keys)) == [[record] for record in records]  # one part per record
    read = staging.read_frame(frame_key)
    assert read.equals(frame)
    assert list(read.dtypes) == list(frame.dtypes)
    assert sorted(staging.store.list(f"staging/{batch_id}/")) == [
        f"staging/{batch_id}/samples.raw.00000.ndjson",
        f"staging/{batch_id}/samples.raw.00001.ndjson",
        f"staging/{batch_id}/samples.valid.parquet",
    ]
    assert staging.get(batch_id) == staged


def test_a_batch_never_staged_is_reported_with_what_to_do(staging: BatchStaging) -> None:
    with pytest.raises(BatchNotFoundError, match="rerun the DAG from extract"):
        staging.get("water_quality-0000")


def _stage(staging: BatchStaging, run_id: str, now: datetime) -> Batch:
    batch = staging.open(source="water_quality", run_id=run_id, interval_end=now, now=now)
    staging.put_records(batch, "samples", [{"st": run_id}], chunk=10)
    return batch


def _staged_batches(staging: BatchStaging) -> set[str]:
    return {key.split("/")[1] for key in staging.store.list("staging/")}


def test_removing_a_batchs_staging_deletes_its_objects_only_and_flags_it(staging: BatchStaging) -> None:
    done, other = _stage(staging, "run-done", NOW), _stage(staging, "run-other", NOW)

    assert staging.remove(done) == 1
    assert staging.remove(done) == 0  # a retried cleanup finds nothing left and is no error

    assert _staged_batches(staging) == {other.batch_id}
    assert staging.get(done.batch_id).manifest[STAGING_REMOVED] is True
    assert STAGING_REMOVED not in staging.get(other.batch_id).manifest


def test_a_sweep_removes_failed_runs_staging_older_than_the_retention_and_orphans_only(staging: BatchStaging) -> None:
    old_failed = _stage(staging, "run-old", NOW - timedelta(hours=80))
    recent_failed = _stage(staging, "run-recent", NOW - timedelta(hours=10))
    staging.store.put("staging/water_quality-orphan/samples.raw.00000.ndjson", b"{}\n")  # no batch row names it

    swept = staging.sweep(now=NOW, retention=timedelta(hours=72))

    assert swept == sorted([old_failed.batch_id, "water_quality-orphan"])
    assert _staged_batches(staging) == {recent_failed.batch_id}
    assert staging.get(old_failed.batch_id).manifest[STAGING_REMOVED] is True
    assert staging.sweep(now=NOW, retention=timedelta(hours=72)) == []
