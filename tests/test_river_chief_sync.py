"""The river-chief source through the whole pipeline against its simulator: full and incremental sync, late
corrections, tombstones, tokens expiring mid-run, per-problem partitions resuming from their own watermarks, and a
failed run that publishes nothing and resumes from the last committed state.

Expected values come from the simulator's ground truth and request log, never from the code under test.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from connectors.errors import SourceDataError
from connectors.river_chief.simulator import RunningPlatform, record_key
from connectors.river_chief.streams import PLATFORM_STREAMS
from connectors.simulation import beijing_text
from exchange.state import read_watermark
from exchange.tables import dataset_table, quarantine, stream_state
from tests.river_chief_hub import hub_pipeline, served_platform, sync

STREAMS = {stream.name: stream.contract for stream in PLATFORM_STREAMS}


@pytest.fixture
def platform() -> Iterator[RunningPlatform]:
    with served_platform(seed=11, days=14) as running:
        yield running


def _published(engine: Engine, stream: str) -> dict[tuple[str, ...], dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(select(dataset_table(STREAMS[stream]))).mappings().all()
    return {record_key(stream, dict(row)): dict(row) for row in rows}


def _quarantined(engine: Engine, stream: str) -> Counter[str]:
    with engine.connect() as conn:
        query = select(quarantine.c.reasons).where(quarantine.c.dataset == STREAMS[stream].meta.key)
        return Counter(reason for (reasons,) in conn.execute(query) for reason in json.loads(reasons))


def _asked_since(running: RunningPlatform, path: str, after: int) -> list[str | None]:
    """``updated_since`` of each first-page request for ``path`` after the first ``after`` requests of the log."""
    return [
        e.query.get("updated_since")
        for e in running.requests[after:]
        if e.method == "GET" and e.path == path and "cursor" not in e.query
    ]


def test_full_then_incremental_sync_publishes_the_truth_with_corrections_deletes_and_partitions(
    platform: RunningPlatform, tmp_path: Path, pg_schema_url: str
) -> None:
    pipeline = hub_pipeline(platform, tmp_path, pg_schema_url)
    simulator = platform.simulator
    sync(pipeline, platform, "run-1")
    truth = platform.truth
    for stream in STREAMS:
        assert set(_published(pipeline.engine, stream)) == truth.keys(stream), stream
        assert _quarantined(pipeline.engine, stream) == Counter(truth.quarantined(stream).values()), stream
    assert len(simulator.tokens.issued) == 1

    with pipeline.engine.connect() as conn:
        patrols_mark = read_watermark(conn, "river_chief", "patrols")
        partitions = {
            json.loads(key)["problem_id"]: read_watermark(conn, "river_chief", "problem_steps", key)
            for key in conn.execute(
                select(stream_state.c.partition_key).where(stream_state.c.stream == "problem_steps")
            ).scalars()
        }
    assert patrols_mark is not None
    assert len(partitions) == len({key[0] for key in truth.keys("problem_steps")})
    assert len(set(partitions.values())) > 1  # each problem's steps have their own watermark

    simulator.advance(hours=30)
    corrected = simulator.correct("patrols", 3)
    deleted = simulator.delete("patrols", 2) + simulator.delete("segments", 1)
    platform.faults.expire_token(1)  # the first data request of the run finds its token expired
    seen = len(platform.requests)
    sync(pipeline, platform, "run-2")
    truth = platform.truth

    assert len(simulator.tokens.issued) == 2  # the first run's, kept until it expired mid-run, then one fetched again
    for stream in STREAMS:
        assert set(_published(pipeline.engine, stream)) == truth.keys(stream), stream
    patrols = _published(pipeline.engine, "patrols")
    live = {record_key("patrols", r): r for r in truth.live["patrols"]}
    for key in corrected:  # the late correction of an old record won
        assert patrols[key]["distance_km"] == pytest.approx(live[key]["distance_km"])
    assert not set(deleted) & (set(patrols) | set(_published(pipeline.engine, "segments")))
    assert _asked_since(platform, "/api/v1/patrols", seen) == [beijing_text(patrols_mark)]
    for problem, mark in partitions.items():  # a problem read again resumes its steps from its own watermark
        asked = _asked_since(platform, f"/api/v1/problems/{problem}/steps", seen)
        assert mark is not None
        assert asked in ([], [beijing_text(mark)]), problem
    pipeline.engine.dispose()


def test_a_run_that_fails_mid_read_publishes_nothing_and_the_next_resumes_from_the_committed_state(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    pipeline = hub_pipeline(platform, tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    platform.faults.repeat_page(1)  # the first next-page request gets its previous page again: a loop
    with pytest.raises(SourceDataError, match="repeating a page"):
        pipeline.extract(run_id="run-1", interval_end=platform.simulator.clock + timedelta(hours=1))
    with pipeline.engine.connect() as conn:
        assert conn.execute(select(stream_state)).all() == []
    assert all(not _published(pipeline.engine, stream) for stream in STREAMS)

    sync(pipeline, platform, "run-2")
    for stream in STREAMS:
        assert set(_published(pipeline.engine, stream)) == platform.truth.keys(stream), stream
    pipeline.engine.dispose()
