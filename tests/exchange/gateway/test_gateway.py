"""The gateway end to end: simulated devices → our own Mosquitto → gateway → real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select

from connectors.devices import DeviceSimulator, publish_messages
from connectors.protocols import hj212, sl651
from exchange.gateway.local_broker import LocalMosquitto
from exchange.gateway.service import Gateway
from exchange.gateway.settings import GatewaySettings
from exchange.tables import quarantine
from tests.exchange.gateway.conftest import (
    HUB_PASSWORD,
    gateway_running,
    register,
    stored_keys,
    wait_for,
)


@pytest.fixture
def running_gateway(hub: Engine, broker: LocalMosquitto) -> Iterator[Gateway]:
    with gateway_running(hub, broker, GatewaySettings(client_id="gw-test", batch_time_ms=10)) as gateway:
        yield gateway


def test_every_sent_observation_is_stored_once_and_poison_is_quarantined(
    hub: Engine, broker: LocalMosquitto, running_gateway: Gateway
) -> None:
    simulator = DeviceSimulator(seed=3, stations=8, corrupt_share=0.05, resend_share=0.1)
    register(hub, simulator)
    messages = list(simulator.messages(400))
    expected = set().union(*(message.keys for message in messages))
    corrupt = {message.payload for message in messages if message.corrupt}
    publish_messages("127.0.0.1", broker.port, messages, client_id="sim-1", username="waterhub", password=HUB_PASSWORD)

    wait_for(lambda: set(stored_keys(hub)) >= expected, what="every observation stored")
    assert set(stored_keys(hub)) == expected  # keys are primary keys: a second copy of any observation cannot exist
    with hub.connect() as conn:
        reasons = conn.execute(select(quarantine.c.reasons, quarantine.c.payload)).all()
    assert len(reasons) == len(corrupt)
    assert all(text.startswith(('["sl651_', '["hj212_', '["json_')) for text, _ in reasons)


def test_spoofing_device_is_quarantined_and_required_replies_are_sent(
    hub: Engine, broker: LocalMosquitto, running_gateway: Gateway
) -> None:
    simulator = DeviceSimulator(seed=4, stations=4)
    register(hub, simulator)
    river, _rain, analyser, _json = simulator.devices
    replies: list[tuple[str, bytes]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="replies", protocol=mqtt.MQTTv311)
    listener.username_pw_set("waterhub", HUB_PASSWORD)
    listener.on_message = lambda _c, _u, m: replies.append((m.topic, bytes(m.payload)))
    listener.connect("127.0.0.1", broker.port)
    listener.subscribe("waterhub/devices/+/+/down", qos=1)
    listener.loop_start()
    time.sleep(0.3)
    try:
        messages = list(simulator.messages(4))
        # The river station's own report, published on the rain gauge's topic.
        spoof = messages[0]
        spoofed_topic = f"waterhub/devices/sl651/{_rain.device_id}/up"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="spoofer", protocol=mqtt.MQTTv311)
        client.username_pw_set("waterhub", HUB_PASSWORD)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        client.publish(spoofed_topic, spoof.payload, qos=1).wait_for_publish(5)
        client.publish(river.topic, messages[0].payload, qos=1).wait_for_publish(5)
        client.publish(analyser.topic, messages[2].payload, qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()
        wait_for(lambda: len(replies) >= 2, what="two replies")
    finally:
        listener.disconnect()
        listener.loop_stop()
    with hub.connect() as conn:
        rows = conn.execute(select(quarantine.c.dataset, quarantine.c.reasons, quarantine.c.payload)).all()
    assert [(dataset, reasons) for dataset, reasons, _ in rows] == [("devices.sl651", '["station_address_mismatch"]')]
    assert spoofed_topic in rows[0][2]
    by_topic = dict(replies)
    ack = sl651.decode_frame(by_topic[f"waterhub/devices/sl651/{river.device_id}/down"])
    sent = sl651.decode_frame(messages[0].payload)
    assert ack.header.direction is sl651.Direction.DOWN
    assert isinstance(ack.body, sl651.Report)
    assert isinstance(sent.body, sl651.Report)
    assert ack.body.serial == sent.body.serial
    answer = hj212.decode_packet(by_topic[f"waterhub/devices/hj212/{analyser.device_id}/down"])
    assert (answer.cn, answer.qn) == ("9014", hj212.decode_packet(messages[2].payload).qn)
    assert set(by_topic) == {
        f"waterhub/devices/sl651/{river.device_id}/down",
        f"waterhub/devices/hj212/{analyser.device_id}/down",
    }
