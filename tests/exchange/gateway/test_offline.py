"""A device silent for twice its interval goes offline: a ``devices.status`` row and a change event. The gateway's
clock is injected, so the test moves time instead of waiting for it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select

from connectors.devices import DeviceSimulator, publish_messages
from contracts.devices import DeviceStatus
from exchange.gateway.local_broker import LocalMosquitto
from exchange.gateway.service import Gateway
from exchange.gateway.settings import GatewaySettings
from exchange.notify import change_topic
from exchange.tables import dataset_table, devices
from tests.exchange.gateway.conftest import HUB_PASSWORD, HUB_USER, register, wait_for

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
INTERVAL_S = 300


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def gateway(hub: Engine, broker: LocalMosquitto, clock: Clock) -> Iterator[Gateway]:
    settings = GatewaySettings(client_id="gw-offline", offline_check_s=0.05)
    running = Gateway(hub, broker.url(HUB_USER), settings, hub_id="gateway-test", clock=clock)
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,))
    thread.start()
    time.sleep(0.5)
    yield running
    stop.set()
    thread.join(timeout=10)


@pytest.fixture
def status_events(broker: LocalMosquitto) -> Iterator[list[dict[str, object]]]:
    received: list[dict[str, object]] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="status-watch", protocol=mqtt.MQTTv311)
    client.username_pw_set(HUB_USER, HUB_PASSWORD)
    client.on_message = lambda _c, _u, message: received.append(json.loads(message.payload))
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect("127.0.0.1", broker.port)
    client.subscribe(change_topic(DeviceStatus.meta.key), qos=1)
    client.loop_start()
    assert subscribed.wait(5)
    yield received
    client.disconnect()
    client.loop_stop()


def _states(engine: Engine) -> dict[str, tuple[str, datetime | None]]:
    table = dataset_table(DeviceStatus)
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.device_id, table.c.state, table.c.last_seen_at)).all()
    return {device_id: (state, seen) for device_id, state, seen in rows}


def test_a_device_silent_for_twice_its_interval_goes_offline_and_comes_back(
    hub: Engine,
    broker: LocalMosquitto,
    gateway: Gateway,
    clock: Clock,
    status_events: list[dict[str, object]],
) -> None:
    simulator = DeviceSimulator(seed=31, stations=2, mix=("json",))
    register(hub, simulator, interval_s=INTERVAL_S)
    quiet, chatty = simulator.devices
    messages = list(simulator.messages(4))

    def send(index: int) -> None:
        publish_messages(
            "127.0.0.1",
            broker.port,
            [messages[index]],
            client_id="sim-offline",
            username=HUB_USER,
            password=HUB_PASSWORD,
        )

    send(0)  # the quiet device reports at T0 ...
    send(1)
    wait_for(lambda: _last_seen(hub) == {quiet.device_id: T0, chatty.device_id: T0}, what="both first reports")
    clock.now = T0 + timedelta(seconds=2 * INTERVAL_S - 1)
    send(3)  # ... only the chatty one reports again, just before the quiet one's limit
    wait_for(lambda: _last_seen(hub)[chatty.device_id] == clock.now, what="the chatty device's second report")
    time.sleep(0.3)  # several offline checks at 0.05 s: none may fire yet
    assert _states(hub) == {}
    assert status_events == []

    clock.now = T0 + timedelta(seconds=2 * INTERVAL_S + 1)
    wait_for(lambda: quiet.device_id in _states(hub), 10, "the quiet device to go offline")
    assert _states(hub) == {quiet.device_id: ("offline", T0)}
    wait_for(lambda: len(status_events) == 1, 10, "the offline event")
    data = status_events[0]["data"]
    assert isinstance(data, dict)
    assert (data["dataset"], data["inserted"], data["updated"]) == (DeviceStatus.meta.key, 1, 0)

    send(2)  # the quiet device's next report brings it back
    wait_for(lambda: _states(hub)[quiet.device_id][0] == "online", 10, "the device to come back")
    assert _states(hub) == {quiet.device_id: ("online", clock.now)}
    wait_for(lambda: len(status_events) == 2, 10, "the online event")


def _last_seen(engine: Engine) -> dict[str, datetime | None]:
    with engine.connect() as conn:
        return {device: seen for device, seen in conn.execute(select(devices.c.device_id, devices.c.last_seen_at))}


@pytest.mark.usefixtures("gateway")
def test_a_device_that_never_reports_goes_offline_twice_its_interval_after_registration(
    hub: Engine, broker: LocalMosquitto, clock: Clock, status_events: list[dict[str, object]]
) -> None:
    simulator = DeviceSimulator(seed=37, stations=1, mix=("json",))
    register(hub, simulator, interval_s=INTERVAL_S, at=T0)
    (never,) = simulator.devices
    clock.now = T0 + timedelta(seconds=2 * INTERVAL_S - 1)
    time.sleep(0.3)  # several offline checks at 0.05 s: none may fire yet
    assert _states(hub) == {}

    clock.now = T0 + timedelta(seconds=2 * INTERVAL_S + 1)
    wait_for(lambda: never.device_id in _states(hub), 10, "the silent device to go offline")
    assert _states(hub) == {never.device_id: ("offline", None)}
    wait_for(lambda: len(status_events) == 1, 10, "the offline event")

    publish_messages(
        "127.0.0.1",
        broker.port,
        list(simulator.messages(1)),
        client_id="sim-never",
        username=HUB_USER,
        password=HUB_PASSWORD,
    )
    wait_for(lambda: _states(hub)[never.device_id][0] == "online", 10, "its first report to bring it online")
    assert _states(hub) == {never.device_id: ("online", clock.now)}


def test_registering_a_device_again_keeps_its_registration_time(hub: Engine) -> None:
    simulator = DeviceSimulator(seed=41, stations=1, mix=("json",))
    register(hub, simulator, interval_s=INTERVAL_S, at=T0)
    register(hub, simulator, interval_s=2 * INTERVAL_S, at=T0 + timedelta(days=1))
    with hub.connect() as conn:
        row = conn.execute(select(devices.c.registered_at, devices.c.expected_interval_s)).one()
    assert tuple(row) == (T0, 2 * INTERVAL_S)
