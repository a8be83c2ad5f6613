"""The four platform sources (drainage facilities, drainage households, rural sewage, standard addresses) end to
end against their simulators over real sockets, on PostgreSQL: full and incremental sync, late corrections,
tombstones and register deletions, and every fault a platform throws (rate limits, server errors, timeouts,
malformed pages, pagination loops, tokens expiring mid-run, errors beyond retries).

One test body serves the four sources: they share their shape (``connectors.city_platform``), so what differs is
the simulator. What a test expects comes from the simulator's ground truth and request log, never from the hub.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.addresses.simulator import AddressesSimulator
from connectors.city_platform.simulator import PlatformSimulator, RunningPlatform, parse_beijing
from connectors.drainage_facilities.simulator import DrainageFacilitiesSimulator
from connectors.drainage_households.simulator import DrainageHouseholdsSimulator
from connectors.errors import SourceDataError, SourceUnavailableError
from connectors.rural_sewage.simulator import RuralSewageSimulator
from exchange.state import read_watermark
from exchange.tables import change_log, dataset_table, quarantine
from waterhub.pipeline import Pipeline
from waterhub.settings import HttpClientSettings, Settings
from waterhub.sources import source_declaration

SECRET = "platform-test-secret"
PAGE_SIZE = 4
HTTP = HttpClientSettings(max_attempts=5, backoff_initial_s=0.01, backoff_max_s=0.02, timeout_s=1)
SIMULATORS: dict[str, type[PlatformSimulator]] = {
    "drainage_facilities": DrainageFacilitiesSimulator,
    "drainage_households": DrainageHouseholdsSimulator,
    "rural_sewage": RuralSewageSimulator,
    "addresses": AddressesSimulator,
}


@pytest.fixture(params=sorted(SIMULATORS))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def running(name: str) -> Iterator[RunningPlatform]:
    with SIMULATORS[name](seed=3, client_secret=SECRET).serve() as served:
        yield served


@pytest.fixture
def pipeline(name: str, running: RunningPlatform, tmp_path: Path, pg_schema_url: str) -> Iterator[Pipeline]:
    block = source_declaration(name).settings_class()(
        base_url=running.base_url, client_secret=SECRET, page_size=PAGE_SIZE
    )
    blocks: dict[str, Any] = {name: block}
    settings = Settings(data_dir=tmp_path, database_url=pg_schema_url, http=HTTP, **blocks)
    pipe = Pipeline(settings, name)
    yield pipe
    pipe.engine.dispose()


def run(pipeline: Pipeline, running: RunningPlatform, run_id: str) -> str:
    now = running.simulator.now
    batch_id = pipeline.extract(run_id=run_id, interval_end=now, now=now)
    pipeline.validate(batch_id, now=now)
    pipeline.publish(batch_id, now=now)
    return batch_id


def published(engine: Engine, pipeline: Pipeline) -> dict[str, dict[tuple[object, ...], dict[str, Any]]]:
    """Every stream's table as primary key → row."""
    tables: dict[str, dict[tuple[object, ...], dict[str, Any]]] = {}
    with engine.connect() as conn:
        for stream in pipeline.source.streams:
            key = stream.contract.meta.primary_key
            rows = conn.execute(select(dataset_table(stream.contract))).mappings()
            tables[stream.name] = {tuple(row[k] for k in key): dict(row) for row in rows}
    return tables


def quarantined(engine: Engine, dataset: str) -> list[tuple[dict[str, Any], list[str]]]:
    with engine.connect() as conn:
        rows = conn.execute(select(quarantine.c.payload, quarantine.c.reasons).where(quarantine.c.dataset == dataset))
        return [
            (json.loads(payload), json.loads(reasons) if isinstance(reasons, str) else reasons)
            for payload, reasons in rows
        ]


def sorted_pairs(pairs: list[tuple[dict[str, Any], Any]]) -> list[str]:
    return sorted(json.dumps([record, reason], sort_keys=True, ensure_ascii=False) for record, reason in pairs)


def assert_holds_truth(pipeline: Pipeline, running: RunningPlatform) -> None:
    """The tables hold exactly the records the truth publishes, each as served; quarantine each bad one with its
    one reason."""
    truth = running.truth
    tables = published(pipeline.engine, pipeline)
    for stream in pipeline.source.streams:
        expected = truth.published[stream.name]
        assert set(tables[stream.name]) == set(expected), stream.name
        for key, record in expected.items():
            row = tables[stream.name][key]
            for spec in stream.contract.field_specs():
                sent = record.get(spec.name)
                if spec.type == "datetime" and sent is not None:
                    sent = parse_beijing(sent)
                assert row[spec.name] == sent, (stream.name, key, spec.name)
        held = quarantined(pipeline.engine, stream.contract.meta.key)
        want = [(record, [reason]) for record, reason in truth.quarantined[stream.name]]
        assert sorted_pairs(held) == sorted_pairs(want), stream.name


def test_a_full_sync_publishes_every_good_record_and_quarantines_each_bad_one_with_its_reason(
    pipeline: Pipeline, running: RunningPlatform
) -> None:
    run(pipeline, running, "run-1")
    assert_holds_truth(pipeline, running)
    assert all(entry.status == 200 for entry in running.requests)
    assert len(running.simulator.tokens.issued) == 1  # one token for the whole run


def test_an_incremental_sync_asks_from_each_watermark_and_takes_new_records_and_late_corrections(
    pipeline: Pipeline, running: RunningPlatform
) -> None:
    run(pipeline, running, "run-1")
    truth = running.truth
    marks = {
        stream.name: max(parse_beijing(r["updated_at"]) for r in truth.published[stream.name].values())
        for stream in pipeline.source.streams
        if stream.cursor is not None
    }
    running.simulator.advance(hours=6, corrections=2)
    before = len(running.requests)
    run(pipeline, running, "run-2")
    asked = {e.path: e.query.get("updated_since") for e in running.requests[before:] if e.query.get("page") == "1"}
    for stream in pipeline.source.streams:
        since = asked[stream.path]
        if stream.cursor is None:
            assert since is None  # a register is read whole
        else:
            assert since is not None
            assert parse_beijing(since) == marks[stream.name]
            with pipeline.engine.connect() as conn:
                mark = read_watermark(conn, pipeline.source_name, stream.name, "")
            newest = max(parse_beijing(r["updated_at"]) for r in running.truth.published[stream.name].values())
            assert mark == newest
    assert_holds_truth(pipeline, running)  # corrections (later updated_at) stand over the first versions


def test_rerunning_an_interval_changes_nothing(pipeline: Pipeline, running: RunningPlatform) -> None:
    run(pipeline, running, "run-1")
    with pipeline.engine.connect() as conn:
        seq = conn.execute(select(change_log.c.seq).order_by(change_log.c.seq.desc()).limit(1)).scalar_one()
    run(pipeline, running, "run-2")
    with pipeline.engine.connect() as conn:
        assert conn.execute(select(change_log.c.seq).where(change_log.c.seq > seq)).first() is None


def test_tombstones_and_register_entries_gone_are_deleted(pipeline: Pipeline, running: RunningPlatform) -> None:
    run(pipeline, running, "run-1")
    running.simulator.advance(hours=1, deletions=1)
    deleted = running.truth.deleted
    assert all(deleted.values())  # every stream lost one record
    run(pipeline, running, "run-2")
    tables = published(pipeline.engine, pipeline)
    with pipeline.engine.connect() as conn:
        deletes = conn.execute(select(change_log.c.dataset, change_log.c.key).where(change_log.c.op == "delete")).all()
    for stream in pipeline.source.streams:
        assert not deleted[stream.name] & set(tables[stream.name]), stream.name
        assert sum(1 for dataset, _ in deletes if dataset == stream.contract.meta.key) == len(deleted[stream.name])
    assert_holds_truth(pipeline, running)


def test_passing_faults_and_a_token_expiring_mid_run_are_retried_and_change_nothing(
    pipeline: Pipeline, running: RunningPlatform
) -> None:
    faults = running.faults
    faults.rate_limit(retry_after_s=0)
    faults.server_error(2)
    faults.slow(delay_s=1.5)  # longer than the client's timeout
    running.simulator.tokens.expire_after(6)
    run(pipeline, running, "run-1")
    assert faults.pending == 0
    assert len(running.simulator.tokens.issued) == 2  # the first token, and one fetched again after the 401
    assert [entry.status for entry in running.requests].count(401) == 1
    assert [entry.fault for entry in running.requests if entry.fault] == [
        "rate_limit",
        "server_error",
        "server_error",
        "slow",
    ]
    assert_holds_truth(pipeline, running)


def test_failed_runs_publish_nothing_and_the_next_resumes_from_the_last_commit(
    pipeline: Pipeline, running: RunningPlatform
) -> None:
    run(pipeline, running, "run-1")
    running.simulator.advance(hours=3, corrections=PAGE_SIZE)  # every stream reads more than one page
    expected = running.truth
    with pipeline.engine.connect() as conn:
        last = conn.execute(select(change_log.c.seq).order_by(change_log.c.seq.desc()).limit(1)).scalar_one()
        marks = {s.name: read_watermark(conn, pipeline.source_name, s.name, "") for s in pipeline.source.streams}
    failures: list[tuple[str, int, type[Exception]]] = [
        ("malformed_page", 1, SourceDataError),
        ("repeat_page", 1, SourceDataError),
        ("server_error", HTTP.max_attempts, SourceUnavailableError),  # beyond the retries
    ]
    for attempt, (fault, times, error) in enumerate(failures):
        getattr(running.faults, fault)(times)
        with pytest.raises(error):
            run(pipeline, running, f"run-failed-{attempt}")
        running.faults.clear()
        with pipeline.engine.connect() as conn:
            assert conn.execute(select(change_log.c.seq).where(change_log.c.seq > last)).first() is None
            assert {
                s.name: read_watermark(conn, pipeline.source_name, s.name, "") for s in pipeline.source.streams
            } == marks
    run(pipeline, running, "run-2")
    assert running.truth == expected
    assert_holds_truth(pipeline, running)


def test_a_page_of_a_paged_stream_comes_in_several_pages(name: str, running: RunningPlatform) -> None:
    """The tests above read more than one page per stream, so paging and out-of-order pages are exercised."""
    truth = running.truth
    assert all(len(records) + len(truth.quarantined[s]) > PAGE_SIZE for s, records in truth.published.items())
    feed_order = {
        s: [parse_beijing(r["updated_at"]) for r in records.values()] for s, records in truth.published.items()
    }
    assert any(times != sorted(times) for times in feed_order.values())  # served in key order, not update order
    assert timedelta(0) < max(max(t) - min(t) for t in feed_order.values())
    assert isinstance(running.simulator.now, datetime)
    assert name in SIMULATORS
