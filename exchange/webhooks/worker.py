"""``waterhub deliver``: the delivery worker, a process of its own beside the API and the DAGs.

Each round it fans the outbox out to subscribers (``fanout``), claims the deliveries that are due, sends them
over a bounded pool of concurrent HTTP requests, and records every outcome. Delivery is at least once: a
delivery leaves ``pending`` only after its receiver answered 2xx (a WeCom robot: errcode 0), and a worker that
dies mid-send leaves its claims to expire and be sent again, with the same ``webhook-id``.

Order is kept per subscription (one subscription is one dataset): only the oldest pending delivery of a
subscription can be claimed, so a later change never overtakes an earlier one that is failing. Claiming leases
a delivery (``next_attempt_at`` moves past the send's timeout) in one statement with ``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so several workers share the queue without sending one delivery twice at once.

Outcomes: 2xx → delivered; 410 → the subscription is disabled (the receiver said it is gone for good) and the
delivery is dead; anything else (other statuses, timeouts, refused connections) → retried on the schedule of
``exchange.webhooks.schedule``, and dead-lettered when that runs out; the next delivery then goes ahead.

Time: ``clock`` decides what is due and is injected (tests move it); the ``webhook-timestamp`` header is the
real time of the attempt (``wall_clock``), since a receiver checks it against its own clock to refuse replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import aiohttp
import structlog
from sqlalchemy import Connection, Engine, Row, and_, bindparam, exists, select, update

from connectors.http.client import USER_AGENT
from exchange.db import among
from exchange.tables import deliveries, subscriptions
from exchange.webhooks.fanout import fan_out
from exchange.webhooks.schedule import retry_at
from exchange.webhooks.settings import WebhookSettings
from exchange.webhooks.signing import signed_headers
from exchange.webhooks.wecom import MAX_CONTENT_BYTES, SendWindow, markdown_message, pack, read_answer

__all__ = ["Claim", "DeliveryWorker", "Outcome", "RoundResult", "http_client"]

log = structlog.get_logger(__name__)

_WECOM_LOOKAHEAD = 200
_ERROR_CHARS = 500
_LEASE_MARGIN_S = 30.0
_RECORD_EVERY_S = 0.1


@dataclass(frozen=True)
class Claim:
    """One message to send: a webhook delivery, or consecutive WeCom alerts packed into one message."""

    delivery_ids: tuple[int, ...]
    subscription_id: str
    channel: str
    url: str
    secret: str | None
    message_id: str
    body: str
    attempts: int


@dataclass(frozen=True)
class Outcome:
    claim: Claim
    result: Literal["delivered", "failed", "gone", "deferred"]
    status: int | None = None
    error: str | None = None
    hint_s: float | None = None
    not_before: datetime | None = None


@dataclass(frozen=True)
class RoundResult:
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    disabled: int = 0
    deferred: int = 0

    @property
    def idle(self) -> bool:
        return self.queued == 0 and self.delivered + self.failed + self.dead + self.disabled + self.deferred == 0


def http_client(settings: WebhookSettings) -> aiohttp.ClientSession:
    """The pool every send goes through: as many kept-alive connections as sends in flight, the send timeout.

    aiohttp rather than httpx: its C-accelerated HTTP/1.1 costs a fraction of httpx's per request, and a fan-out
    to thousands of subscribers is nothing but requests. Call it inside the running loop.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.concurrency),
        timeout=aiohttp.ClientTimeout(total=settings.timeout_s),
        headers={"User-Agent": USER_AGENT},
        trust_env=True,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeliveryWorker:
    engine: Engine
    settings: WebhookSettings
    hub_id: str
    clock: Callable[[], datetime] = _utc_now
    wall_clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._window = SendWindow(self.settings.wecom_messages_per_minute)

    def client(self) -> aiohttp.ClientSession:
        return http_client(self.settings)

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop`` is set; the round in hand finishes (its sends answered and recorded) first."""
        async with self.client() as client:
            while not stop.is_set():
                result = await self.run_once(client, stop)
                if result.idle:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.poll_interval_s)

    async def run_once(self, client: aiohttp.ClientSession, stop: asyncio.Event | None = None) -> RoundResult:
        """One round: fan out, then claim, send and record batch after batch until nothing is due.

        The three overlap, so neither the database nor the network waits for the other: the next batch is claimed
        while the one in hand is being sent, and outcomes are recorded in chunks while later sends are in flight.
        Once ``stop`` is set no further batch is claimed; every send started is answered and recorded first.
        """
        queued = await asyncio.to_thread(fan_out, self.engine, hub_id=self.hub_id, now=self.clock())
        gate = asyncio.Semaphore(self.settings.concurrency)
        recorder = _Recorder(self._record)

        async def send(claim: Claim) -> None:
            try:
                recorder.add(await self._send(client, claim))
            finally:
                gate.release()

        try:
            async with asyncio.TaskGroup() as sending:
                claims = await asyncio.to_thread(self._claim)
                while claims:
                    more = None if stop and stop.is_set() else asyncio.create_task(asyncio.to_thread(self._claim))
                    for claim in claims:
                        await gate.acquire()
                        sending.create_task(send(claim))
                    claims = await more if more else []
        finally:
            counts = await recorder.close()
        return RoundResult(queued, *counts)

    # --- claiming -------------------------------------------------------------------------------------------

    def _lease_s(self) -> float:
        """How long a claim is kept from other workers: long enough for the two batches a worker holds at once
        (the one being sent and the next) to be sent even if every send runs into its timeout."""
        waves = math.ceil(2 * self.settings.batch_size / self.settings.concurrency)
        return self.settings.timeout_s * waves + _LEASE_MARGIN_S

    def _claim(self) -> list[Claim]:
        now = self.clock()
        lease_until = now + timedelta(seconds=self._lease_s())
        head, earlier = deliveries.alias("head"), deliveries.alias("earlier")
        is_head = ~exists().where(
            earlier.c.subscription_id == head.c.subscription_id, earlier.c.state == "pending", earlier.c.id < head.c.id
        )
        due = (
            select(head.c.id)
            .join(subscriptions, subscriptions.c.subscription_id == head.c.subscription_id)
            .where(head.c.state == "pending", head.c.next_attempt_at <= now, subscriptions.c.state == "active", is_head)
            .order_by(head.c.next_attempt_at, head.c.id)
            .limit(self.settings.batch_size)
            .with_for_update(skip_locked=True, of=head)
        )
        with self.engine.begin() as conn:
            ids = list(conn.scalars(due))
            if not ids:
                return []
            rows = conn.execute(
                select(deliveries, subscriptions.c.channel, subscriptions.c.url, subscriptions.c.secret)
                .join(subscriptions, subscriptions.c.subscription_id == deliveries.c.subscription_id)
                .where(among(conn, deliveries.c.id, ids))
                .order_by(deliveries.c.id)
            ).all()
            claims = [
                self._wecom_claim(conn, row, now)
                if row.channel == "wecom"
                else Claim(
                    (row.id,),
                    row.subscription_id,
                    row.channel,
                    row.url,
                    row.secret,
                    row.message_id,
                    row.body,
                    row.attempts,
                )
                for row in rows
            ]
            leased = [delivery_id for claim in claims for delivery_id in claim.delivery_ids]
            conn.execute(
                update(deliveries).where(among(conn, deliveries.c.id, leased)).values(next_attempt_at=lease_until)
            )
        return claims

    def _wecom_claim(self, conn: Connection, head: Row[Any], now: datetime) -> Claim:
        """The head alert and the due alerts after it that fit in one robot message."""
        subscription_id = head.subscription_id
        following = conn.execute(
            select(deliveries.c.id, deliveries.c.body)
            .where(
                deliveries.c.subscription_id == subscription_id,
                deliveries.c.state == "pending",
                deliveries.c.id > head.id,
                deliveries.c.next_attempt_at <= now,
            )
            .order_by(deliveries.c.id)
            .limit(_WECOM_LOOKAHEAD)
        ).all()
        ids = [head.id, *(row.id for row in following)]
        content, count = pack([head.body, *(row.body for row in following)], MAX_CONTENT_BYTES)
        return Claim(
            tuple(ids[:count]),
            subscription_id,
            "wecom",
            head.url,
            None,
            head.message_id,
            content,
            head.attempts,
        )

    # --- sending --------------------------------------------------------------------------------------------

    async def _send(self, client: aiohttp.ClientSession, claim: Claim) -> Outcome:
        if claim.channel == "wecom":
            return await self._send_wecom(client, claim)
        body = claim.body.encode("utf-8")
        assert claim.secret is not None  # noqa: S101 - every webhook subscription is made with a secret
        headers = signed_headers(claim.secret, claim.message_id, int(self.wall_clock()), body)
        headers["Content-Type"] = "application/cloudevents+json; charset=utf-8"
        try:
            status, retry_after, _ = await _post(client, claim.url, body, headers)
        except _SEND_ERRORS as exc:
            return _unsent(claim, exc)
        if 200 <= status < 300:
            return Outcome(claim, "delivered", status)
        if status == 410:
            return Outcome(claim, "gone", 410, "the receiver answered 410 Gone: subscription disabled")
        return Outcome(claim, "failed", status, f"HTTP {status}", hint_s=_retry_after_s(retry_after))

    async def _send_wecom(self, client: aiohttp.ClientSession, claim: Claim) -> Outcome:
        now = self.clock()
        free_at = self._window.free_at(claim.url, now)
        if free_at is not None:
            return Outcome(claim, "deferred", not_before=free_at)
        self._window.record(claim.url, now)
        try:
            status, _, content = await _post(
                client, claim.url, markdown_message(claim.body), {"Content-Type": "application/json"}
            )
        except _SEND_ERRORS as exc:
            return _unsent(claim, exc)
        robot = read_answer(status, content)
        if robot.outcome == "sent":
            return Outcome(claim, "delivered", 0)
        if robot.outcome == "gone":
            return Outcome(claim, "gone", robot.errcode, robot.detail)
        if robot.outcome == "rate_limited":
            until = self._window.full_until(claim.url, now)
            return Outcome(claim, "failed", robot.errcode, robot.detail, not_before=until)
        return Outcome(claim, "failed", robot.errcode, robot.detail)

    # --- recording ------------------------------------------------------------------------------------------

    def _record(self, outcomes: Sequence[Outcome]) -> tuple[int, int, int, int, int]:
        """Writes outcomes in one transaction; the deliveries that went through (nearly all of them) in one
        statement per status, the rest, each with its own next attempt, in one batch per kind."""
        now = self.clock()
        delivered: dict[tuple[int | None, int], list[int]] = {}
        retried: list[dict[str, object]] = []
        dead: list[dict[str, object]] = []
        deferred: list[dict[str, object]] = []
        gone: set[str] = set()
        for outcome in outcomes:
            claim = outcome.claim
            attempts = claim.attempts + 1
            for delivery_id in claim.delivery_ids:
                base: dict[str, object] = {
                    "d_id": delivery_id,
                    "status": outcome.status,
                    "error": outcome.error,
                    "attempts": attempts,
                }
                if outcome.result == "delivered":
                    delivered.setdefault((outcome.status, attempts), []).append(delivery_id)
                elif outcome.result == "deferred":
                    deferred.append({"d_id": delivery_id, "due": outcome.not_before})
                elif outcome.result == "gone":
                    dead.append(base)
                    gone.add(claim.subscription_id)
                else:
                    again = retry_at(self.settings, attempts, now, self.rng, outcome.hint_s)
                    if again is not None and outcome.not_before is not None:
                        again = max(again, outcome.not_before)
                    (retried if again is not None else dead).append({**base, "due": again})
            if outcome.result in ("failed", "gone"):
                log.warning(
                    "delivery_failed",
                    subscription=claim.subscription_id,
                    message_id=claim.message_id,
                    attempt=attempts,
                    status=outcome.status,
                    error=outcome.error,
                )
        with self.engine.begin() as conn:
            target = deliveries.update().where(deliveries.c.id == bindparam("d_id"))
            common = {
                "attempts": bindparam("attempts"),
                "last_attempt_at": now,
                "last_status": bindparam("status"),
                "last_error": bindparam("error"),
            }
            for (status, attempts), ids in delivered.items():
                conn.execute(
                    update(deliveries)
                    .where(among(conn, deliveries.c.id, ids))
                    .values(
                        state="delivered",
                        attempts=attempts,
                        last_attempt_at=now,
                        last_status=status,
                        last_error=None,
                        delivered_at=now,
                    )
                )
            if retried:
                conn.execute(target.values(**common, next_attempt_at=bindparam("due")), retried)
            if dead:
                conn.execute(target.values(**common, state="dead"), [{**row, "due": None} for row in dead])
            if deferred:
                conn.execute(target.values(next_attempt_at=bindparam("due")), deferred)
            if gone:
                conn.execute(
                    update(subscriptions)
                    .where(and_(subscriptions.c.subscription_id.in_(sorted(gone)), subscriptions.c.state == "active"))
                    .values(
                        state="disabled",
                        disabled_reason="the receiver answered that it is gone (410, or the robot's key is invalid)",
                    )
                )
        return sum(map(len, delivered.values())), len(retried), len(dead), len(gone), len(deferred)


class _Recorder:
    """Records outcomes as they come in, in chunks, while later sends are still in flight: each write takes all
    that arrived during the one before (and at least ``_RECORD_EVERY_S`` of them), so a round of thousands of
    sends is a few dozen transactions rather than one per send or one at the very end."""

    def __init__(self, record: Callable[[Sequence[Outcome]], tuple[int, int, int, int, int]]) -> None:
        self._record = record
        self._waiting: list[Outcome] = []
        self._arrived = asyncio.Event()
        self._closing = False
        self._writing = asyncio.create_task(self._write_all())

    def add(self, outcome: Outcome) -> None:
        self._waiting.append(outcome)
        self._arrived.set()

    async def close(self) -> tuple[int, int, int, int, int]:
        """Waits for what is left to be written; the counts of the whole round."""
        self._closing = True
        self._arrived.set()
        return await self._writing

    async def _write_all(self) -> tuple[int, int, int, int, int]:
        totals = (0, 0, 0, 0, 0)
        while True:
            await self._arrived.wait()
            if not self._closing:
                await asyncio.sleep(_RECORD_EVERY_S)
            self._arrived.clear()
            chunk, self._waiting = self._waiting, []
            if chunk:
                counts = await asyncio.to_thread(self._record, chunk)
                totals = tuple(a + b for a, b in zip(totals, counts, strict=True))  # type: ignore[assignment]
            if self._closing and not self._waiting:
                return totals


_SEND_ERRORS = (aiohttp.ClientError, TimeoutError, ValueError)
"""What a send can raise short of an answer: refused, reset, timed out, an address that is not a URL."""


async def _post(
    client: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str | None, bytes]:
    """POST ``body``; the answer's status, its ``Retry-After`` and its body (read whole, so the connection is kept)."""
    async with client.post(url, data=body, headers=headers, allow_redirects=False) as answer:
        return answer.status, answer.headers.get("Retry-After"), await answer.read()


def _unsent(claim: Claim, exc: BaseException) -> Outcome:
    return Outcome(claim, "failed", error=f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS])


def _retry_after_s(value: str | None) -> float | None:
    value = (value or "").strip()
    return float(value) if value.isdigit() else None
