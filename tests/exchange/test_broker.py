"""The embedded broker on real sockets: real paho clients publish and subscribe through it on a free port."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select

from contracts.water_quality import WaterQualityStation
from exchange.broker import EmbeddedBroker
from exchange.errors import StoreUnavailableError
from exchange.notify import MqttNotifier, dispatch_outbox
from exchange.publish import publish_frame
from exchange.subscriber import ChangeSubscriber
from exchange.tables import ensure_schema, outbox

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def connected_client(port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def stop(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def broker_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("waterhub-broker-")]


def test_a_qos1_publish_reaches_a_subscriber_through_the_embedded_broker(free_port: int) -> None:
    received: list[tuple[str, bytes, int]] = []
    arrived = threading.Event()
    subscribed = threading.Event()

    with EmbeddedBroker(host="127.0.0.1", port=free_port) as broker:
        subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        subscriber.on_subscribe = lambda *_: subscribed.set()

        def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
            received.append((message.topic, bytes(message.payload), message.qos))
            arrived.set()

        subscriber.on_message = on_message
        subscriber.connect("127.0.0.1", free_port)
        subscriber.loop_start()
        subscriber.subscribe("waterhub/datasets/+/changes", qos=1)
        assert subscribed.wait(5)
        publisher = connected_client(free_port)
        info = publisher.publish("waterhub/datasets/a.b/changes", b"hello", qos=1)
        info.wait_for_publish(5)
        assert info.is_published()  # the PUBACK came back
        assert arrived.wait(5)
        stop(publisher)
        stop(subscriber)

    assert broker.url == f"mqtt://127.0.0.1:{free_port}"
    assert received == [("waterhub/datasets/a.b/changes", b"hello", 1)]


def test_the_outbox_reaches_a_change_subscriber_through_the_embedded_broker(
    free_port: int, sqlite_engine: Engine
) -> None:
    """The zero-setup path end to end: SQLite hub, embedded broker, MqttNotifier, the consumers' ChangeSubscriber."""
    ensure_schema(sqlite_engine)
    specs = WaterQualityStation.field_specs()
    values = {
        "station_code": "11000001",
        "name": "Xiaoguan bridge",
        "river": "Liangma river",
        "district": "Chaoyang",
        "water_body_type": "river",
        "longitude": 116.45,
        "latitude": 39.95,
        "updated_at": pd.Timestamp(NOW).as_unit("us"),
    }
    frame = pd.DataFrame([{spec.name: values.get(spec.name) for spec in specs}])
    with sqlite_engine.begin() as conn:
        publish_frame(conn, WaterQualityStation, frame, run_id="embedded-run", now=NOW)
    with sqlite_engine.connect() as conn:
        event_id = conn.execute(select(outbox.c.event_id)).scalar_one()

    with (
        EmbeddedBroker(port=free_port) as broker,
        ChangeSubscriber(broker.url) as subscriber,
        MqttNotifier(broker.url) as notifier,
    ):
        result = dispatch_outbox(sqlite_engine, notifier, hub_id="embedded-test", now=NOW)
        events = subscriber.wait_for({event_id}, timeout_s=10)

    assert result.sent_ids == (event_id,)
    assert [(e.event_id, e.dataset, e.first_seq, e.last_seq) for e in events] == [
        (event_id, WaterQualityStation.meta.key, 1, 1)
    ]


def test_exiting_frees_the_port_for_the_next_broker(free_port: int) -> None:
    with EmbeddedBroker(port=free_port):
        lingering = connected_client(free_port)  # still connected when the broker stops: shutdown must not trip on it

    stop(lingering)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", free_port), timeout=2).close()
    assert broker_threads() == []

    with EmbeddedBroker(port=free_port) as again:
        client = connected_client(free_port)
        info = client.publish("waterhub/probe", b"x", qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
        stop(client)
    assert again.url.endswith(f":{free_port}")
    assert broker_threads() == []


def test_a_taken_port_raises_store_unavailable_and_leaves_nothing_running(free_port: int) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        with pytest.raises(
            StoreUnavailableError, match=rf"127\.0\.0\.1:{free_port} is taken.*WATERHUB_EMBEDDED_MQTT_PORT"
        ):
            EmbeddedBroker(port=free_port).__enter__()

    assert broker_threads() == []


def test_a_port_outside_the_range_is_refused() -> None:
    for bad in (0, 65536):
        with pytest.raises(ValueError, match="between 1 and 65535"):
            EmbeddedBroker(port=bad)
