"""A hub with published data, departments and tokens, and the consumer API served on a real loopback socket.

Ground truth is what the fixture published (``Hub.stations``, ``Hub.samples``), never what the API answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from connectors.simulation import AppServer
from contracts.water_quality import WaterQualitySample, WaterQualityStation
from exchange.access.departments import seed_departments
from exchange.access.filters import parse_condition
from exchange.access.tokens import IssuedToken, create_token
from exchange.api.app import create_app
from exchange.api.settings import ApiSettings
from exchange.objects import LocalObjectStore
from exchange.snapshots import write_snapshot
from tests.exchange.rows import NOW, publish, sample, station

DISTRICTS = {"44010001": "天河区", "44010002": "天河区", "44010003": "越秀区", "44010004": "海珠区"}


@dataclass
class Clock:
    """The API's clock, moved by tests (token expiry, change retention)."""

    now: datetime = NOW + timedelta(days=1)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Hub:
    engine: Engine
    store: LocalObjectStore
    clock: Clock
    base_url: str
    tokens: dict[str, str]
    stations: list[dict[str, object]]
    samples: list[dict[str, object]]
    token_ids: dict[str, str] = field(default_factory=dict)

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


def hub_stations() -> list[dict[str, object]]:
    return [{**station(code, name=f"站点{code[-1]}"), "district": district} for code, district in DISTRICTS.items()]


def hub_samples() -> list[dict[str, object]]:
    return [sample(code, hour, ph=7.0 + hour / 10) for code in DISTRICTS for hour in range(5)]


def grant(
    engine: Engine, clock: Clock, department: str, datasets: list[str], *, district: str | None = None
) -> IssuedToken:
    conditions = [parse_condition(WaterQualityStation, "district", "eq", [district])] if district is not None else []
    return create_token(
        engine, department, datasets, row_filter=conditions, expires_at=clock.now + timedelta(days=90), now=clock.now
    )


@pytest.fixture
def api_settings() -> ApiSettings:
    return ApiSettings()


@pytest.fixture
def hub(engine: Engine, tmp_path: Path, api_settings: ApiSettings) -> Iterator[Hub]:
    """Stations and samples published and snapshotted; four departments with different grants:

    ``city`` reads both datasets whole, ``tianhe`` reads stations of 天河区 only, ``eco`` reads samples only,
    ``nobody`` reads a dataset that was never published.
    """
    clock = Clock()
    stations, samples = hub_stations(), hub_samples()
    publish(engine, WaterQualityStation, stations, "run-1")
    publish(engine, WaterQualitySample, samples, "run-1")
    store = LocalObjectStore(tmp_path / "objects")
    write_snapshot(engine, store, WaterQualityStation, now=NOW)
    write_snapshot(engine, store, WaterQualitySample, now=NOW)
    seed_departments(engine, now=NOW)
    issued = {
        "city": grant(engine, clock, "gz-water", ["water_quality.stations", "water_quality.samples"]),
        "tianhe": grant(engine, clock, "tianhe-water", ["water_quality.stations"], district="天河区"),
        "eco": grant(engine, clock, "gz-eco-env", ["water_quality.samples"]),
        "nobody": grant(engine, clock, "gz-housing", ["hydrology.rainfall"]),
    }
    server = AppServer(create_app(engine, store, api_settings, clock=clock), "127.0.0.1", 0, name="consumer API")
    server.start()
    try:
        yield Hub(
            engine,
            store,
            clock,
            server.base_url,
            {who: token.token for who, token in issued.items()},
            stations,
            samples,
            {who: token.token_id for who, token in issued.items()},
        )
    finally:
        server.stop()


def utc_text(value: object) -> str:
    """A time as the API spells it."""
    assert isinstance(value, datetime)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
