"""A hub on real PostgreSQL with departments, tokens and published stations; receivers on loopback; a worker on
the test's clock, driven round by round so no test waits for time to pass."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.simulation import AppServer
from contracts.water_quality import WaterQualityStation
from exchange.access.departments import seed_departments
from exchange.access.filters import parse_condition
from exchange.access.tokens import IssuedToken, create_token
from exchange.publish import PublishResult
from exchange.tables import deliveries, ensure_schema, subscriptions
from exchange.webhooks.settings import WebhookSettings
from exchange.webhooks.subscriptions import create_subscription
from exchange.webhooks.worker import DeliveryWorker, RoundResult
from tests.exchange.rows import NOW, publish, station
from tests.exchange.webhooks.receivers import WebhookReceiver, WeComRobot, serve

HUB_ID = "webhook-test"
ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
DISTRICTS = {"44010001": "天河区", "44010002": "天河区", "44010003": "越秀区", "44010004": "海珠区"}


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def hub(pg_engine: Engine) -> Engine:
    ensure_schema(pg_engine)
    seed_departments(pg_engine, now=NOW)
    return pg_engine


@pytest.fixture
def clock() -> Clock:
    return Clock()


def grant(engine: Engine, department: str, datasets: list[str], *, district: str | None = None) -> IssuedToken:
    conditions = [parse_condition(WaterQualityStation, "district", "eq", [district])] if district else []
    return create_token(
        engine, department, datasets, row_filter=conditions, expires_at=NOW + timedelta(days=90), now=NOW
    )


def stations(version: int, codes: list[str] | None = None) -> list[dict[str, object]]:
    """Station rows at ``version`` (their name and updated_at change with it, so each version is a change)."""
    return [
        {
            **station(code, name=f"站点{code[-1]} v{version}"),
            "district": DISTRICTS[code],
            "updated_at": NOW + timedelta(minutes=version),
        }
        for code in (codes or list(DISTRICTS))
    ]


def publish_stations(engine: Engine, version: int, codes: list[str] | None = None) -> PublishResult:
    return publish(engine, WaterQualityStation, stations(version, codes), f"run-{version}")


def subscribe(
    engine: Engine,
    token: IssuedToken,
    url: str,
    *,
    dataset: str = "water_quality.stations",
    channel: str = "webhook",
    prefix: str = "",
) -> tuple[str, str | None]:
    made, secret = create_subscription(
        engine,
        department=token.department,
        token_id=token.token_id,
        dataset=dataset,
        channel=channel,
        url=url,
        wecom_url_prefix=prefix,
        now=NOW,
    )
    return made.subscription_id, secret


def city_hook(engine: Engine, receiver: tuple[WebhookReceiver, AppServer]) -> str:
    """A webhook subscription of gz-water on stations (a token of its own) at the receiver's ``/hooks/city``."""
    state, server = receiver
    token = grant(engine, "gz-water", ["water_quality.stations"])
    subscription_id, secret = subscribe(engine, token, f"{server.base_url}/hooks/city")
    state.secrets["city"] = str(secret)
    return subscription_id


@pytest.fixture
def robot(clock: Clock) -> Iterator[tuple[WeComRobot, AppServer]]:
    """A WeCom group robot on loopback that knows the key ``ROBOT_KEY`` and counts its limits on the test's clock."""
    state = WeComRobot(clock, keys={ROBOT_KEY})
    server = serve(state.app())
    yield state, server
    server.stop()


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, AppServer]]:
    state = WebhookReceiver()
    server = serve(state.app())
    yield state, server
    server.stop()


def make_worker(engine: Engine, clock: Clock, **settings: object) -> DeliveryWorker:
    return DeliveryWorker(
        engine,
        WebhookSettings(**settings),
        HUB_ID,
        clock=clock,
        rng=random.Random(7),
    )


def rounds(
    worker: DeliveryWorker, clock: Clock, count: int, step: Callable[[], None] | None = None
) -> list[RoundResult]:
    """``count`` rounds in one client, calling ``step`` (which moves the clock) after each."""

    async def run() -> list[RoundResult]:
        results = []
        async with worker.client() as client:
            for _ in range(count):
                results.append(await worker.run_once(client))
                if step is not None:
                    step()
        return results

    return asyncio.run(run())


def delivery_rows(engine: Engine, subscription_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries).where(deliveries.c.subscription_id == subscription_id).order_by(deliveries.c.id)
        ).all()
    return [row._asdict() for row in rows]


def subscription_state(engine: Engine, subscription_id: str) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(subscriptions.c.state, subscriptions.c.disabled_reason).where(
                subscriptions.c.subscription_id == subscription_id
            )
        ).one()
    return row.state, row.disabled_reason
