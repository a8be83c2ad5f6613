"""`waterhub simulate devices`: a station network's messages on a real broker, bounded by count and by time, and a
summary of what was sent. Expected messages come from the simulator itself with the same seed and options."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from connectors.devices import DeviceSimulator
from exchange.gateway.local_broker import LocalMosquitto
from exchange.tables import devices
from waterhub.cli.main import app

runner = CliRunner()
HUB_USER, HUB_PASSWORD = "waterhub", "cli-secret"


@pytest.fixture
def broker(tmp_path: Path, free_port: int) -> Iterator[LocalMosquitto]:
    running = LocalMosquitto(free_port, tmp_path / "mosquitto", {HUB_USER: HUB_PASSWORD})
    running.start()
    yield running
    running.stop()


@pytest.fixture
def uplinks(broker: LocalMosquitto) -> Iterator[list[tuple[str, bytes]]]:
    received: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="uplinks", protocol=mqtt.MQTTv311)
    client.username_pw_set(HUB_USER, HUB_PASSWORD)
    client.on_message = lambda _c, _u, message: received.append((message.topic, bytes(message.payload)))
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect("127.0.0.1", broker.port)
    client.subscribe("waterhub/devices/+/+/up", qos=1)
    client.loop_start()
    assert subscribed.wait(5)
    yield received
    client.disconnect()
    client.loop_stop()


def _env(broker: LocalMosquitto, database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "WATERHUB_MQTT_URL": broker.url(HUB_USER),
        "WATERHUB_DATABASE_URL": database_url,
        "WATERHUB_DATA_DIR": str(tmp_path / "var"),
    }


def test_devices_sends_the_network_registers_it_and_says_what_it_sent(
    broker: LocalMosquitto, uplinks: list[tuple[str, bytes]], pg_schema_url: str, pg_engine: Engine, tmp_path: Path
) -> None:
    options = ["--stations", "4", "--rate", "400", "--count", "60", "--corrupt-share", "0.1", "--resend-share", "0.1"]
    result = runner.invoke(
        app,
        ["simulate", "devices", *options, "--seed", "3", "--register", "--json"],
        env=_env(broker, pg_schema_url, tmp_path),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)

    expected = list(DeviceSimulator(seed=3, stations=4, corrupt_share=0.1, resend_share=0.1).messages(60))
    threading.Event().wait(0.5)  # the last deliveries to our subscriber
    assert sorted(uplinks) == sorted((message.device.topic, message.payload) for message in expected)
    assert summary["messages"] == 60
    assert summary["corrupt"] == sum(message.corrupt for message in expected) > 0
    assert summary["resends"] == len(expected) - len({message.payload for message in expected}) > 0
    assert summary["observations"] == len(set().union(*(message.keys for message in expected)))
    assert "cli-secret" not in result.stdout
    with pg_engine.connect() as conn:
        registered = set(conn.execute(select(devices.c.device_id, devices.c.protocol)).all())
    assert registered == {(device.device_id, device.protocol) for device in DeviceSimulator(seed=3, stations=4).devices}


def test_devices_stops_at_its_time_bound(
    broker: LocalMosquitto, uplinks: list[tuple[str, bytes]], pg_schema_url: str, tmp_path: Path
) -> None:
    arguments = ["simulate", "devices", "--rate", "50", "--duration-s", "0.4", "--count", "1000", "--mix", "json"]
    result = runner.invoke(app, [*arguments, "--json"], env=_env(broker, pg_schema_url, tmp_path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["messages"] == 20
    threading.Event().wait(0.5)
    assert len(uplinks) == 20


def test_an_unknown_device_kind_is_one_line_and_a_hint(
    broker: LocalMosquitto, pg_schema_url: str, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["simulate", "devices", "--mix", "sl651-river,modbus"], env=_env(broker, pg_schema_url, tmp_path)
    )
    assert result.exit_code != 0
    assert "modbus" in result.output
    assert "hj212" in result.output
