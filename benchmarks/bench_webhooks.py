"""Benchmark: one change fanned out to 15,000 webhook subscriptions, against bare httpx posts to the same receiver.

Goal: every one of the 15,000 deliveries of a single change arrives at a local receiver and passes its Standard
Webhooks verification (the ``standardwebhooks`` library) within 60 s of the publish's commit
(``fanout_goal_ratio`` = 60 s ÷ elapsed, ≥ 1 when met). The baseline is the receiver's ceiling in the same run: the
same number of pre-signed posts sent with plain httpx at the same concurrency (``fanout_vs_bare_ratio`` = bare
time ÷ worker time).

The receiver is a bare ASGI app on uvicorn in a process of its own (so it does not share this interpreter's lock);
the worker is ``exchange.webhooks.worker.DeliveryWorker`` as ``waterhub deliver`` runs it, on PostgreSQL in a
fresh schema dropped afterwards.

    .venv/bin/python benchmarks/bench_webhooks.py --subscriptions 15000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvloop
from rich.console import Console
from rich.table import Table as RichTable
from scratch import scratch_schema
from sqlalchemy import select

from contracts.water_quality import WaterQualityStation
from exchange.access.departments import seed_departments
from exchange.access.tokens import create_token
from exchange.publish import publish_frame
from exchange.tables import ensure_schema, subscriptions
from exchange.webhooks.settings import WebhookSettings
from exchange.webhooks.signing import new_secret, signed_headers
from exchange.webhooks.subscriptions import find_subscription, queue_ping
from exchange.webhooks.worker import http_client

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
KEY = "water_quality.stations"


class Receiver:
    """Verifies each POST /hooks/<n> with the library and counts distinct verified webhook-ids per kind."""

    def __init__(self, secrets_by_name: dict[str, str]) -> None:
        from standardwebhooks import Webhook

        self.hooks = {name: Webhook(secret) for name, secret in secrets_by_name.items()}
        self.verified: dict[str, set[tuple[str, str]]] = {"baseline": set(), "ping": set(), "worker": set()}
        self.failed = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] == "GET":
            counts = {kind: len(ids) for kind, ids in self.verified.items()} | {"failed": self.failed}
            await _answer(send, 200, json.dumps(counts).encode())
            return
        name = scope["path"].rsplit("/", 1)[-1]
        headers = {key.decode(): value.decode() for key, value in scope["headers"]}
        try:
            self.hooks[name].verify(body, headers)
        except Exception:  # noqa: BLE001 - any refusal is counted, the benchmark then fails
            self.failed += 1
            await _answer(send, 400, b"")
            return
        message_id = headers["webhook-id"]
        kind = next((kind for kind in ("baseline", "ping") if message_id.startswith(kind)), "worker")
        self.verified[kind].add((name, message_id))
        await _answer(send, 200, b"")


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-length", str(len(body)).encode())]}
    )
    await send({"type": "http.response.body", "body": body})


def serve_receiver(port: int, secrets_path: str) -> None:
    import uvicorn

    receiver = Receiver(json.loads(Path(secrets_path).read_text()))
    uvicorn.run(
        receiver,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stats(base_url: str) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{base_url}/stats", timeout=10).json()
    return counts


def bare_posts(
    base_url: str, secrets_by_name: dict[str, str], body: bytes, concurrency: int, go: Any, ends: Any
) -> None:
    """One baseline process: a pre-signed post per subscription of its share through the worker's own HTTP client,
    ``concurrency`` in flight, from when ``go`` is set; puts the wall time it finished on ``ends``."""
    stamp = int(time.time())
    requests = [
        (f"{base_url}/hooks/{name}", signed_headers(secret, f"baseline-{name}", stamp, body))
        for name, secret in secrets_by_name.items()
    ]

    async def post_all() -> None:
        gate = asyncio.Semaphore(concurrency)
        async with http_client(WebhookSettings(concurrency=concurrency)) as client:

            async def post(url: str, headers: dict[str, str]) -> None:
                async with gate, client.post(url, data=body, headers=headers) as answer:
                    answer.raise_for_status()

            await asyncio.gather(*(post(url, headers) for url, headers in requests))

    ends.put(None)  # ready
    go.wait()
    uvloop.run(post_all())
    ends.put(time.time())


def bare_baseline(base_url: str, secrets_by_name: dict[str, str], processes: int, concurrency: int) -> float:
    """The baseline in as many processes as the worker runs, each with its share: seconds from go to the last."""
    context = multiprocessing.get_context("spawn")
    go, ends = context.Event(), context.Queue()
    body = json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "data": {"pad": "x" * 500}}).encode()
    names = list(secrets_by_name)
    shares = [{name: secrets_by_name[name] for name in names[n::processes]} for n in range(processes)]
    posters = [
        context.Process(target=bare_posts, args=(base_url, share, body, concurrency, go, ends)) for share in shares
    ]
    for poster in posters:
        poster.start()
    for _ in posters:
        ends.get()
    started = time.time()
    go.set()
    finished = max(ends.get() for _ in posters)
    for poster in posters:
        poster.join()
    return float(finished - started)


def start_deliver(database_url: str, processes: int, concurrency: int) -> subprocess.Popen[bytes]:
    """``waterhub deliver --processes N`` on the benchmark's schema, polling every 50 ms."""
    env = os.environ | {
        "WATERHUB_DATABASE_URL": database_url,
        "WATERHUB_HUB_ID": "bench",
        "WATERHUB_WEBHOOKS__CONCURRENCY": str(concurrency),
        "WATERHUB_WEBHOOKS__POLL_INTERVAL_S": "0.05",
    }
    waterhub = Path(sys.executable).with_name("waterhub")
    return subprocess.Popen([str(waterhub), "deliver", "--processes", str(processes)], env=env)  # noqa: S603 - our CLI


def wait_for(base_url: str, kind: str, expected: int, limit_s: float) -> float:
    """Seconds until the receiver has verified ``expected`` deliveries of ``kind`` (or ``limit_s`` passed)."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s and stats(base_url)[kind] < expected:
        time.sleep(0.1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=15_000)
    parser.add_argument("--concurrency", type=int, default=WebhookSettings().concurrency)
    parser.add_argument("--processes", type=int, default=1, help="`waterhub deliver --processes`, and baseline posters")
    parser.add_argument("--limit-s", type=float, default=120.0, help="Give up waiting after this long")
    parser.add_argument("--database-url", default=os.environ.get("WATERHUB_BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    console = Console(stderr=True)

    engine, schema, drop_schema = scratch_schema(args.database_url)
    receiver: multiprocessing.process.BaseProcess | None = None
    deliver: subprocess.Popen[bytes] | None = None
    try:
        ensure_schema(engine)
        seed_departments(engine, now=NOW)
        token = create_token(engine, "gz-water", [KEY], expires_at=NOW + timedelta(days=3650), now=NOW)
        station = {
            "station_code": "44010001",
            "name": "猎德大桥",
            "river": "珠江",
            "district": "天河区",
            "water_body_type": "river",
            "target_class": "III",
            "longitude": 113.33,
            "latitude": 23.11,
            "updated_at": NOW,
        }
        import pandas as pd

        with engine.begin() as conn:  # the dataset exists before anyone subscribes
            publish_frame(conn, WaterQualityStation, pd.DataFrame([station]), run_id="seed", now=NOW)

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        names = [f"s{index:05d}" for index in range(args.subscriptions)]
        secrets_by_name = {name: new_secret() for name in names}
        with engine.begin() as conn:  # setup, not measured: 15,000 subscriptions in one statement
            conn.execute(
                subscriptions.insert(),
                [
                    {
                        "subscription_id": f"sub_{secrets.token_hex(12)}",
                        "department": "gz-water",
                        "token_id": token.token_id,
                        "dataset": KEY,
                        "channel": "webhook",
                        "url": f"{base_url}/hooks/{name}",
                        "secret": secrets_by_name[name],
                        "state": "active",
                        "fed_outbox_id": 1,
                        "created_at": NOW,
                    }
                    for name in names
                ],
            )
        secrets_path = Path(tempfile.gettempdir()) / f"{schema}-secrets.json"
        secrets_path.write_text(json.dumps(secrets_by_name))
        receiver = multiprocessing.get_context("spawn").Process(
            target=serve_receiver, args=(port, str(secrets_path)), daemon=True
        )
        receiver.start()
        deadline = time.monotonic() + 120
        while True:
            try:
                stats(base_url)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the receiver did not start") from None
                time.sleep(0.1)

        console.print(f"baseline: {args.subscriptions:,} pre-signed posts through the worker's HTTP client …")
        bare_s = bare_baseline(base_url, secrets_by_name, args.processes, args.concurrency)

        console.print(f"measured: one change → {args.subscriptions:,} subscriptions through `waterhub deliver` …")
        deliver = start_deliver(engine.url.render_as_string(hide_password=False), args.processes, args.concurrency)
        with engine.connect() as conn:  # the worker is up once it has sent a ping: its start-up is not measured
            first = find_subscription(conn, str(conn.scalar(select(subscriptions.c.subscription_id))), "gz-water")
        assert first is not None  # noqa: S101 - made above
        queue_ping(engine, first, hub_id="bench", now=datetime.now(UTC))
        if wait_for(base_url, "ping", 1, args.limit_s) >= args.limit_s:
            raise SystemExit("`waterhub deliver` did not start")
        with engine.begin() as conn:
            publish_frame(
                conn,
                WaterQualityStation,
                pd.DataFrame([{**station, "name": "猎德大桥（新）", "updated_at": NOW + timedelta(hours=1)}]),
                run_id="change",
                now=NOW + timedelta(hours=1),
            )
        worker_s = wait_for(base_url, "worker", args.subscriptions, args.limit_s)
        counts = stats(base_url)
        all_verified = counts["worker"] == args.subscriptions and counts["failed"] == 0

        table = RichTable(title=f"Webhook fan-out of one change to {args.subscriptions:,} subscriptions")
        for column in ("measure", "value"):
            table.add_column(column)
        table.add_row(
            "delivery worker: publish commit → all verified",
            f"{worker_s:.2f} s, {counts['worker'] / worker_s:,.0f} deliveries/s",
        )
        table.add_row("bare httpx, pre-signed posts", f"{bare_s:.2f} s, {args.subscriptions / bare_s:,.0f} posts/s")
        table.add_row("verified by the receiver", f"{counts['worker']:,} (refused {counts['failed']})")
        table.add_row("fanout_vs_bare_ratio", f"{bare_s / worker_s:.2f}")
        table.add_row("goal: all within 60 s", "met" if all_verified and worker_s <= 60 else "NOT met")
        console.print(table)
        print(
            json.dumps(
                {
                    "bench": "webhooks",
                    "subscriptions": args.subscriptions,
                    "concurrency": args.concurrency,
                    "delivered_verified": counts["worker"],
                    "refused": counts["failed"],
                    "worker_s": round(worker_s, 3),
                    "worker_per_s": round(counts["worker"] / worker_s),
                    "bare_s": round(bare_s, 3),
                    "bare_per_s": round(args.subscriptions / bare_s),
                    "fanout_vs_bare_ratio": round(bare_s / worker_s, 3),
                    "fanout_goal_ratio": round(60 / worker_s, 3),
                }
            )
        )
    finally:
        if deliver is not None:
            deliver.terminate()
            deliver.wait(timeout=60)
        if receiver is not None:
            receiver.terminate()
            receiver.join(timeout=10)
        drop_schema()


if __name__ == "__main__":
    main()
