"""The production broker configuration: device credentials from the registry's hash, and the ACL."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from exchange.gateway.local_broker import LocalMosquitto
from tests.exchange.gateway.conftest import HUB_PASSWORD


def _client(broker: LocalMosquitto, user: str, password: str, received: list[str] | None = None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"acl-{user}", protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    if received is not None:
        client.on_message = lambda _c, _u, message: received.append(message.topic)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def test_a_device_cannot_publish_on_another_devices_topic(broker: LocalMosquitto) -> None:
    received: list[str] = []
    hub = _client(broker, "waterhub", HUB_PASSWORD, received)
    subscribed = threading.Event()
    hub.on_subscribe = lambda *_args: subscribed.set()
    hub.subscribe("waterhub/devices/+/+/up", qos=1)
    assert subscribed.wait(5)
    device = _client(broker, "0010000000", "d0")
    try:
        own = device.publish("waterhub/devices/sl651/0010000000/up", b"mine", qos=1)
        other = device.publish("waterhub/devices/sl651/0010000001/up", b"spoof", qos=1)
        own.wait_for_publish(5)
        other.wait_for_publish(5)
        hub.publish("waterhub/devices/sl651/0010000000/up", b"marker", qos=1).wait_for_publish(5)
        deadline = threading.Event()
        for _ in range(50):
            if "waterhub/devices/sl651/0010000000/up" in received and len(received) >= 2:
                break
            deadline.wait(0.1)
    finally:
        device.disconnect()
        device.loop_stop()
        hub.disconnect()
        hub.loop_stop()
    assert received == ["waterhub/devices/sl651/0010000000/up", "waterhub/devices/sl651/0010000000/up"]
    assert other.rc == mqtt.MQTT_ERR_SUCCESS  # sent; the broker refused it, so the hub saw only the device's own


def test_a_wrong_password_is_refused(broker: LocalMosquitto) -> None:
    refused = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="acl-bad", protocol=mqtt.MQTTv5)
    client.username_pw_set("0010000000", "not-its-password")
    client.on_connect = lambda _c, _u, _f, reason, _p: refused.set() if reason.is_failure else None
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert refused.wait(5)
    finally:
        client.loop_stop()
