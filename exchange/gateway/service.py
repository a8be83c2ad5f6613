"""The gateway's MQTT loop: a persistent QoS 1 session, micro-batches, and acknowledgements only after commit.

paho's network thread only queues what arrives. The batching thread takes the first waiting message, fills the
batch up to ``batch_size`` or ``batch_time_ms``, commits it (``writer.commit_batch``) and only then acknowledges
each message (manual acks, in arrival order as MQTT asks) and sends the protocol replies. A crash before the ack
leaves the messages with the broker, which redelivers them to the same session: the rows they carry are keyed, so a
second commit changes nothing.

When the database is unreachable the batch is retried with exponential backoff (tenacity), forever, while nothing
is acknowledged; the broker stops sending once ``receive_maximum`` messages are in flight and queues the rest
(``max_queued_messages`` in its configuration must be large for this reason). A dispatcher thread sends the outbox
as change events after each commit, and the same loop looks for devices gone silent.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from tenacity import Retrying, retry_if_exception_type, wait_exponential

from exchange.errors import StoreUnavailableError
from exchange.gateway.registry import mark_offline
from exchange.gateway.settings import GatewaySettings
from exchange.gateway.topics import ALL_UPLINKS
from exchange.gateway.writer import BatchOutcome, Message, commit_batch
from exchange.mqtt_url import broker_address
from exchange.notify import MqttNotifier, dispatch_outbox

__all__ = ["Gateway", "GatewayMetrics"]

log = structlog.get_logger(__name__)

_QOS = 1
_OUTAGE = (DBAPIError, StoreUnavailableError)
"""What an unreachable database raises: the engine turns a failed connect or a dropped connection into
``StoreUnavailableError``; other driver errors arrive as ``DBAPIError``."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _wait(stop: threading.Event, seconds: float) -> None:
    """Backoff sleeps end early when the gateway is asked to stop."""
    stop.wait(seconds)


class GatewayMetrics:
    """The gateway's own counters, on a registry of its own (served by ``waterhub gateway`` on its metrics port)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "waterhub_gateway_messages_received", "Messages taken from the broker", registry=self.registry
        )
        self.acknowledged = Counter(
            "waterhub_gateway_messages_acknowledged", "Messages acknowledged after their commit", registry=self.registry
        )
        self.changed = Counter(
            "waterhub_gateway_rows_changed", "Rows inserted, updated or deleted", ["dataset"], registry=self.registry
        )
        self.quarantined = Counter(
            "waterhub_gateway_records_quarantined", "Messages or readings quarantined", registry=self.registry
        )
        self.outages = Counter(
            "waterhub_gateway_database_retries", "Attempts that found the database away", registry=self.registry
        )
        self.commit_seconds = Histogram(
            "waterhub_gateway_batch_commit_seconds",
            "Decode, judge and commit of one micro-batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )


class Gateway:
    """``run(stop)`` until ``stop`` is set; a batch that has not committed by then stays unacknowledged."""

    def __init__(
        self,
        engine: Engine,
        mqtt_url: str,
        settings: GatewaySettings,
        *,
        hub_id: str,
        clock: Callable[[], datetime] = _utc_now,
        freeze_heap: bool = False,
    ) -> None:
        """``freeze_heap``: once the first batch has committed, move every object then alive out of the garbage
        collector's sight (``gc.freeze``). What start-up and the first batch built (contracts, SQLAlchemy tables,
        pandas and pyarrow, imported by the first batch) lives as long as the process, yet every full collection
        walks it again while every thread waits, the network thread's acks and receipts included: pauses that land
        in the slowest messages' latency. The CLI sets it; tests leave their own process's collector alone."""
        self.engine = engine
        self.mqtt_url = mqtt_url
        self.settings = settings
        self.hub_id = hub_id
        self.clock = clock
        self._freeze_heap = freeze_heap
        self.metrics = GatewayMetrics()
        self._inbox: queue.Queue[Message] = queue.Queue()
        self._dispatch_wanted = threading.Event()
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        address = broker_address(self.mqtt_url)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if address.username:
            client.username_pw_set(address.username, address.password)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, _userdata: object, flags: Any, reason: Any, _props: object) -> None:
        if reason.is_failure:
            log.warning("gateway_connect_refused", reason=str(reason))
            return
        # The session survives restarts, but subscribing again is harmless and covers an expired session.
        client.subscribe(ALL_UPLINKS, qos=_QOS)
        log.info("gateway_connected", session_present=bool(flags.session_present))

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(Message(message.mid, message.qos, message.topic, bytes(message.payload), self.clock()))
        self.metrics.received.inc()

    def run(self, stop: threading.Event) -> None:
        address = broker_address(self.mqtt_url)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it untyped
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        properties.ReceiveMaximum = self.settings.receive_maximum
        self._client.connect_async(address.host, address.port, keepalive=30, clean_start=False, properties=properties)
        self._client.loop_start()
        dispatcher = threading.Thread(target=self._dispatch_loop, args=(stop,), name="gateway-dispatch", daemon=True)
        dispatcher.start()
        next_offline_check = time.monotonic() + self.settings.offline_check_s
        try:
            while not stop.is_set():
                batch = self._next_batch(stop)
                if batch:
                    outcome = self._commit(batch, stop)
                    if outcome is None:
                        return  # stopped while the database was away: the batch stays unacknowledged
                    self._acknowledge(batch, outcome)
                    if self._freeze_heap:
                        gc.collect()  # the start-up's garbage is freed, not frozen
                        gc.freeze()
                        self._freeze_heap = False
                if time.monotonic() >= next_offline_check:
                    self._check_offline(stop)
                    next_offline_check = time.monotonic() + self.settings.offline_check_s
        finally:
            self._dispatch_wanted.set()
            self._client.disconnect()
            self._client.loop_stop()
            dispatcher.join(timeout=5)

    def _next_batch(self, stop: threading.Event) -> list[Message]:
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.settings.batch_time_ms / 1000
        while len(batch) < self.settings.batch_size and not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(self._inbox.get(timeout=left))
            except queue.Empty:
                break
        return batch

    def _retrying(self, stop: threading.Event, *, holding: int) -> Retrying:
        def stop_when_asked(_state: object) -> bool:
            return stop.is_set()

        def log_attempt(state: Any) -> None:
            self.metrics.outages.inc()
            log.warning(
                "gateway_database_unavailable",
                attempt=state.attempt_number,
                error=type(state.outcome.exception()).__name__,
                unacknowledged=holding,
            )

        return Retrying(
            retry=retry_if_exception_type(_OUTAGE),
            wait=wait_exponential(multiplier=0.2, max=self.settings.backoff_max_s),
            stop=stop_when_asked,
            before_sleep=log_attempt,
            sleep=lambda seconds: _wait(stop, seconds),
            reraise=True,
        )

    def _commit(self, batch: list[Message], stop: threading.Event) -> BatchOutcome | None:
        run_id = f"gateway:{uuid.uuid4().hex[:16]}"
        try:
            for attempt in self._retrying(stop, holding=len(batch)):
                with attempt, self.metrics.commit_seconds.time():
                    return commit_batch(self.engine, batch, run_id=run_id, now=self.clock())
        except _OUTAGE:
            if stop.is_set():
                return None
            raise
        return None

    def _acknowledge(self, batch: list[Message], outcome: BatchOutcome) -> None:
        for message in batch:
            self._client.ack(message.mid, message.qos)
        self.metrics.acknowledged.inc(len(batch))
        self.metrics.quarantined.inc(outcome.quarantined)
        for dataset, count in outcome.changed_rows.items():
            self.metrics.changed.labels(dataset).inc(count)
        for topic, payload in outcome.replies:
            self._client.publish(topic, payload, qos=_QOS)
        if outcome.changed_datasets:
            self._dispatch_wanted.set()
        log.debug(
            "gateway_batch_committed", messages=len(batch), published=outcome.published, quarantined=outcome.quarantined
        )

    def _check_offline(self, stop: threading.Event) -> None:
        run_id = f"gateway-offline:{uuid.uuid4().hex[:16]}"
        try:
            for attempt in self._retrying(stop, holding=0):
                with attempt, self.engine.begin() as conn:
                    if mark_offline(conn, run_id=run_id, now=self.clock()) is not None:
                        self._dispatch_wanted.set()
        except _OUTAGE:
            if not stop.is_set():
                raise

    def _dispatch_loop(self, stop: threading.Event) -> None:
        """Change events leave after commit, from the outbox, as every publish's do (at least once, stable ids)."""
        with MqttNotifier(self.mqtt_url) as notifier:
            while not stop.is_set():
                self._dispatch_wanted.wait(timeout=1.0)
                self._dispatch_wanted.clear()
                try:
                    dispatch_outbox(self.engine, notifier, now=self.clock(), hub_id=self.hub_id)
                except _OUTAGE as exc:
                    log.warning("gateway_dispatch_deferred", error=type(exc).__name__)
