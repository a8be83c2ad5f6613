"""A Mosquitto of the test's own (the production configuration on a free loopback port, a temporary persistence
folder, the ACL and a password file from the registry's hash), the hub's schema, and helpers the gateway tests
share: registering the simulator's devices and reading back what was stored."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from connectors.devices import DeviceSimulator
from contracts.hydrology import RainfallRecord, RiverRecord
from contracts.water_quality import WaterQualitySample
from exchange.gateway.local_broker import LocalMosquitto
from exchange.gateway.registry import register_devices
from exchange.gateway.service import Gateway
from exchange.gateway.settings import GatewaySettings
from exchange.tables import change_log, dataset_table, ensure_schema

HUB_USER = "waterhub"
HUB_PASSWORD = "hub-secret"  # a test broker's password
DATASETS = {c.meta.key: c for c in (RainfallRecord, RiverRecord, WaterQualitySample)}

Key = tuple[str, str, datetime]


@pytest.fixture
def broker(tmp_path: Path, free_port: int) -> Iterator[LocalMosquitto]:
    users = {HUB_USER: HUB_PASSWORD, "0010000000": "d0", "0010000001": "d1"}
    running = LocalMosquitto(free_port, tmp_path / "mosquitto", users)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def hub(pg_engine: Engine) -> Engine:
    ensure_schema(pg_engine)
    return pg_engine


def register(engine: Engine, simulator: DeviceSimulator, *, interval_s: int = 3600, at: datetime | None = None) -> None:
    with engine.begin() as conn:
        register_devices(conn, simulator.devices, expected_interval_s=interval_s, now=at)


@contextmanager
def gateway_running(
    hub: Engine, broker: LocalMosquitto, settings: GatewaySettings, *, join_timeout_s: float = 10
) -> Iterator[Gateway]:
    """A gateway on its own thread for the length of the block, subscribed before the block starts."""
    gateway = Gateway(hub, broker.url(HUB_USER), settings, hub_id="gateway-test")
    stop = threading.Event()
    thread = threading.Thread(target=gateway.run, args=(stop,))
    thread.start()
    time.sleep(0.5)
    try:
        yield gateway
    finally:
        stop.set()
        thread.join(timeout=join_timeout_s)


def stored_keys(engine: Engine) -> list[Key]:
    """Every stored observation's key, as a list: a key stored twice would show twice."""
    keys: list[Key] = []
    with engine.connect() as conn:
        for key, contract in DATASETS.items():
            table = dataset_table(contract)
            station, at = (table.c[name] for name in contract.meta.primary_key)
            keys += [(key, s, t) for s, t in conn.execute(select(station, at))]
    return keys


def change_counts(engine: Engine) -> dict[str, int]:
    """Change-log entries per observation dataset."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(change_log.c.dataset, func.count())
            .where(change_log.c.dataset.in_(list(DATASETS)))
            .group_by(change_log.c.dataset)
        ).all()
    return {dataset: count for dataset, count in rows}


def per_dataset(keys: set[Key]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for dataset, _, _ in keys:
        counts[dataset] = counts.get(dataset, 0) + 1
    return counts


def wait_for(condition: Callable[[], bool], timeout_s: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)
