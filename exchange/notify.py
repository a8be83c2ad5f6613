"""Send the outbox as change notifications once the publish transaction has committed (STYLE rule 9).

A publish writes one outbox row in its own transaction; this module turns each pending row into a CloudEvents 1.0
event on ``waterhub/datasets/<dataset>/changes`` and marks the row dispatched, in a short transaction of its own,
only after the broker acknowledged it. A crash between the acknowledgement and that commit sends the event again
on the next dispatch, with the same ``id`` (the one the publish stored on the row): delivery is at least once,
and consumers dedupe on the id (exchange.subscriber).

Order is kept per dataset: events go out oldest outbox id first, and when one fails the later events of the same
dataset are not tried in that call. They stay pending, untouched (no attempt counted), and are reported as
``held``; only the event that failed is counted as ``failed`` and carries ``attempts`` and ``last_error``. Other
datasets carry on, so one dataset's trouble does not hold back the rest.

Two dispatchers at once (an Airflow retry overlapping a late run) must not send one event twice or out of order.
``FOR UPDATE SKIP LOCKED`` on rows is not enough for the second: a dispatcher would skip the locked oldest row and
send the next event of that dataset first. So on PostgreSQL each send first tries a transaction-scoped advisory lock
on the dataset, without waiting (the dataset-wide form of SKIP LOCKED): a dispatcher that does not get it leaves the
dataset to the one that has it. SQLite has no such locks; the embedded hub runs one dispatcher (the DAG has
``max_active_runs=1``), and should two overlap anyway, a row is re-read before it is sent, so the worst case is a
duplicate with the same id, which at-least-once delivery allows.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, TypeVar

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import BigInteger, Connection, Engine, bindparam, func, select

from contracts import schema_id
from exchange.errors import ExchangeError, StoreUnavailableError
from exchange.identity import event_source
from exchange.mqtt_url import broker_address
from exchange.subscriber import ALL_CHANGES
from exchange.tables import CHANGED_EVENT_TYPE, STALE_EVENT_TYPE, outbox

__all__ = [
    "EVENT_TYPE",
    "DispatchResult",
    "MqttNotifier",
    "Notifier",
    "change_topic",
    "cloud_event",
    "dispatch_outbox",
    "event_topic",
    "freshness_topic",
]

log = structlog.get_logger(__name__)

EVENT_TYPE = CHANGED_EVENT_TYPE
"""The ``type`` names the payload's shape: a breaking change to ``data`` gets ``.v2`` side by side, like contracts."""

_TOPIC_PREFIX, _TOPIC_SUFFIX = ALL_CHANGES.split("+")
_LAST_ERROR_CHARS = 500
_T = TypeVar("_T")


def change_topic(dataset: str) -> str:
    """``water_quality.samples`` → ``waterhub/datasets/water_quality.samples/changes``.

    The layout has one owner, the consumers' wildcard ``ALL_CHANGES``: a dataset's topic is that filter with the key
    in place of ``+``. A key holding ``/``, ``+`` or ``#`` would land on another topic or none, so it is refused.
    """
    if not dataset or any(char in dataset for char in "/+#"):
        raise ValueError(f"dataset key {dataset!r} cannot be an MQTT topic level: it must be non-empty, without / + #")
    return f"{_TOPIC_PREFIX}{dataset}{_TOPIC_SUFFIX}"


def freshness_topic(dataset: str) -> str:
    """``waterhub/datasets/<dataset>/freshness``: alerts about a dataset, apart from its changes, so a consumer
    applying changes never meets an event that is not one."""
    return change_topic(dataset).removesuffix("/changes") + "/freshness"


def event_topic(row: Mapping[str, object]) -> str:
    """Where an outbox row's event goes, by its type."""
    dataset = _field(row, "dataset", str)
    return freshness_topic(dataset) if row.get("event_type") == STALE_EVENT_TYPE else change_topic(dataset)


def cloud_event(row: Mapping[str, object], *, hub_id: str) -> dict[str, object]:
    """The structured-mode CloudEvents 1.0 JSON event for one outbox row, sent by hub ``hub_id``.

    MQTT 3.1.1 has no message headers, so the CloudEvents MQTT binding allows only structured mode: the attributes
    travel inside the JSON payload. ``time`` is when the change was published (the row's ``created_at``), not when
    it was sent, so a re-sent event is identical to the first one. ``data`` names the hub too, for consumers that
    keep only the payload.
    """
    dataset = _field(row, "dataset", str)
    contract_version = _field(row, "contract_version", str)
    created_at = _field(row, "created_at", datetime)
    if created_at.tzinfo is None:
        raise ValueError(f"outbox row {row.get('id')}: created_at {created_at!r} is naive; the store keeps UTC")
    event_type = row.get("event_type") or CHANGED_EVENT_TYPE
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": _field(row, "event_id", str),
        "source": event_source(hub_id),
        "type": event_type,
        "subject": dataset,
        "time": created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
    }
    if event_type == STALE_EVENT_TYPE:  # what the freshness check found, and the dataset's last sequence then
        detail = json.loads(_field(row, "detail", str))
        return {**event, "data": {"hub_id": hub_id, "dataset": dataset, "last_seq": row["last_seq"], **detail}}
    return {
        **event,
        "dataschema": schema_id(dataset, contract_version),
        "data": {
            "hub_id": hub_id,
            "dataset": dataset,
            "contract_version": contract_version,
            "run_id": _field(row, "run_id", str),
            "first_seq": _field(row, "first_seq", int),
            "last_seq": _field(row, "last_seq", int),
            "inserted": _field(row, "inserted", int),
            "updated": _field(row, "updated", int),
            "deleted": _field(row, "deleted", int),
        },
    }


def _field(row: Mapping[str, object], name: str, kind: type[_T]) -> _T:
    value = row[name]
    if not isinstance(value, kind):
        raise TypeError(f"outbox row {row.get('id')}: {name} is {type(value).__name__}, expected {kind.__name__}")
    return value


class Notifier(Protocol):
    """Where change events go. MQTT today; webhooks will be a second implementation behind the same seam.

    ``publish`` returns only once the receiver has the event, because the row is marked sent right after. It
    raises an ``ExchangeError`` (``StoreUnavailableError`` when the receiver is unreachable or too slow to answer)
    when it cannot say that; dispatch then records the error on the row and sends the event again later.
    """

    def publish(self, topic: str, payload: bytes) -> None: ...


class MqttNotifier:
    """Publishes with QoS 1 and waits for the broker's PUBACK, bounded by ``timeout_s``, before returning.

    It connects on the first publish, not on entry: a broker outage is then recorded on the outbox row it held up
    (``attempts``, ``last_error``), where an operator looks, and a run with nothing to send needs no broker at all.
    After a dropped connection paho's network thread reconnects by itself; a publish waits for that up to the same
    timeout. Messages name the broker by host and port only, never by its URL, which may hold a password.
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        address = broker_address(url)
        if timeout_s <= 0:
            raise ValueError(f"timeout_s={timeout_s!r}: the wait for the broker must be bounded and positive")
        self.address = address
        self.timeout_s = timeout_s
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._answered = threading.Event()
        self._refusal: str | None = None

    @property
    def where(self) -> str:
        """The broker as messages name it: host and port, no credentials."""
        return self.address.where

    def __enter__(self) -> MqttNotifier:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect and stop paho's network thread; events already acknowledged are unaffected."""
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def connect(self) -> None:
        """Connect now (a publish connects by itself): for a health check, which must see a refusal as a send would."""
        self._connection()

    def publish(self, topic: str, payload: bytes) -> None:
        client = self._connection()
        info = client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(self.timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise StoreUnavailableError(
                f"MQTT broker at {self.where}: publishing to {topic} failed ({exc}). The event stays in the outbox "
                "and the next dispatch sends it again; check that the broker is up."
            ) from exc
        if not info.is_published():
            raise StoreUnavailableError(
                f"MQTT broker at {self.where} did not acknowledge the event on {topic} within {self.timeout_s:g} s. "
                "The event stays in the outbox and the next dispatch sends it again (same id); check the broker's load."
            )

    def _connection(self) -> mqtt.Client:
        if self._client is not None:
            if self._connected.wait(self.timeout_s):
                return self._client
            raise StoreUnavailableError(
                f"lost the connection to the MQTT broker at {self.where} and it did not come back within "
                f"{self.timeout_s:g} s. The event stays in the outbox; check that the broker is up."
            )
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"waterhub-notifier-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.connect_timeout = self.timeout_s
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._answered.clear()
        self._refusal = None
        try:
            client.connect(self.address.host, self.address.port, keepalive=60)
        except OSError as exc:
            raise StoreUnavailableError(
                f"no MQTT broker answers at {self.where} ({exc.strerror or type(exc).__name__}). The event stays in "
                "the outbox and the next dispatch sends it; start the broker or point WATERHUB_MQTT_URL at one."
            ) from exc
        client.loop_start()
        if self._answered.wait(self.timeout_s) and self._refusal is None:
            self._client = client
            return client
        client.disconnect()
        client.loop_stop()
        if self._refusal is not None:
            raise StoreUnavailableError(
                f"the MQTT broker at {self.where} refused the connection ({self._refusal}). The event stays in the "
                "outbox; check the user and password in WATERHUB_MQTT_URL against the broker's password file."
            )
        raise StoreUnavailableError(
            f"the MQTT broker at {self.where} accepted TCP but sent no CONNACK within {self.timeout_s:g} s. "
            "The event stays in the outbox; check that this port serves MQTT."
        )

    def _on_connect(self, _client: mqtt.Client, _userdata: object, _flags: object, reason: Any, _props: object) -> None:
        if reason.is_failure:
            self._refusal = str(reason)
        else:
            self._connected.set()
        self._answered.set()

    def _on_disconnect(self, *_args: object) -> None:
        self._connected.clear()


@dataclass(frozen=True)
class DispatchResult:
    """What one dispatch did: events acknowledged, events that failed, and pending events it did not try.

    ``held`` counts pending rows left for a later dispatch because an earlier event of their dataset failed in this
    call, or because another dispatcher was sending that dataset at the time (PostgreSQL).
    """

    sent_ids: tuple[str, ...] = ()
    failed_ids: tuple[str, ...] = ()
    held: int = 0

    @property
    def sent(self) -> int:
        return len(self.sent_ids)

    @property
    def failed(self) -> int:
        return len(self.failed_ids)


def dispatch_outbox(
    engine: Engine, notifier: Notifier, *, hub_id: str, now: datetime, limit: int = 1000
) -> DispatchResult:
    """Send up to ``limit`` pending outbox rows, oldest first, each marked in its own transaction once acknowledged.

    A failed send is recorded on its row (``attempts`` + 1, ``last_error``) and holds back the later events of its
    dataset until a later dispatch; it does not raise. Rows beyond ``limit`` wait for the next call. ``now`` becomes
    ``dispatched_at``; ``hub_id`` names this hub in every event (``event_source``).
    """
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} is naive; pass an aware UTC datetime")
    event_source(hub_id)  # a bad hub id fails before anything is sent, not on the first pending row
    with engine.connect() as conn:
        pending = conn.execute(
            select(outbox.c.id, outbox.c.dataset)
            .where(outbox.c.dispatched_at.is_(None))
            .order_by(outbox.c.id)
            .limit(limit)
        ).all()
    sent: list[str] = []
    failed: list[str] = []
    held = 0
    stopped: set[str] = set()
    for row_id, dataset in pending:
        if dataset in stopped:
            held += 1
            continue
        with engine.begin() as conn:
            if not _claim(conn, dataset):
                stopped.add(dataset)
                held += 1
                continue
            found = conn.execute(select(outbox).where(outbox.c.id == row_id, outbox.c.dispatched_at.is_(None))).first()
            if found is None:
                continue  # another dispatcher sent it after we listed it
            row = found._asdict()
            outcome = _send(conn, notifier, row, hub_id=hub_id, now=now)
        if outcome is None:
            sent.append(row["event_id"])
        else:
            failed.append(row["event_id"])
            stopped.add(dataset)
    return DispatchResult(tuple(sent), tuple(failed), held)


def _claim(conn: Connection, dataset: str) -> bool:
    """On PostgreSQL, try the dataset's advisory lock (held until this row's transaction ends); elsewhere, yes."""
    if conn.dialect.name != "postgresql":
        return True
    digest = hashlib.blake2b(f"waterhub.outbox:{dataset}".encode(), digest_size=8).digest()
    key = bindparam("lock_key", int.from_bytes(digest, "big", signed=True), type_=BigInteger)
    return bool(conn.scalar(select(func.pg_try_advisory_xact_lock(key))))


def _send(conn: Connection, notifier: Notifier, row: Mapping[str, Any], *, hub_id: str, now: datetime) -> str | None:
    """Publish one row and record the outcome in ``conn``'s transaction; the error text when it failed."""
    payload = json.dumps(cloud_event(row, hub_id=hub_id), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    context = {"dataset": row["dataset"], "event_id": row["event_id"], "attempt": row["attempts"] + 1}
    try:
        notifier.publish(event_topic(row), payload)
    except ExchangeError as exc:
        error = f"{type(exc).__name__}: {exc}"[:_LAST_ERROR_CHARS]
        conn.execute(
            outbox.update().where(outbox.c.id == row["id"]).values(attempts=outbox.c.attempts + 1, last_error=error)
        )
        log.warning("event_dispatch_failed", **context, error=error)
        return error
    conn.execute(
        outbox.update().where(outbox.c.id == row["id"]).values(attempts=outbox.c.attempts + 1, dispatched_at=now)
    )
    log.info("event_dispatched", **context, first_seq=row["first_seq"], last_seq=row["last_seq"])
    return None
