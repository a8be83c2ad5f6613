"""The water-quality source against its simulator over real sockets: paging, auth, resume, retries, bad pages.

What a test expects comes from the simulator's ground truth and request log, never from the code under test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

import waterhub
from connectors.errors import SourceConfigError, SourceDataError, SourceUnavailableError
from connectors.simulation import RequestLogEntry
from connectors.water_quality import WaterQualitySimulator, WaterQualitySource
from connectors.water_quality.simulator import BadKind, RunningSimulator, parse_beijing
from waterhub.settings import HttpClientSettings

if TYPE_CHECKING:
    from tests.connectors.conftest import RecordingSleep

MakeSource = Callable[..., WaterQualitySource]
SAMPLES = "/api/v1/samples"
STATIONS = "/api/v1/stations"


def _read(source, name, *, since=None, sleep=None):
    stream = next(s for s in source.streams if s.name == name)
    session = source.connect(sleep=sleep) if sleep is not None else source.connect()
    with session:
        return list(session.read(stream, since=since))


def _data_requests(running: RunningSimulator, path: str) -> list[RequestLogEntry]:
    return [entry for entry in running.requests if entry.path == path]


def test_the_source_declares_stations_then_samples_with_keys_from_the_contracts(
    make_source: MakeSource, api_key: str
) -> None:
    source = make_source()
    assert source.name == "water_quality"
    assert [stream.name for stream in source.streams] == ["stations", "samples"]
    stations, samples = source.streams
    assert stations.contract.meta.key == "water_quality.stations"
    assert samples.contract.meta.key == "water_quality.samples"
    assert stations.primary_key == ("station_code",)
    assert samples.primary_key == ("station_code", "sampled_at")
    assert stations.cursor is None
    assert samples.cursor is not None
    assert (samples.cursor.field, samples.cursor.param) == ("updated_at", "updated_since")
    assert api_key not in repr(source.auth)


def test_a_full_read_asks_for_every_page_once_and_yields_every_record_once(
    make_source: MakeSource, running: RunningSimulator, simulator: WaterQualitySimulator, page_size: int
) -> None:
    truth = simulator.truth
    records = _read(make_source(), "samples")
    assert records == list(truth.samples)  # in feed order, NaN tokens as "NaN", bad records included
    pages = math.ceil(len(truth.samples) / page_size)
    asked = _data_requests(running, SAMPLES)
    assert [entry.query for entry in asked] == [
        {"page": str(n), "page_size": str(page_size)} for n in range(1, pages + 1)
    ]
    assert all(entry.status == 200 for entry in asked)


def test_every_request_carries_the_api_key_and_our_user_agent(
    make_source: MakeSource, running: RunningSimulator
) -> None:
    stations = _read(make_source(), "stations")
    assert stations == list(running.truth.stations)
    assert running.requests
    assert all(entry.authorized for entry in running.requests)
    assert {entry.user_agent for entry in running.requests} == {f"waterhub/{waterhub.__version__}"}


def test_a_wrong_api_key_fails_at_once_with_a_config_error_that_does_not_show_the_key(
    make_source: MakeSource, running: RunningSimulator, api_key: str
) -> None:
    wrong_key = "not-the-right-key-42"
    with pytest.raises(
        SourceConfigError, match=r"water_quality/stations: GET /api/v1/stations\?page=1.* \(401"
    ) as info:
        _read(make_source(api_key=wrong_key), "stations")
    message = str(info.value)
    assert "WATERHUB_WATER_QUALITY__API_KEY" in message
    assert wrong_key not in message
    assert api_key not in message
    assert [(e.status, e.authorized) for e in running.requests] == [(401, False)]  # never retried


def test_a_wrong_base_url_path_fails_with_a_config_error_naming_the_setting(
    make_source: MakeSource, running: RunningSimulator
) -> None:
    with pytest.raises(SourceConfigError, match=r"\(404 Not Found\).*WATERHUB_WATER_QUALITY__BASE_URL"):
        _read(make_source(base_url=running.base_url + "/v0"), "stations")
    assert [(e.path, e.status) for e in running.requests] == [("/v0/api/v1/stations", 404)]


def test_since_is_sent_as_beijing_time_and_only_records_updated_since_then_come_back(
    make_source: MakeSource, running: RunningSimulator, simulator: WaterQualitySimulator
) -> None:
    since = datetime(2026, 11, 22, 16, 30, 15, 999_000, tzinfo=UTC)  # 2026-11-23 00:30:15 in Beijing
    records = _read(make_source(), "samples", since=since)
    expected = [
        r for r in simulator.truth.samples if parse_beijing(str(r["updated_at"])) >= since.replace(microsecond=0)
    ]
    assert 0 < len(expected) < len(simulator.truth.samples)
    assert records == expected
    assert {entry.query["updated_since"] for entry in _data_requests(running, SAMPLES)} == {"2026-11-23 00:30:15"}


def test_stations_are_read_in_full_even_with_a_watermark(make_source: MakeSource, running: RunningSimulator) -> None:
    stations = _read(make_source(), "stations", since=datetime(2030, 1, 1, tzinfo=UTC))
    assert stations == list(running.truth.stations)
    assert all("updated_since" not in entry.query for entry in running.requests)


def test_a_naive_watermark_is_refused_rather_than_guessed(make_source: MakeSource) -> None:
    with pytest.raises(ValueError, match="naive"):
        _read(make_source(), "samples", since=datetime(2026, 11, 22, 8))  # noqa: DTZ001 - the point of the test


def test_after_advance_a_read_from_the_watermark_brings_only_new_and_corrected_samples(
    make_source: MakeSource, running: RunningSimulator, simulator: WaterQualitySimulator
) -> None:
    source = make_source()
    first = _read(source, "samples")
    watermark = max(parse_beijing(str(r["updated_at"])) for r in simulator.truth.valid_samples())
    before = {(r["station_code"], r["sampled_at"]): r for r in first}
    old_end = simulator.end

    simulator.advance(hours=1, corrections=2)
    second = _read(source, "samples", since=watermark)

    newer = [r for r in second if parse_beijing(str(r["updated_at"])) > watermark]
    new_hour = {(code, old_end) for code in simulator.truth.station_codes()}
    new_keys = {(r["station_code"], parse_beijing(str(r["sampled_at"]))) for r in newer}
    corrected = {key for key in new_keys if key not in new_hour}
    assert new_keys >= new_hour
    assert len(corrected) == 2
    for record in newer:
        key = (record["station_code"], record["sampled_at"])
        if (record["station_code"], parse_beijing(str(record["sampled_at"]))) in corrected:
            assert record != before[key]  # re-sent with changed values
    at_watermark = [r for r in second if parse_beijing(str(r["updated_at"])) == watermark]
    assert len(second) == len(newer) + len(at_watermark)  # inclusive: the watermark's own records come again
    assert len(newer) == len(simulator.truth.station_codes()) + 2


def test_a_429_with_retry_after_is_retried_after_exactly_the_asked_wait(
    make_source: MakeSource, running: RunningSimulator, sleep: RecordingSleep
) -> None:
    running.faults.rate_limit(times=1, retry_after_s=1)
    stations = _read(make_source(), "stations", sleep=sleep)
    assert stations == list(running.truth.stations)
    assert [(e.status, e.fault) for e in running.requests] == [(429, "rate_limit"), (200, None)]
    assert sleep.waits == [1.0]


def test_a_retry_after_given_as_an_http_date_is_honoured_too(
    make_source: MakeSource, running: RunningSimulator, sleep: RecordingSleep
) -> None:
    running.faults.rate_limit(times=1, retry_after_s=1, as_http_date=True)
    stations = _read(make_source(), "stations", sleep=sleep)
    assert stations == list(running.truth.stations)
    assert [e.status for e in running.requests] == [429, 200]
    assert sleep.waits == [1.0]


def test_server_errors_are_retried_with_short_jittered_backoff(
    make_source: MakeSource, running: RunningSimulator, sleep: RecordingSleep, http_settings: HttpClientSettings
) -> None:
    running.faults.server_error(times=2)
    records = _read(make_source(), "samples", sleep=sleep)
    assert records == list(running.truth.samples)
    assert [e.status for e in _data_requests(running, SAMPLES)][:3] == [500, 500, 200]
    assert len(sleep.waits) == 2
    assert all(0 < wait <= http_settings.backoff_max_s for wait in sleep.waits)


def test_a_slow_answer_times_out_and_is_retried(
    make_source: MakeSource, running: RunningSimulator, sleep: RecordingSleep
) -> None:
    running.faults.slow(times=1, delay_s=5)
    quick = HttpClientSettings(timeout_s=1.0, max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05)
    stations = _read(make_source(http=quick), "stations", sleep=sleep)
    assert stations == list(running.truth.stations)
    assert [e.fault for e in running.requests] == ["slow", None]
    assert len(sleep.waits) == 1


def test_exhausted_retries_raise_source_unavailable_with_what_where_and_what_to_do(
    make_source: MakeSource, running: RunningSimulator, api_key: str
) -> None:
    running.faults.server_error(times=10)
    since = datetime(2026, 11, 22, 6, tzinfo=UTC)
    with pytest.raises(SourceUnavailableError) as info:
        _read(make_source(), "samples", since=since)
    message = str(info.value)
    assert message.startswith(
        "water_quality/samples: GET /api/v1/samples?page=1&page_size=7&updated_since=2026-11-22+14%3A00%3A00 "
        "failed 3 times in "
    )
    assert "(500). Nothing was published; the next run resumes from 2026-11-22T06:00:00Z." in message
    assert "Check that the Ecology and Environment Bureau's water-quality API is up." in message
    assert api_key not in message
    assert [e.status for e in running.requests] == [500, 500, 500]
    assert running.faults.pending == 7


def test_an_unreachable_source_is_unavailable_after_the_retry_budget(
    http_settings: HttpClientSettings, api_key: str, free_port: int
) -> None:
    from connectors.water_quality import WaterQualitySource
    from connectors.water_quality.settings import WaterQualitySourceSettings

    source = WaterQualitySource(
        WaterQualitySourceSettings(base_url=f"http://127.0.0.1:{free_port}", api_key=api_key), http_settings
    )
    with pytest.raises(SourceUnavailableError, match=r"failed 3 times .*\(connection failed: ConnectError\)"):
        _read(source, "stations")


def test_a_retry_after_longer_than_we_wait_fails_at_once(
    make_source: MakeSource, running: RunningSimulator, sleep: RecordingSleep, api_key: str
) -> None:
    running.faults.rate_limit(times=1, retry_after_s=120)
    with pytest.raises(SourceUnavailableError, match=r"retry after 120 s, longer than the 5 s we wait") as info:
        _read(make_source(), "stations", sleep=sleep)
    assert api_key not in str(info.value)
    assert [e.status for e in running.requests] == [429]
    assert sleep.waits == []


def test_a_truncated_page_is_a_data_error_and_is_not_retried(
    make_source: MakeSource, running: RunningSimulator
) -> None:
    running.faults.malformed_page(times=1)
    with pytest.raises(SourceDataError, match=r"water_quality/samples: GET /api/v1/samples\?page=1.* not valid JSON"):
        _read(make_source(), "samples")
    assert [(e.status, e.fault) for e in running.requests] == [(200, "malformed_page")]


def test_a_page_repeating_the_previous_one_is_a_pagination_loop(
    make_source: MakeSource, running: RunningSimulator
) -> None:
    running.faults.repeat_page(times=1)
    with pytest.raises(SourceDataError, match=r"water_quality/samples: page 2 starts with the same record as page 1"):
        _read(make_source(), "samples")
    assert [(e.query["page"], e.fault) for e in running.requests] == [("1", None), ("2", "repeat_page")]


def test_a_nan_token_in_the_body_arrives_as_the_string_nan(
    make_source: MakeSource, simulator: WaterQualitySimulator
) -> None:
    records = _read(make_source(), "samples")
    planted = [p for p in simulator.truth.planted if p.kind is BadKind.NOT_FINITE]
    assert planted
    for plant in planted:
        field = plant.reason.removesuffix("_not_finite")
        (record,) = [r for r in records if r == plant.record]
        row = make_source().streams[1].post_process(record)
        assert row[field] == "NaN"
        assert isinstance(row[field], str)


def test_a_wait_that_would_overrun_the_retry_time_budget_is_not_started(
    make_source: MakeSource, running: RunningSimulator, sleep: RecordingSleep
) -> None:
    running.faults.rate_limit(times=1, retry_after_s=2)
    tight = HttpClientSettings(max_attempts=5, max_retry_time_s=1, max_retry_after_s=5, backoff_initial_s=0.01)
    with pytest.raises(SourceUnavailableError, match=r"stations\?page=1&page_size=7 failed once in 0 s \(429\)"):
        _read(make_source(http=tight), "stations", sleep=sleep)
    assert [e.status for e in running.requests] == [429]
    assert sleep.waits == []
