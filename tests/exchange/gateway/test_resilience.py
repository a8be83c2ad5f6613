"""The gateway under failure, with real parts: ``waterhub gateway`` as a process killed with SIGKILL, our own
Mosquitto restarted, and PostgreSQL cut off behind a TCP proxy on loopback. After each, the store must hold exactly
the distinct observations the simulator sent: every key once, one change-log entry per key."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, make_url, select

from connectors.devices import DeviceSimulator, SimulatedMessage, publish_messages
from exchange.gateway.local_broker import LocalMosquitto
from exchange.gateway.service import Gateway
from exchange.gateway.settings import GatewaySettings
from exchange.tables import dataset_table
from tests.exchange.gateway.conftest import (
    DATASETS,
    HUB_PASSWORD,
    HUB_USER,
    Key,
    change_counts,
    gateway_running,
    per_dataset,
    register,
    stored_keys,
    wait_for,
)

KILL_MESSAGES = 20_000
"""The issue's figure, sent at full speed."""


def _stored_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return sum(
            conn.scalar(select(func.count()).select_from(dataset_table(contract))) or 0
            for contract in DATASETS.values()
        )


def _truth(messages: list[SimulatedMessage]) -> set[Key]:
    return set().union(*(message.keys for message in messages))


def _assert_stored_exactly(engine: Engine, expected: set[Key]) -> None:
    keys = stored_keys(engine)
    assert len(keys) == len(expected)
    assert set(keys) == expected
    assert change_counts(engine) == per_dataset(expected)  # one change per observation: none written twice


class GatewayProcess:
    """``waterhub --debug --log-json gateway`` with the hub's environment variables; its log goes to a file (a
    pipe nobody drains would block it), which the test reads to know what the gateway is doing."""

    def __init__(self, database_url: str, mqtt_url: str, folder: Path) -> None:
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("WATERHUB_")}
        self.env |= {
            "WATERHUB_DATABASE_URL": database_url,
            "WATERHUB_MQTT_URL": mqtt_url,
            "WATERHUB_DATA_DIR": str(folder / "var"),
            "WATERHUB_HUB_ID": "gateway-test",
            "WATERHUB_GATEWAY__CLIENT_ID": f"gw-{folder.name[-20:]}",
            "WATERHUB_GATEWAY__BACKOFF_MAX_S": "0.5",
        }
        self.log = folder / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        connected = self.events("gateway_connected")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  # our own console script
                [str(Path(sys.executable).parent / "waterhub"), "--debug", "--log-json", "gateway"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        # A process's start (imports, schema check) takes tens of seconds when other suites load the machine.
        wait_for(lambda: self.events("gateway_connected") > connected, 90, "the gateway to connect")

    def events(self, name: str) -> int:
        """How many times ``name`` was logged; an outage counts only while the gateway held unacknowledged messages."""
        if not self.log.exists():
            return 0
        count = 0
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                count += event.get("event") == name and event.get("unacknowledged", 1) > 0
        return count

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


@pytest.fixture
def gateway_process(pg_schema_url: str, broker: LocalMosquitto, tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(pg_schema_url, broker.url(HUB_USER), tmp_path)
    yield process
    process.stop()


def _publisher(
    broker: LocalMosquitto, messages: list[SimulatedMessage], name: str, **options: float
) -> threading.Thread:
    thread = threading.Thread(
        target=publish_messages,
        args=("127.0.0.1", broker.port, messages),
        kwargs={"client_id": name, "username": HUB_USER, "password": HUB_PASSWORD, **options},
        daemon=True,
    )
    thread.start()
    return thread


def test_a_gateway_killed_mid_stream_stores_every_observation_once(
    hub: Engine, broker: LocalMosquitto, gateway_process: GatewayProcess
) -> None:
    simulator = DeviceSimulator(seed=11, stations=40, corrupt_share=0.01, resend_share=0.05)
    register(hub, simulator)
    messages = list(simulator.messages(KILL_MESSAGES))
    expected = _truth(messages)
    gateway_process.start()
    publisher = _publisher(broker, messages, "sim-kill")

    wait_for(lambda: _stored_count(hub) > len(expected) // 4, 60, "a quarter of the stream to be stored")
    gateway_process.kill()
    at_kill = _stored_count(hub)
    assert at_kill < len(expected), "the stream ended before the kill: nothing was tested"
    gateway_process.start()
    publisher.join(timeout=120)

    wait_for(lambda: _stored_count(hub) >= len(expected), 120, "every observation after the restart")
    time.sleep(0.5)  # redeliveries still in flight would show as second change-log entries
    _assert_stored_exactly(hub, expected)


@pytest.fixture
def gateway_thread(hub: Engine, broker: LocalMosquitto) -> Iterator[Gateway]:
    settings = GatewaySettings(client_id="gw-restart", backoff_max_s=0.5)
    with gateway_running(hub, broker, settings, join_timeout_s=20) as gateway:
        yield gateway


def test_a_broker_restart_mid_stream_loses_nothing(
    hub: Engine, broker: LocalMosquitto, gateway_thread: Gateway
) -> None:
    simulator = DeviceSimulator(seed=12, stations=20, resend_share=0.05)
    register(hub, simulator)
    messages = list(simulator.messages(3000))
    expected = _truth(messages)
    publisher = _publisher(broker, messages, "sim-restart", rate_per_s=1000)

    wait_for(lambda: _stored_count(hub) > len(expected) // 4, 30, "a quarter of the stream to be stored")
    broker.stop()  # SIGTERM: the broker saves the sessions and their queued messages
    assert _stored_count(hub) < len(expected), "the stream ended before the restart: nothing was tested"
    time.sleep(1)
    broker.start()
    publisher.join(timeout=60)

    wait_for(lambda: _stored_count(hub) >= len(expected), 60, "every observation after the restart")
    time.sleep(0.5)
    _assert_stored_exactly(hub, expected)


class TcpProxy:
    """A loopback TCP forwarder to the database that the test can cut (listener and every live connection closed,
    as a crashed database host or a broken network looks to the gateway) and open again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the accept() blocked on it; close() alone would leave the port accepting.
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def db_proxy(pg_schema_url: str) -> Iterator[TcpProxy]:
    url = make_url(pg_schema_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.open()
    yield proxy
    proxy.cut()


def test_nothing_is_acknowledged_while_the_database_is_down_and_nothing_is_lost(
    hub: Engine, broker: LocalMosquitto, pg_schema_url: str, db_proxy: TcpProxy, tmp_path: Path
) -> None:
    proxied = make_url(pg_schema_url).set(host="127.0.0.1", port=db_proxy.port).render_as_string(hide_password=False)
    gateway = GatewayProcess(proxied, broker.url(HUB_USER), tmp_path)
    simulator = DeviceSimulator(seed=13, stations=12, corrupt_share=0.02)
    register(hub, simulator)
    messages = list(simulator.messages(900))
    before, during, killed = messages[:300], messages[300:600], messages[600:]
    try:
        gateway.start()
        _publisher(broker, before, "sim-db-1").join(timeout=30)
        wait_for(lambda: _stored_count(hub) >= len(_truth(before)), 30, "the first messages")

        # The database goes away: messages keep arriving, rows do not, and the gateway keeps retrying.
        db_proxy.cut()
        outages = gateway.events("gateway_database_unavailable")
        _publisher(broker, during, "sim-db-2").join(timeout=30)
        wait_for(lambda: gateway.events("gateway_database_unavailable") > outages + 2, 30, "retries")
        assert _stored_count(hub) == len(_truth(before))
        db_proxy.open()
        wait_for(lambda: _stored_count(hub) >= len(_truth(before + during)), 30, "the held messages")

        # Down again, and the gateway killed while it holds messages it could not store: had it acknowledged any,
        # the broker would have dropped them and the restarted gateway would never see them.
        db_proxy.cut()
        outages = gateway.events("gateway_database_unavailable")
        _publisher(broker, killed, "sim-db-3").join(timeout=30)
        wait_for(lambda: gateway.events("gateway_database_unavailable") > outages + 2, 30, "retries")
        gateway.kill()
        db_proxy.open()
        gateway.start()
        wait_for(lambda: _stored_count(hub) >= len(_truth(before + during + killed)), 30, "the killed messages")
        time.sleep(0.5)
    finally:
        gateway.stop()
    _assert_stored_exactly(hub, _truth(before + during + killed))
