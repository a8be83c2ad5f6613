"""Subscriptions of departments: create, list, delete, ping, and each one's delivery log.

A subscription is made with a token and lives on that token's grant: it is sent only what the grant lets the
token read (its row filter included), and it stops (disabled, with the reason) when the token is revoked or
expires or the grant goes. Callers (the API) check the grant before they call here; this module checks the
channel and the address.

A new subscription is sent the changes its dataset publishes after it was made: ``fed_outbox_id`` starts at the
dataset's newest outbox row. Outbox ids of one dataset grow in commit order (a publish inserts its row while it
holds the dataset's lock), so no change can slip in below that mark later.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, delete, func, select

from exchange.identity import event_source
from exchange.tables import deliveries, outbox, subscriptions
from exchange.webhooks.alerts import Alert
from exchange.webhooks.signing import new_secret

__all__ = [
    "CHANNELS",
    "PING_EVENT_TYPE",
    "Channel",
    "DeliveryRecord",
    "Subscription",
    "SubscriptionError",
    "check_url",
    "create_subscription",
    "delete_subscription",
    "delivery_log",
    "find_subscription",
    "list_subscriptions",
    "queue_ping",
    "shown_url",
]

Channel = Literal["webhook", "wecom"]
CHANNELS: tuple[str, ...] = get_args(Channel)
PING_EVENT_TYPE = "org.waterhub.subscription.ping.v1"
_MAX_URL_CHARS = 2000


class SubscriptionError(ValueError):
    """A subscription that cannot be made as asked: the message says what to change (the API answers 400)."""


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    department: str
    token_id: str
    dataset: str
    channel: Channel
    url: str
    state: str
    disabled_reason: str | None
    created_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.subscription_id,
            "dataset": self.dataset,
            "channel": self.channel,
            "url": shown_url(self.channel, self.url),
            "state": self.state,
            "disabled_reason": self.disabled_reason,
            "created_at": _utc_text(self.created_at),
        }


@dataclass(frozen=True)
class DeliveryRecord:
    """One line of a subscription's delivery log."""

    delivery_id: int
    message_id: str
    kind: str
    first_seq: int | None
    last_seq: int | None
    state: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.delivery_id,
            "message_id": self.message_id,
            "kind": self.kind,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": _utc_text(self.next_attempt_at) if self.state == "pending" else None,
            "last_attempt_at": _utc_text(self.last_attempt_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": _utc_text(self.delivered_at),
            "created_at": _utc_text(self.created_at),
        }


def _utc_text(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def shown_url(channel: str, url: str) -> str:
    """A WeCom robot's address carries its key, a credential: shown with the key masked."""
    if channel != "wecom":
        return url
    parts = urlsplit(url)
    return parts._replace(query="key=***").geturl() if parts.query else url


def check_url(channel: str, url: str, *, wecom_url_prefix: str) -> None:
    if channel not in CHANNELS:
        raise SubscriptionError(f"channel must be one of {', '.join(CHANNELS)}, not {channel[:20]!r}")
    if len(url) > _MAX_URL_CHARS:
        raise SubscriptionError(f"the url is {len(url)} characters; at most {_MAX_URL_CHARS}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError("the url must be an absolute http:// or https:// address")
    if parts.username or parts.password:
        raise SubscriptionError("the url must not carry a user or password; webhooks are signed instead")
    if channel == "wecom" and not (url.startswith(wecom_url_prefix + "?") and "key=" in parts.query):
        raise SubscriptionError(f"a WeCom group robot's address reads {wecom_url_prefix}?key=…")


def create_subscription(
    engine: Engine,
    *,
    department: str,
    token_id: str,
    dataset: str,
    channel: str,
    url: str,
    wecom_url_prefix: str,
    now: datetime,
) -> tuple[Subscription, str | None]:
    """A new active subscription and, for a webhook, its ``whsec_`` secret (returned once, to show the caller)."""
    check_url(channel, url, wecom_url_prefix=wecom_url_prefix)
    secret = new_secret() if channel == "webhook" else None
    subscription_id = f"sub_{secrets.token_hex(12)}"
    with engine.begin() as conn:
        newest = conn.scalar(select(func.coalesce(func.max(outbox.c.id), 0)).where(outbox.c.dataset == dataset))
        conn.execute(
            subscriptions.insert().values(
                subscription_id=subscription_id,
                department=department,
                token_id=token_id,
                dataset=dataset,
                channel=channel,
                url=url,
                secret=secret,
                state="active",
                fed_outbox_id=int(newest or 0),
                created_at=now,
            )
        )
    made = Subscription(subscription_id, department, token_id, dataset, channel, url, "active", None, now)  # type: ignore[arg-type]  # channel checked above
    return made, secret


def list_subscriptions(engine: Engine, department: str, datasets: set[str] | None = None) -> list[Subscription]:
    """A department's subscriptions, oldest first; only those on ``datasets`` when given."""
    query = select(subscriptions).where(subscriptions.c.department == department)
    if datasets is not None:
        query = query.where(subscriptions.c.dataset.in_(sorted(datasets)))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(subscriptions.c.created_at, subscriptions.c.subscription_id)).all()
    return [_subscription(row._asdict()) for row in rows]


def find_subscription(conn: Connection, subscription_id: str, department: str) -> Subscription | None:
    row = conn.execute(
        select(subscriptions).where(
            subscriptions.c.subscription_id == subscription_id, subscriptions.c.department == department
        )
    ).first()
    return None if row is None else _subscription(row._asdict())


def _subscription(row: dict[str, object]) -> Subscription:
    return Subscription(
        **{name: row[name] for name in Subscription.__dataclass_fields__}  # type: ignore[arg-type]  # the table's own columns
    )


def delete_subscription(engine: Engine, subscription_id: str) -> None:
    """The subscription and its deliveries, sent or not: nothing more goes out for it."""
    with engine.begin() as conn:
        conn.execute(delete(deliveries).where(deliveries.c.subscription_id == subscription_id))
        conn.execute(delete(subscriptions).where(subscriptions.c.subscription_id == subscription_id))


def queue_ping(engine: Engine, subscription: Subscription, *, hub_id: str, now: datetime) -> int:
    """Queue a test delivery behind what the subscription already has pending; returns its delivery id."""
    message_id = f"ping_{uuid.uuid4().hex}"
    if subscription.channel == "wecom":
        body = Alert("comment", "waterhub 测试消息", (f"订阅 {subscription.subscription_id} · {subscription.dataset}",))
        text = body.markdown()
    else:
        event = {
            "specversion": "1.0",
            "id": message_id,
            "source": event_source(hub_id),
            "type": PING_EVENT_TYPE,
            "subject": subscription.dataset,
            "time": _utc_text(now),
            "datacontenttype": "application/json",
            "data": {"hub_id": hub_id, "subscription": subscription.subscription_id, "dataset": subscription.dataset},
        }
        text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    with engine.begin() as conn:
        inserted = conn.execute(
            deliveries.insert()
            .values(
                subscription_id=subscription.subscription_id,
                message_id=message_id,
                kind="ping",
                body=text,
                state="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .returning(deliveries.c.id)
        ).scalar_one()
    return int(inserted)


def delivery_log(
    engine: Engine, subscription_id: str, *, limit: int, before: int | None = None
) -> list[DeliveryRecord]:
    """The subscription's deliveries, newest first, ``before`` a delivery id for the next page."""
    query = select(deliveries).where(deliveries.c.subscription_id == subscription_id)
    if before is not None:
        query = query.where(deliveries.c.id < before)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit)).all()
    return [
        DeliveryRecord(
            int(r.id),
            r.message_id,
            r.kind,
            r.first_seq,
            r.last_seq,
            r.state,
            int(r.attempts),
            r.next_attempt_at,
            r.last_attempt_at,
            r.last_status,
            r.last_error,
            r.delivered_at,
            r.created_at,
        )
        for r in rows
    ]
