"""The flood-control platform's source through the real pipeline, against its simulator over real sockets, on real
PostgreSQL: full and incremental sync, late corrections, tombstones, each fault, a token expiring mid-run, and
device rows meeting the platform's rows in the shared observation tables.

Expected values come from the simulator's ground truth (``HydrologyTruth``), never from the code under test.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from connectors.errors import SourceDataError, SourceUnavailableError
from connectors.hydrology import HydrologySimulator
from connectors.hydrology.settings import HydrologySourceSettings
from connectors.hydrology.simulator import OBSERVATIONS, TABLES, RunningHydrology, row_key
from connectors.hydrology.streams import HYDROLOGY_STREAMS, ROW_SOURCE, Sl323Stream
from connectors.simulation import beijing_text, parse_beijing
from contracts.hydrology import RiverRecord
from exchange.publish import publish_frame
from exchange.state import read_watermark
from exchange.tables import change_log, dataset_table, quarantine
from waterhub.pipeline import Pipeline
from waterhub.settings import HttpClientSettings, Settings

SECRET = "hydrology-test-secret"
CLIENT_ID = "city-hub"
RUN_END = datetime(2026, 6, 16, 1, 0, tzinfo=UTC)
"""An hour after the simulated period: no row is in the future of the run."""
PAGE_SIZE = 40
STREAMS: dict[str, type[Sl323Stream]] = {stream.table: stream for stream in HYDROLOGY_STREAMS}


@pytest.fixture
def simulator() -> HydrologySimulator:
    return HydrologySimulator(seed=5, client_id=CLIENT_ID, client_secret=SECRET, stations=30, steps=8)


@pytest.fixture
def hydrology(simulator: HydrologySimulator) -> Iterator[RunningHydrology]:
    with simulator.serve() as served:
        yield served


@pytest.fixture
def pipeline(tmp_path: Path, pg_schema_url: str, hydrology: RunningHydrology) -> Iterator[Pipeline]:
    block = HydrologySourceSettings(
        base_url=hydrology.base_url, client_id=CLIENT_ID, client_secret=SECRET, page_size=PAGE_SIZE
    )
    http = HttpClientSettings(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05, timeout_s=5)
    pipe = Pipeline(Settings(data_dir=tmp_path, database_url=pg_schema_url, hydrology=block, http=http), "hydrology")
    yield pipe
    pipe.engine.dispose()


def _run(pipeline: Pipeline, run_id: str) -> dict[str, dict[str, int]]:
    batch_id = pipeline.extract(run_id=run_id, interval_end=RUN_END)
    pipeline.validate(batch_id)
    return pipeline.publish(batch_id)


def _stored(engine: Engine, table: str) -> dict[tuple[str, ...], dict[str, Any]]:
    """A dataset's rows by the platform's key text (times back in Beijing time, as the platform writes them)."""
    stream = STREAMS[table]
    with engine.connect() as conn:
        rows = conn.execute(select(dataset_table(stream.contract))).mappings().all()
    keyed = {}
    for row in rows:
        platform = {name.upper(): beijing_text(v) if isinstance(v, datetime) else v for name, v in row.items()}
        keyed[row_key(table, platform)] = dict(row)
    return keyed


def _quarantined(engine: Engine, dataset: str) -> Counter[str]:
    with engine.connect() as conn:
        stored = conn.execute(select(quarantine.c.reasons).where(quarantine.c.dataset == dataset)).scalars()
        return Counter(reason for text in stored for reason in json.loads(text))


def _count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def _watermark(engine: Engine, stream: str) -> datetime | None:
    with engine.connect() as conn:
        return read_watermark(conn, "hydrology", stream)


def test_a_full_sync_publishes_every_good_row_of_every_table_and_quarantines_each_bad_one(
    pipeline: Pipeline, hydrology: RunningHydrology
) -> None:
    _run(pipeline, "run-1")
    truth, engine = hydrology.truth, pipeline.engine
    for table in TABLES:
        stream = STREAMS[table]
        published = truth.published(table)
        stored = _stored(engine, table)
        assert set(stored) == set(published), table
        assert _quarantined(engine, stream.contract.meta.key) == truth.quarantined(table), table
        assert {row["source"] for row in stored.values()} == {ROW_SOURCE}
        newest = max(parse_beijing(str(row["MODITIME"])) for row in published.values())
        assert _watermark(engine, stream.name) == newest, table
    reservoirs = truth.published("ST_RSVR_R")
    stored_reservoirs = _stored(engine, "ST_RSVR_R")
    for key, row in reservoirs.items():  # storage stays in 10⁶ m³, levels as sent
        assert (stored_reservoirs[key]["w"], stored_reservoirs[key]["rz"]) == (row["W"], row["RZ"])
    limits = _stored(engine, "ST_RSVRFSR_B")
    assert {key[1] for key in limits} == {"0415", "0716"}  # the main and the late flood season


def test_a_rerun_changes_nothing_and_an_incremental_run_reads_from_the_watermarks(
    pipeline: Pipeline, hydrology: RunningHydrology
) -> None:
    _run(pipeline, "run-1")
    engine = pipeline.engine
    logged = _count(engine, change_log)
    watermarks = {table: _watermark(engine, STREAMS[table].name) for table in TABLES}
    _run(pipeline, "run-2")
    assert _count(engine, change_log) == logged
    rain_requests = [r for r in hydrology.requests if r.path.endswith("/ST_PPTN_R")]
    rain_watermark = watermarks["ST_PPTN_R"]
    assert rain_watermark is not None
    assert rain_requests[-1].query["moditime_since"] == beijing_text(rain_watermark)


def test_late_corrections_and_deletions_of_old_rows_are_read_by_the_next_run_and_the_newer_version_wins(
    pipeline: Pipeline, hydrology: RunningHydrology
) -> None:
    _run(pipeline, "run-1")
    before = hydrology.truth
    hydrology.advance(2, corrections=3, deletions=2)
    after = hydrology.truth
    published = _run(pipeline, "run-2")
    engine = pipeline.engine
    river = _stored(engine, "ST_RIVER_R")
    assert set(river) == set(after.published("ST_RIVER_R"))
    corrected = {
        key
        for key, row in after.published("ST_RIVER_R").items()
        if key in before.published("ST_RIVER_R") and row["Z"] != before.published("ST_RIVER_R")[key]["Z"]
    }
    assert len(corrected) == 3
    for key in corrected:
        assert river[key]["z"] == after.published("ST_RIVER_R")[key]["Z"]
    deleted = after.deleted("ST_PPTN_R")
    assert len(deleted) == 2
    assert set(_stored(engine, "ST_PPTN_R")) == set(after.published("ST_PPTN_R"))
    assert not deleted & set(_stored(engine, "ST_PPTN_R"))
    assert published["river"]["updated"] == 3
    assert published["rainfall"]["deleted"] == 2
    new_steps = len(after.published("ST_PPTN_R")) + 2 - len(before.published("ST_PPTN_R"))
    assert published["rainfall"]["inserted"] == new_steps


def test_corrections_sit_among_old_rows_on_early_pages_and_are_still_read(
    pipeline: Pipeline, hydrology: RunningHydrology
) -> None:
    """The platform orders rows by key, not by update: a correction of an old row comes on an early page, before
    rows the watermark has passed; the run reads every page before it publishes, so page order does not matter."""
    _run(pipeline, "run-1")
    old_end = hydrology.simulator.end
    hydrology.advance(1, corrections=5)
    river = hydrology.truth.rows["ST_RIVER_R"]
    corrected = [  # old rows whose MODITIME is after the new step's reports: the corrections
        index
        for index, row in enumerate(river)
        if str(row["TM"]) <= beijing_text(old_end)
        and str(row["MODITIME"]) > beijing_text(old_end + timedelta(minutes=9))
    ]
    assert len(corrected) == 5
    assert min(corrected) // PAGE_SIZE < (len(river) - 1) // PAGE_SIZE  # not on the last page: out of update order
    _run(pipeline, "run-2")
    stored = _stored(pipeline.engine, "ST_RIVER_R")
    for index in corrected:
        assert stored[row_key("ST_RIVER_R", river[index])]["z"] == river[index]["Z"]


@pytest.mark.parametrize(
    ("fault", "error"),
    [("malformed_page", SourceDataError), ("repeat_page", SourceDataError), ("server_error", SourceUnavailableError)],
)
def test_a_fault_mid_run_publishes_nothing_and_the_next_run_resumes_from_the_last_committed_state(
    pipeline: Pipeline, hydrology: RunningHydrology, fault: str, error: type[Exception]
) -> None:
    hydrology.faults.let_through(6)  # stations and thresholds are read: the fault strikes in the rainfall pages
    getattr(hydrology.faults, fault)(times=10)
    with pytest.raises(error, match="hydrology/rainfall"):
        _run(pipeline, "run-1")
    engine = pipeline.engine
    assert _count(engine, change_log) == 0
    assert all(_watermark(engine, STREAMS[table].name) is None for table in TABLES)
    hydrology.faults.clear()
    _run(pipeline, "run-2")
    assert set(_stored(engine, "ST_PPTN_R")) == set(hydrology.truth.published("ST_PPTN_R"))


def test_rate_limits_within_the_retry_budget_are_waited_out(pipeline: Pipeline, hydrology: RunningHydrology) -> None:
    hydrology.faults.let_through(5)
    hydrology.faults.rate_limit(times=2, retry_after_s=0)
    _run(pipeline, "run-1")
    assert sum(request.status == 429 for request in hydrology.requests) == 2
    assert set(_stored(pipeline.engine, "ST_RIVER_R")) == set(hydrology.truth.published("ST_RIVER_R"))


def test_a_token_expiring_mid_run_is_replaced_and_the_run_completes(
    pipeline: Pipeline, hydrology: RunningHydrology
) -> None:
    hydrology.tokens.expire_after(8)
    _run(pipeline, "run-1")
    assert hydrology.tokens.issued == ["tok-1", "tok-2"]
    assert [r.status for r in hydrology.requests].count(401) == 1
    assert hydrology.tokens.requests[0] == {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    for table in OBSERVATIONS:
        assert set(_stored(pipeline.engine, table)) == set(hydrology.truth.published(table))


def test_device_rows_and_platform_rows_meet_in_one_table_and_the_newer_one_wins(
    pipeline: Pipeline, hydrology: RunningHydrology
) -> None:
    """A gateway row newer than the platform's (a device's resend after the platform's export) stands; an older one
    is replaced by the platform's version, whichever was written first."""
    rows = list(hydrology.truth.published("ST_RIVER_R").values())
    newer, older = rows[0], rows[1]

    def device_row(row: dict[str, object], shift: timedelta, z: float) -> dict[str, object]:
        updated = parse_beijing(str(row["MODITIME"])) + shift
        return RiverRecord.model_validate(
            {"stcd": row["STCD"], "tm": row["TM"], "z": z, "updated_at": updated, "source": "device:sl651"}
        ).model_dump()

    frame = pd.DataFrame([device_row(newer, timedelta(minutes=5), 1.5), device_row(older, -timedelta(minutes=1), 2.5)])
    with pipeline.engine.begin() as conn:
        publish_frame(conn, RiverRecord, frame, run_id="gateway", now=datetime.now(UTC))
    published = _run(pipeline, "run-1")
    stored = _stored(pipeline.engine, "ST_RIVER_R")
    assert (stored[row_key("ST_RIVER_R", newer)]["z"], stored[row_key("ST_RIVER_R", newer)]["source"]) == (
        1.5,
        "device:sl651",
    )
    assert (stored[row_key("ST_RIVER_R", older)]["z"], stored[row_key("ST_RIVER_R", older)]["source"]) == (
        older["Z"],
        ROW_SOURCE,
    )
    assert published["river"]["stale"] == 1
    assert published["river"]["updated"] == 1
