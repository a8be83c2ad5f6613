"""Fixtures for the connector tests: a small simulator on a real loopback socket, quick retry settings, a sleep
that records the waits the retry policy chose (and really sleeps them)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from connectors.http.settings import HttpClientSettings
from connectors.water_quality import WaterQualitySimulator, WaterQualitySource
from connectors.water_quality.settings import WaterQualitySourceSettings
from connectors.water_quality.simulator import RunningSimulator

API_KEY = "connector-test-key"
PAGE_SIZE = 7


class RecordingSleep:
    """Stands in for ``time.sleep`` in the client: remembers each wait, then sleeps it for real."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def simulator() -> WaterQualitySimulator:
    return WaterQualitySimulator(seed=3, api_key=API_KEY, stations=6, hours=10)


@pytest.fixture
def http_settings() -> HttpClientSettings:
    return HttpClientSettings(
        timeout_s=2,
        max_attempts=3,
        max_retry_time_s=20,
        max_retry_after_s=5,
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
    )


@pytest.fixture
def make_source(running: RunningSimulator, http_settings: HttpClientSettings) -> Callable[..., WaterQualitySource]:
    """A source pointed at the running simulator; keyword arguments override its settings."""

    def make(http: HttpClientSettings | None = None, **overrides: object) -> WaterQualitySource:
        values: dict[str, object] = {"base_url": running.base_url, "api_key": API_KEY, "page_size": PAGE_SIZE}
        values.update(overrides)
        return WaterQualitySource(WaterQualitySourceSettings.model_validate(values), http or http_settings)

    return make


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def api_key() -> str:
    """The key the simulator accepts and the source sends."""
    return API_KEY


@pytest.fixture
def page_size() -> int:
    """The page size the source is configured with (small, so a read spans many pages)."""
    return PAGE_SIZE
