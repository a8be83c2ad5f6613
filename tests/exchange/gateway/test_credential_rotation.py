"""Rotating a device's broker password with `waterhub devices rotate`, against real PostgreSQL and a Mosquitto run
from the production configuration: the new password is printed once and only its hash is stored, the rewritten
password file keeps the hub's own user, and after the broker reloads it the old password is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Engine, select

from exchange.gateway.local_broker import LocalMosquitto
from exchange.gateway.registry import register_device, write_password_file
from exchange.tables import devices
from tests.exchange.gateway.conftest import HUB_PASSWORD, HUB_USER

WATERHUB = str(Path(sys.executable).with_name("waterhub"))
DEVICE = "0020000007"


@pytest.fixture
def broker(tmp_path: Path, free_port: int) -> Iterator[LocalMosquitto]:
    running = LocalMosquitto(free_port, tmp_path / "mosquitto", {HUB_USER: HUB_PASSWORD})
    running.start()
    yield running
    running.stop()


def _accepted(broker: LocalMosquitto, user: str, password: str) -> bool:
    """Whether the broker lets ``user`` in with ``password`` (a fresh connection, as a device makes after a restart)."""
    answered, outcome = threading.Event(), []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"rotation-{user}-{time.monotonic_ns()}")
    client.username_pw_set(user, password)

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        outcome.append(not reason.is_failure)
        answered.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert answered.wait(5), "the broker did not answer"
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome[0]


def _waterhub(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the venv's own console script
        [WATERHUB, *args],
        env=os.environ | {"WATERHUB_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_rotated_device_password_replaces_the_old_one_at_the_broker(
    hub: Engine, pg_schema_url: str, broker: LocalMosquitto
) -> None:
    passwords = broker.folder / "passwd"
    with hub.begin() as conn:
        register_device(
            conn, device_id=DEVICE, protocol="sl651", station_code="63000100", expected_interval_s=300, password="old"
        )
        write_password_file(conn, passwords)
    broker.reload()
    _wait_until(lambda: _accepted(broker, DEVICE, "old"), "the registered password is never accepted")

    rotated = _waterhub(pg_schema_url, "devices", "rotate", DEVICE, "--password-file", str(passwords), "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)["password"]
    broker.reload()

    _wait_until(lambda: _accepted(broker, DEVICE, new), "the new password is never accepted")
    assert not _accepted(broker, DEVICE, "old")
    assert _accepted(broker, HUB_USER, HUB_PASSWORD)  # the hub's own line survived the rewrite
    with hub.connect() as conn:
        stored = conn.execute(select(devices.c.credential_hash).where(devices.c.device_id == DEVICE)).scalar_one()
    assert stored.startswith("$7$")
    assert new not in stored
    assert new not in passwords.read_text()


def test_rotating_an_unknown_device_says_so_and_changes_no_file(
    pg_schema_url: str, hub: Engine, tmp_path: Path
) -> None:
    passwords = tmp_path / "passwd"
    passwords.write_text(f"{HUB_USER}:kept\n")
    refused = _waterhub(pg_schema_url, "devices", "rotate", "nope", "--password-file", str(passwords))
    assert refused.returncode == 1
    assert "no device 'nope'" in refused.stderr
    assert passwords.read_text() == f"{HUB_USER}:kept\n"
