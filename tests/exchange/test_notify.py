"""Outbox dispatch against the real Mosquitto, on real PostgreSQL and SQLite.

Outbox rows come from the real write path (publish_frame). The shared broker also carries other tests' events, and
event ids derive from dataset and sequence range, so another test's fresh schema can produce the very same id:
each test gives its runs a unique ``run_id`` prefix and counts only the payloads that carry it. Expected values
come from what the test published (three new stations in a fresh schema are sequences 1-3), never from notify.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select

from contracts.water_quality import WaterQualitySample, WaterQualityStation
from exchange.errors import StoreUnavailableError
from exchange.mqtt_url import broker_address
from exchange.notify import DispatchResult, MqttNotifier, change_topic, cloud_event, dispatch_outbox
from exchange.subscriber import ALL_CHANGES, ChangeEvent
from exchange.tables import ensure_schema, outbox
from tests.exchange.rows import LATER, NOW, publish, sample, station

STATIONS = WaterQualityStation.meta.key
SAMPLES = WaterQualitySample.meta.key
HUB = "river-chief-test"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@pytest.fixture
def run_prefix() -> str:
    return f"notify-test-{uuid.uuid4().hex[:12]}"


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [row._asdict() for row in conn.execute(select(outbox).order_by(outbox.c.id))]


class Collector:
    """A plain paho subscriber on every change topic keeping the events of this test's runs, in arrival order."""

    def __init__(self, url: str, run_prefix: str) -> None:
        self.run_prefix = run_prefix
        self.messages: list[tuple[str, bytes]] = []
        self._arrived = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self._client.on_connect = lambda client, *_: client.subscribe(ALL_CHANGES, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._url = url

    def __enter__(self) -> Collector:
        address = broker_address(self._url)
        if address.username:
            self._client.username_pw_set(address.username, address.password)
        self._client.connect(address.host, address.port)
        self._client.loop_start()
        assert self._subscribed.wait(10), f"no SUBACK from {self._url}"
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            run_id = json.loads(message.payload)["data"]["run_id"]
        except (ValueError, KeyError, TypeError):
            return  # someone else's message on a change topic
        if str(run_id).startswith(self.run_prefix):
            with self._arrived:
                self.messages.append((message.topic, bytes(message.payload)))
                self._arrived.notify_all()

    def wait(self, count: int, timeout_s: float = 10.0) -> list[ChangeEvent]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout_s)
            return [ChangeEvent.from_message(topic, payload) for topic, payload in self.messages]

    def settle(self, timeout_s: float = 0.5) -> list[ChangeEvent]:
        """Everything received after a quiet moment: to show that nothing more arrives."""
        time.sleep(timeout_s)
        return self.wait(0)


class FirstSendToFails:
    """A Notifier (the seam dispatch is written against) that fails its first send to one topic, then delegates.

    Only a per-topic failure shows that dispatch holds back a dataset while others go on; the broker itself fails
    all topics at once.
    """

    def __init__(self, inner: MqttNotifier, topic: str) -> None:
        self.inner = inner
        self.topic = topic
        self.has_failed = False

    def publish(self, topic: str, payload: bytes) -> None:
        if topic == self.topic and not self.has_failed:
            self.has_failed = True
            raise StoreUnavailableError(f"test: refusing the first event on {topic}")
        self.inner.publish(topic, payload)


class ScriptedBroker:
    """A TCP server on loopback that answers CONNECT with a fixed CONNACK code (or not at all) and never
    acknowledges a PUBLISH: the broker misbehaviours the notifier must bound, which Mosquitto will not act out.
    """

    def __init__(self, connack_code: int | None) -> None:
        self.connack_code = connack_code
        self.received = bytearray()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = f"mqtt://127.0.0.1:{self._server.getsockname()[1]}"

    def __enter__(self) -> ScriptedBroker:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._server.close()

    def _serve(self) -> None:
        connections: list[socket.socket] = []
        try:
            while not self._stopping.is_set():
                try:
                    connection, _ = self._server.accept()
                except TimeoutError:
                    connection = None
                if connection is not None:
                    connection.settimeout(0.1)
                    connections.append(connection)
                for open_connection in connections:
                    self._read(open_connection)
        finally:
            for open_connection in connections:
                open_connection.close()

    def _read(self, connection: socket.socket) -> None:
        try:
            data = connection.recv(65536)
        except (TimeoutError, OSError):
            return
        if data[:1] == b"\x10" and self.connack_code is not None:  # CONNECT
            connection.sendall(bytes([0x20, 0x02, 0x00, self.connack_code]))
        self.received += data


class Gated:
    """A Notifier that blocks inside its first publish until released: a dispatcher caught mid-send."""

    def __init__(self, inner: MqttNotifier) -> None:
        self.inner = inner
        self.inside = threading.Event()
        self.release = threading.Event()

    def publish(self, topic: str, payload: bytes) -> None:
        self.inside.set()
        assert self.release.wait(15), "the test never released the gated dispatcher"
        self.inner.publish(topic, payload)


# --- what a subscriber receives -------------------------------------------------------------------------------


def test_a_subscriber_receives_the_outbox_event_with_its_id_schema_and_sequence_range(
    engine: Engine, mqtt_url: str, run_prefix: str
) -> None:
    publish(engine, WaterQualityStation, [station("11000001"), station("11000002"), station("11000003")], run_prefix)
    (row,) = outbox_rows(engine)

    with Collector(mqtt_url, run_prefix) as collector, MqttNotifier(mqtt_url) as notifier:
        result = dispatch_outbox(engine, notifier, hub_id=HUB, now=LATER)
        (event,) = collector.wait(1)

    assert result == DispatchResult(sent_ids=(row["event_id"],), failed_ids=(), held=0)
    assert (result.sent, result.failed) == (1, 0)
    assert event.topic == f"waterhub/datasets/{STATIONS}/changes"
    assert event.event_id == row["event_id"]
    assert event.dataschema == f"urn:waterhub:contract:{STATIONS}:{WaterQualityStation.meta.version}"
    assert (event.dataset, event.contract_version) == (STATIONS, WaterQualityStation.meta.version)
    assert (event.first_seq, event.last_seq) == (1, 3)
    assert (event.inserted, event.updated, event.deleted) == (3, 0, 0)


def test_a_dispatched_row_is_marked_and_a_second_dispatch_sends_nothing(
    engine: Engine, mqtt_url: str, run_prefix: str
) -> None:
    publish(engine, WaterQualityStation, [station("11000001")], run_prefix)

    with Collector(mqtt_url, run_prefix) as collector, MqttNotifier(mqtt_url) as notifier:
        first = dispatch_outbox(engine, notifier, hub_id=HUB, now=LATER)
        collector.wait(1)
        second = dispatch_outbox(engine, notifier, hub_id=HUB, now=LATER + timedelta(hours=1))
        received = collector.settle()

    (row,) = outbox_rows(engine)
    assert first.sent_ids == (row["event_id"],)
    assert second == DispatchResult()
    assert [event.event_id for event in received] == [row["event_id"]]
    assert (row["dispatched_at"], row["attempts"], row["last_error"]) == (LATER, 1, None)


def test_dispatch_sends_at_most_limit_rows_oldest_first(engine: Engine, mqtt_url: str, run_prefix: str) -> None:
    publish(engine, WaterQualityStation, [station("11000001")], f"{run_prefix}-1")
    publish(engine, WaterQualityStation, [station("11000001", name="Renamed bridge")], f"{run_prefix}-2")
    oldest, newest = outbox_rows(engine)

    with MqttNotifier(mqtt_url) as notifier:
        result = dispatch_outbox(engine, notifier, hub_id=HUB, now=LATER, limit=1)

    assert result.sent_ids == (oldest["event_id"],)
    assert [row["dispatched_at"] for row in outbox_rows(engine)] == [LATER, None]
    assert newest["run_id"] == f"{run_prefix}-2"


# --- failures -----------------------------------------------------------------------------------------------------


def test_an_unreachable_broker_leaves_the_row_pending_and_a_later_dispatch_sends_it_with_the_same_id(
    engine: Engine, mqtt_url: str, run_prefix: str, dead_port: int
) -> None:
    publish(engine, WaterQualityStation, [station("11000001")], run_prefix)
    (published,) = outbox_rows(engine)

    with MqttNotifier(f"mqtt://127.0.0.1:{dead_port}", timeout_s=2) as dead:
        failed = dispatch_outbox(engine, dead, hub_id=HUB, now=NOW)
    (pending,) = outbox_rows(engine)
    assert failed == DispatchResult(sent_ids=(), failed_ids=(published["event_id"],), held=0)
    assert (pending["dispatched_at"], pending["attempts"]) == (None, 1)
    assert f"127.0.0.1:{dead_port}" in pending["last_error"]
    assert "StoreUnavailableError" in pending["last_error"]
    assert "specversion" not in pending["last_error"]  # no payload in the error

    with Collector(mqtt_url, run_prefix) as collector, MqttNotifier(mqtt_url) as notifier:
        resent = dispatch_outbox(engine, notifier, hub_id=HUB, now=LATER)
        (event,) = collector.wait(1)
    (row,) = outbox_rows(engine)
    assert resent.sent_ids == (published["event_id"],)
    assert event.event_id == published["event_id"]
    assert (row["dispatched_at"], row["attempts"]) == (LATER, 2)


def test_a_notifier_without_a_broker_raises_store_unavailable_naming_where_and_no_secret(dead_port: int) -> None:
    with (
        MqttNotifier(f"mqtt://hub:s3cret-pw@127.0.0.1:{dead_port}", timeout_s=2) as notifier,
        pytest.raises(StoreUnavailableError) as raised,
    ):
        notifier.publish(change_topic(STATIONS), b"{}")

    message = str(raised.value)
    assert f"127.0.0.1:{dead_port}" in message
    assert "stays in the outbox" in message
    assert "WATERHUB_MQTT_URL" in message
    assert "s3cret-pw" not in message


def test_a_broker_that_never_acknowledges_leaves_the_row_pending_after_the_timeout(
    engine: Engine, run_prefix: str
) -> None:
    publish(engine, WaterQualityStation, [station("11000001")], run_prefix)

    with ScriptedBroker(connack_code=0) as silent, MqttNotifier(silent.url, timeout_s=0.5) as notifier:
        started = time.monotonic()
        result = dispatch_outbox(engine, notifier, hub_id=HUB, now=NOW)
        elapsed = time.monotonic() - started
        with pytest.raises(StoreUnavailableError, match=r"did not acknowledge the event on .* within 0\.5 s"):
            notifier.publish(change_topic(STATIONS), b"{}")

    (row,) = outbox_rows(engine)
    assert result.failed_ids == (row["event_id"],)
    assert b"waterhub/datasets/water_quality.stations/changes" in silent.received  # it was sent, never acked
    assert (row["dispatched_at"], row["attempts"]) == (None, 1)
    assert "did not acknowledge" in row["last_error"]
    assert 0.5 <= elapsed < 5


@pytest.mark.parametrize(
    ("connack_code", "expected"),
    [(None, r"sent no CONNACK within 0\.5 s"), (5, r"refused the connection \(Not authorized\).*user and password")],
)
def test_a_broker_that_does_not_accept_the_connection_raises_store_unavailable(
    connack_code: int | None, expected: str
) -> None:
    with (
        ScriptedBroker(connack_code) as broker,
        MqttNotifier(broker.url, timeout_s=0.5) as notifier,
        pytest.raises(StoreUnavailableError, match=expected),
    ):
        notifier.publish(change_topic(STATIONS), b"{}")


def test_a_failed_event_holds_back_its_dataset_and_later_sends_keep_the_order(
    engine: Engine, mqtt_url: str, run_prefix: str
) -> None:
    publish(engine, WaterQualityStation, [station("11000001"), station("11000002")], f"{run_prefix}-s1")
    publish(engine, WaterQualitySample, [sample("11000001", 0), sample("11000001", 1)], f"{run_prefix}-w1")
    publish(engine, WaterQualityStation, [station("11000002", name="Renamed bridge")], f"{run_prefix}-s2")
    stations_1, samples_1, stations_2 = (row["event_id"] for row in outbox_rows(engine))

    with Collector(mqtt_url, run_prefix) as collector, MqttNotifier(mqtt_url) as notifier:
        first = dispatch_outbox(engine, FirstSendToFails(notifier, change_topic(STATIONS)), hub_id=HUB, now=NOW)
        assert [event.event_id for event in collector.wait(1)] == [samples_1]
        by_id = {row["event_id"]: row for row in outbox_rows(engine)}
        second = dispatch_outbox(engine, notifier, hub_id=HUB, now=LATER)
        received = collector.wait(3)

    assert first == DispatchResult(sent_ids=(samples_1,), failed_ids=(stations_1,), held=1)
    assert (by_id[stations_1]["attempts"], by_id[stations_1]["dispatched_at"]) == (1, None)
    assert "refusing the first event" in by_id[stations_1]["last_error"]
    assert (by_id[stations_2]["attempts"], by_id[stations_2]["dispatched_at"]) == (0, None)
    assert second.sent_ids == (stations_1, stations_2)
    assert [event.event_id for event in received] == [samples_1, stations_1, stations_2]
    assert [(e.first_seq, e.last_seq) for e in received if e.dataset == STATIONS] == [(1, 2), (3, 3)]


def test_a_second_dispatcher_on_postgres_leaves_a_dataset_being_sent_alone(
    pg_engine: Engine, mqtt_url: str, run_prefix: str
) -> None:
    ensure_schema(pg_engine)
    publish(pg_engine, WaterQualityStation, [station("11000001")], f"{run_prefix}-1")
    publish(pg_engine, WaterQualityStation, [station("11000001", name="Renamed bridge")], f"{run_prefix}-2")
    older, newer = (row["event_id"] for row in outbox_rows(pg_engine))
    results: list[DispatchResult] = []

    with (
        Collector(mqtt_url, run_prefix) as collector,
        MqttNotifier(mqtt_url) as first_inner,
        MqttNotifier(mqtt_url) as second_notifier,
    ):
        gated = Gated(first_inner)
        first = threading.Thread(target=lambda: results.append(dispatch_outbox(pg_engine, gated, hub_id=HUB, now=NOW)))
        first.start()
        assert gated.inside.wait(10)
        second = dispatch_outbox(pg_engine, second_notifier, hub_id=HUB, now=NOW)
        gated.release.set()
        first.join(15)
        collector.wait(2)
        received = collector.settle()

    assert second == DispatchResult(sent_ids=(), failed_ids=(), held=2)
    assert results == [DispatchResult(sent_ids=(older, newer), failed_ids=(), held=0)]
    assert [event.event_id for event in received] == [older, newer]


# --- the event itself ---------------------------------------------------------------------------------------------


def test_the_cloud_event_has_every_required_attribute_and_an_rfc3339_utc_time(engine: Engine, run_prefix: str) -> None:
    publish(engine, WaterQualityStation, [station("11000001"), station("11000002")], run_prefix)
    (row,) = outbox_rows(engine)

    event = cloud_event(row, hub_id=HUB)

    assert event["specversion"] == "1.0"
    assert event["id"] == row["event_id"]
    assert event["source"] == "urn:waterhub:river-chief-test"
    assert event["type"] == "org.waterhub.dataset.changed.v1"
    assert event["subject"] == STATIONS
    assert event["datacontenttype"] == "application/json"
    assert isinstance(event["time"], str)
    assert RFC3339.match(event["time"]), event["time"]
    assert event["time"].endswith("Z")
    assert datetime.fromisoformat(event["time"].replace("Z", "+00:00")) == NOW
    assert event["data"] == {
        "hub_id": "river-chief-test",
        "dataset": STATIONS,
        "contract_version": WaterQualityStation.meta.version,
        "run_id": run_prefix,
        "first_seq": 1,
        "last_seq": 2,
        "inserted": 2,
        "updated": 0,
        "deleted": 0,
    }
    parsed = ChangeEvent.from_message(change_topic(STATIONS), json.dumps(event).encode())
    assert (parsed.event_id, parsed.first_seq, parsed.last_seq) == (row["event_id"], 1, 2)
    assert (parsed.source, parsed.hub_id) == ("urn:waterhub:river-chief-test", "river-chief-test")


def test_two_hubs_send_the_same_change_under_their_own_names() -> None:
    row = {
        "id": 1,
        "event_id": "e-1",
        "dataset": SAMPLES,
        "contract_version": "1.0.0",
        "run_id": "r",
        "first_seq": 1,
        "last_seq": 44,
        "inserted": 44,
        "updated": 0,
        "deleted": 0,
        "created_at": NOW,
    }
    events = [cloud_event(row, hub_id=hub) for hub in ("shenzhen", "zhuhai")]
    assert [(e["source"], e["data"]["hub_id"]) for e in events] == [  # type: ignore[index]
        ("urn:waterhub:shenzhen", "shenzhen"),
        ("urn:waterhub:zhuhai", "zhuhai"),
    ]


@pytest.mark.parametrize("hub_id", ["", "Local", "hub_1", "-hub", "hub-", "hub:a", "urn:waterhub:x", "h" * 64])
def test_a_hub_id_that_is_not_a_urn_safe_slug_is_refused_before_anything_is_sent(
    engine: Engine, run_prefix: str, mqtt_url: str, hub_id: str
) -> None:
    publish(engine, WaterQualityStation, [station("11000001")], run_prefix)
    with MqttNotifier(mqtt_url) as notifier, pytest.raises(ValueError, match="is not a slug"):
        dispatch_outbox(engine, notifier, hub_id=hub_id, now=LATER)
    assert [(row["attempts"], row["dispatched_at"]) for row in outbox_rows(engine)] == [(0, None)]


def test_the_cloud_event_time_is_utc_whatever_zone_the_row_carries() -> None:
    beijing = timezone(timedelta(hours=8))
    row = {
        "id": 1,
        "event_id": "e-1",
        "dataset": STATIONS,
        "contract_version": "1.0.0",
        "run_id": "r",
        "first_seq": 4,
        "last_seq": 9,
        "inserted": 1,
        "updated": 5,
        "deleted": 0,
        "created_at": datetime(2026, 3, 2, 20, 0, 0, 250000, tzinfo=beijing),
    }

    assert cloud_event(row, hub_id=HUB)["time"] == "2026-03-02T12:00:00.250000Z"
    with pytest.raises(ValueError, match="naive"):
        cloud_event(row | {"created_at": datetime(2026, 3, 2, 12, 0)}, hub_id=HUB)  # noqa: DTZ001 - the naive value under test


def test_change_topic_is_the_subscribers_wildcard_with_the_key_in_place() -> None:
    assert change_topic(SAMPLES) == "waterhub/datasets/water_quality.samples/changes"
    assert mqtt.topic_matches_sub(ALL_CHANGES, change_topic(SAMPLES))
    for bad in ("", "water_quality/samples", "water_quality.+", "#"):
        with pytest.raises(ValueError, match="MQTT topic level"):
            change_topic(bad)


def test_a_url_that_is_not_mqtt_is_refused_without_echoing_it() -> None:
    for url in ("http://hub:s3cret-pw@127.0.0.1:1883", "mqtt://"):
        with pytest.raises(ValueError, match=r"expected mqtt://\[user:password@\]host\[:port\]") as raised:
            MqttNotifier(url)
        assert "s3cret-pw" not in str(raised.value)
