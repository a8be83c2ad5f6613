"""A consumer's side of the change topics: subscribe, dedupe by event id, wait for the events you expect.

Events arrive at least once (the outbox is re-sent after a failure), so a consumer keys on the CloudEvent ``id``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from exchange.errors import StoreUnavailableError
from exchange.mqtt_url import broker_address

__all__ = ["ALL_CHANGES", "ChangeEvent", "ChangeSubscriber"]

ALL_CHANGES = "waterhub/datasets/+/changes"


@dataclass(frozen=True)
class ChangeEvent:
    """The fields of a dataset-changed CloudEvent a consumer acts on; ``source`` + ``event_id`` is unique across
    hubs sharing a broker, ``hub_id`` names the hub that sent it."""

    event_id: str
    source: str
    hub_id: str
    dataset: str
    contract_version: str
    run_id: str
    first_seq: int
    last_seq: int
    inserted: int
    updated: int
    deleted: int
    dataschema: str
    topic: str

    @classmethod
    def from_message(cls, topic: str, payload: bytes) -> ChangeEvent:
        event: dict[str, Any] = json.loads(payload)
        data = event["data"]
        return cls(
            event_id=event["id"],
            source=event["source"],
            hub_id=data["hub_id"],
            dataset=data["dataset"],
            contract_version=data["contract_version"],
            run_id=data["run_id"],
            first_seq=data["first_seq"],
            last_seq=data["last_seq"],
            inserted=data["inserted"],
            updated=data["updated"],
            deleted=data["deleted"],
            dataschema=event["dataschema"],
            topic=topic,
        )


class ChangeSubscriber:
    """Subscribes (QoS 1) on entry and collects events until exit; ``wait_for`` blocks until given ids arrived."""

    def __init__(self, url: str, topic: str = ALL_CHANGES, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self.topic = topic
        self.timeout_s = timeout_s
        self._events: dict[str, ChangeEvent] = {}
        self.rejected: list[tuple[str, str]] = []
        self._arrived = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def __enter__(self) -> ChangeSubscriber:
        address = broker_address(self.url)
        if address.username:
            self._client.username_pw_set(address.username, address.password)
        try:
            self._client.connect(address.host, address.port)
        except OSError as exc:
            raise StoreUnavailableError(f"no MQTT broker at {address.where} ({exc})") from exc
        self._client.loop_start()
        if not self._subscribed.wait(self.timeout_s):
            self.__exit__(None, None, None)
            raise StoreUnavailableError(f"the broker at {address.where} did not accept {self.topic}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def events(self) -> list[ChangeEvent]:
        """Distinct events in arrival order."""
        with self._arrived:
            return list(self._events.values())

    def wait_for(self, event_ids: Collection[str], *, timeout_s: float) -> list[ChangeEvent]:
        """The events received once every id in ``event_ids`` arrived, or when ``timeout_s`` ran out."""
        with self._arrived:
            self._arrived.wait_for(lambda: set(event_ids) <= self._events.keys(), timeout=timeout_s)
            return list(self._events.values())

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object, reason: Any, _props: object) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: object, _mid: int, reasons: Any, _props: object) -> None:
        if all(not code.is_failure for code in reasons):
            self._subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            event = ChangeEvent.from_message(message.topic, bytes(message.payload))
        except (ValueError, KeyError, TypeError) as exc:
            # Someone else's malformed message on our topic must not stop the subscriber: keep it for inspection.
            with self._arrived:
                self.rejected.append((message.topic, f"{type(exc).__name__}: {exc}"))
            return
        with self._arrived:
            self._events.setdefault(event.event_id, event)
            self._arrived.notify_all()
