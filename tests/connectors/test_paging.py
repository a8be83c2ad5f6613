"""Page number, offset, cursor-token and Link-header paging, and child streams read per parent record, against a
small simulator over a real socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.errors import SourceDataError
from connectors.http import partition_key
from connectors.http.settings import HttpClientSettings
from tests.connectors.paging_app import PROBLEMS, READINGS, STATIONS, STEPS, PagingSimulator, PagingSource

HTTP = HttpClientSettings(timeout_s=2, max_attempts=2, backoff_initial_s=0.01, backoff_max_s=0.02)


@pytest.fixture
def simulator() -> PagingSimulator:
    return PagingSimulator()


@pytest.fixture
def source(simulator: PagingSimulator) -> Iterator[PagingSource]:
    with simulator.served() as server:
        yield PagingSource(server.base_url, HTTP)


def test_a_cursor_token_feed_is_read_to_its_last_token(source: PagingSource, simulator: PagingSimulator) -> None:
    with source.connect() as session:
        records = list(session.read(source.stream("problems")))
    assert records == PROBLEMS
    assert [e.query.get("cursor") for e in simulator.requests] == [None, "t2", "t4"]


def test_a_token_pointing_back_fails_loudly(source: PagingSource, simulator: PagingSimulator) -> None:
    simulator.loop_token = True
    with source.connect() as session, pytest.raises(SourceDataError, match=r"paging/problems: .* already read"):
        list(session.read(source.stream("problems")))


def test_a_child_stream_is_read_per_parent_record_following_link_headers(
    source: PagingSource, simulator: PagingSimulator
) -> None:
    steps = source.stream("steps")
    with source.connect() as session:
        parents = list(session.read(source.stream("problems")))
        contexts = [steps.context(parent) for parent in parents]
        read = {ctx["problem_id"]: list(session.read(steps, context=ctx)) for ctx in contexts if ctx}
    assert read == STEPS
    asked = [(e.path, e.query.get("page")) for e in simulator.requests if e.path.endswith("/steps")]
    assert asked[:5] == [  # P1 has no step, P4 three: two pages of two
        ("/problems/P1/steps", None),
        ("/problems/P2/steps", None),
        ("/problems/P3/steps", None),
        ("/problems/P4/steps", None),
        ("/problems/P4/steps", "2"),
    ]
    assert {partition_key(ctx) for ctx in contexts} == {f'{{"problem_id":"P{n}"}}' for n in range(1, 6)}


def test_a_stream_partitioned_per_station_reads_each_by_offset(
    source: PagingSource, simulator: PagingSimulator
) -> None:
    readings = source.stream("readings")
    with source.connect() as session:
        stations = list(session.read(source.stream("stations")))
        read = {s["code"]: list(session.read(readings, context=readings.context(s))) for s in stations}
    assert stations == STATIONS
    assert read == READINGS
    offsets = [(e.query["station"], e.query["offset"]) for e in simulator.requests if e.path == "/readings"]
    assert offsets == [("S1", "0"), ("S2", "0"), ("S2", "3"), ("S3", "0"), ("S3", "3"), ("S3", "6")]


def test_a_child_stream_is_not_read_without_a_context(source: PagingSource) -> None:
    with source.connect() as session, pytest.raises(ValueError, match="context from its parent"):
        list(session.read(source.stream("steps")))
