"""A device reading and an HTTP source's copy of the same observation meet in one table: whichever arrives
first, the one with the later ``updated_at`` stands (issue 15, test 6)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from connectors.devices import DeviceSimulator, SimulatedMessage, publish_messages
from connectors.protocols import device_json
from contracts.hydrology import RiverRecord
from exchange.gateway.local_broker import LocalMosquitto
from exchange.gateway.service import Gateway
from exchange.gateway.settings import GatewaySettings
from exchange.publish import publish_frame
from exchange.tables import dataset_table, devices
from tests.exchange.gateway.conftest import HUB_PASSWORD, HUB_USER, register, wait_for


@pytest.fixture
def gateway(hub: Engine, broker: LocalMosquitto) -> Iterator[Gateway]:
    running = Gateway(hub, broker.url(HUB_USER), GatewaySettings(client_id="gw-newer"), hub_id="gateway-test")
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,))
    thread.start()
    time.sleep(0.5)
    yield running
    stop.set()
    thread.join(timeout=10)


def _device_reading(message: SimulatedMessage) -> tuple[datetime, float, datetime]:
    """(observation time, stage, device time) as the device sent them."""
    report = device_json.decode_report(message.payload)
    assert report.device_time is not None
    return report.observed_at.astimezone(UTC), float(report.readings["Z"].value or 0), report.device_time


def _publish_http(engine: Engine, station: str, at: datetime, z: float, updated_at: datetime) -> None:
    """The hydrology bureau's HTTP source publishing its copy of the observation, through the one write path."""
    row = RiverRecord.model_validate(
        {"stcd": station, "tm": at, "z": z, "updated_at": updated_at, "source": "http:hydrology"}
    ).model_dump()
    with engine.begin() as conn:
        publish_frame(conn, RiverRecord, pd.DataFrame([row]), run_id="http-run", now=datetime.now(UTC))


def _stored(engine: Engine, station: str, at: datetime) -> tuple[float, str] | None:
    table = dataset_table(RiverRecord)
    with engine.connect() as conn:
        row = conn.execute(select(table.c.z, table.c.source).where(table.c.stcd == station, table.c.tm == at)).first()
    return None if row is None else (row.z, row.source)


def _seen(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(devices.c.device_id).where(devices.c.last_seen_at.is_not(None))).all())


@pytest.mark.parametrize("first", ["device", "http"])
def test_the_newer_of_a_device_reading_and_an_http_copy_stands(
    hub: Engine, broker: LocalMosquitto, gateway: Gateway, first: Literal["device", "http"]
) -> None:
    simulator = DeviceSimulator(seed=21, stations=2, mix=("json",))
    register(hub, simulator)
    corrected, superseded = list(simulator.messages(2))
    corrected_at, _, corrected_sent = _device_reading(corrected)
    superseded_at, superseded_z, superseded_sent = _device_reading(superseded)
    corrected_station = corrected.device.station_code
    superseded_station = superseded.device.station_code
    # The bureau corrects the first observation an hour after the device sent it; its copy of the second is older
    # than the device's report (a preliminary value), so the device's reading must stand.
    http_rows = [
        (corrected_station, corrected_at, 99.5, corrected_sent + timedelta(hours=1)),
        (superseded_station, superseded_at, 11.0, superseded_sent - timedelta(seconds=1)),
    ]

    def send_devices() -> None:
        publish_messages(
            "127.0.0.1",
            broker.port,
            [corrected, superseded],
            client_id=f"sim-newer-{first}",
            username=HUB_USER,
            password=HUB_PASSWORD,
        )
        wait_for(lambda: _seen(hub) == 2, 20, "the gateway to commit both device messages")

    if first == "device":
        send_devices()
        assert _stored(hub, superseded_station, superseded_at) == (superseded_z, "device:json")
    for row in http_rows:
        _publish_http(hub, *row)
    if first == "http":
        send_devices()

    assert _stored(hub, corrected_station, corrected_at) == (99.5, "http:hydrology")
    assert _stored(hub, superseded_station, superseded_at) == (superseded_z, "device:json")
