"""The river-chief platform's source against its simulator over real sockets: OAuth2 tokens, cursor pages,
tombstones, per-problem steps and the faults a read must survive or refuse.

What a test expects comes from the simulator's ground truth and request log, never from the code under test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.errors import SourceConfigError, SourceDataError, SourceUnavailableError
from connectors.http import Source
from connectors.http.settings import HttpClientSettings
from connectors.river_chief import RiverChiefSimulator, RiverChiefSource
from connectors.river_chief.settings import RiverChiefSourceSettings
from connectors.river_chief.simulator import RunningPlatform, record_key

CLIENT_ID, SECRET = "guangzhou-hub", "province-issued-secret"
HTTP = HttpClientSettings(timeout_s=2, max_attempts=3, max_retry_time_s=10, backoff_initial_s=0.01, backoff_max_s=0.05)


@pytest.fixture
def platform() -> Iterator[RunningPlatform]:
    simulator = RiverChiefSimulator(seed=5, client_id=CLIENT_ID, client_secret=SECRET, scale=0.005, days=12)
    with simulator.serve() as running:
        yield running


def _source(running: RunningPlatform, *, secret: str = SECRET, page_size: int = 6) -> Source:
    settings = RiverChiefSourceSettings(
        base_url=running.base_url, client_id=CLIENT_ID, client_secret=secret, page_size=page_size
    )
    return RiverChiefSource(settings, HTTP)


def _read(source: Source, name: str, **context: str) -> list[dict[str, object]]:
    with source.connect() as session:
        return list(session.read(source.stream(name), context=context or None))


def _gets(running: RunningPlatform, path: str) -> list[dict[str, str]]:
    return [entry.query for entry in running.requests if entry.method == "GET" and entry.path == path]


def test_a_full_read_walks_the_cursor_tokens_and_yields_every_record_once_tombstones_included(
    platform: RunningPlatform,
) -> None:
    platform.simulator.delete("patrols", 2)
    truth = platform.truth
    records = _read(_source(platform), "patrols")
    live = [r for r in records if r.get("deleted") is not True]
    assert sorted(map(str, live)) == sorted(map(str, truth.live["patrols"]))
    assert {record_key("patrols", r) for r in records if r.get("deleted") is True} == truth.deleted["patrols"]
    asked = _gets(platform, "/api/v1/patrols")
    assert len(asked) == -(-len(records) // 6)  # ceil: one request per page of 6
    assert "cursor" not in asked[0]
    assert all("cursor" in query for query in asked[1:])
    assert len({query.get("cursor") for query in asked}) == len(asked)


def test_one_token_serves_the_whole_run_and_an_expired_one_is_fetched_again_mid_run(
    platform: RunningPlatform,
) -> None:
    source = _source(platform)
    with source.connect() as session:
        pages = session.read(source.stream("segments"))
        first = [next(pages) for _ in range(7)]  # into the second page
        platform.faults.expire_token(1)  # the next request finds its token expired
        rest = list(pages)
    assert len(first + rest) == len(platform.truth.live["segments"]) + len(platform.truth.deleted["segments"])
    assert len(platform.simulator.tokens.issued) == 2
    statuses = [entry.status for entry in platform.requests if entry.method == "GET"]
    assert statuses.count(401) == 1
    assert statuses[-1] == 200


def test_a_refused_client_secret_fails_at_once_naming_its_variable_not_its_value(platform: RunningPlatform) -> None:
    with pytest.raises(SourceConfigError) as info:
        _read(_source(platform, secret="wrong-secret-123"), "rivers")
    assert info.value.setting == "WATERHUB_RIVER_CHIEF__CLIENT_SECRET"
    assert "wrong-secret-123" not in str(info.value)
    assert not _gets(platform, "/api/v1/rivers")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("malformed_page", SourceDataError),
        ("repeat_page", SourceDataError),
        ("server_error", SourceUnavailableError),
    ],
)
def test_a_page_that_cannot_be_read_fails_the_read(
    platform: RunningPlatform, fault: str, error: type[Exception]
) -> None:
    getattr(platform.faults, fault)(3 if fault == "server_error" else 1)  # three 500s exhaust the three attempts
    with pytest.raises(error, match="river_chief/chiefs"):
        _read(_source(platform), "chiefs")


def test_records_in_any_order_within_pages_are_all_read(platform: RunningPlatform) -> None:
    platform.simulator.shuffle_pages = True
    records = _read(_source(platform), "small_water_bodies")
    assert sorted(map(str, records)) == sorted(map(str, platform.truth.live["small_water_bodies"]))


def test_steps_are_read_per_problem_from_its_own_path(platform: RunningPlatform) -> None:
    problem = platform.truth.live["problems"][0]["problem_id"]
    steps = _read(_source(platform), "problem_steps", problem_id=str(problem))
    expected = [s for s in platform.truth.live["problem_steps"] if s["problem_id"] == problem]
    assert steps == expected
    assert [s["step_no"] for s in steps] == list(range(1, len(steps) + 1))
