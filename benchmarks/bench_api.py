"""Benchmark: the consumer API on PostgreSQL, against reading the same rows straight from the database.

Goals: streaming a million samples as NDJSON through ``GET /datasets/{key}/rows`` runs at least at 0.5 times the
speed of reading them with a server-side cursor straight from the database in the same run (``ndjson_vs_db_ratio``),
and ``GET /datasets/{key}/changes`` keeps a p99 of at most 50 ms under 50 concurrent consumers on loopback, each
polling at a bounded pace (``--poll-s``) from its own random sequence (``changes_p99_ms``, and
``changes_p99_goal_ratio`` = 50 ms ÷ p99, ≥ 1 when met).

The API runs as production runs it, ``waterhub serve api --workers N`` (uvicorn, one worker process per core,
``--workers``, default the host's cores) on loopback; the consumers are tasks of one asyncio loop in this process,
each with its own httpx client and connection (``consumers``), so they share neither the server's interpreter
lock nor fifty threads' worth of this process's. Everything lives in a fresh schema that is dropped afterwards.

    .venv/bin/python benchmarks/bench_api.py --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from bench_publish import synthetic_samples
from rich.console import Console
from rich.table import Table as RichTable
from scratch import scratch_schema
from sqlalchemy import Engine, select

from contracts.water_quality import WaterQualitySample
from exchange.access.departments import seed_departments
from exchange.access.tokens import create_token
from exchange.api.settings import ApiSettings
from exchange.publish import publish_frame
from exchange.tables import dataset_table, ensure_schema

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
KEY = "water_quality.samples"


def read_from_database(engine: Engine, chunk_rows: int) -> tuple[int, float]:
    """The baseline: every row of the table in key order, through a server-side cursor, as SQLAlchemy rows."""
    table = dataset_table(WaterQualitySample)
    columns = [table.c[spec.name] for spec in WaterQualitySample.field_specs()]
    key = [table.c[name] for name in WaterQualitySample.meta.primary_key]
    started = time.perf_counter()
    count = 0
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=chunk_rows).execute(select(*columns).order_by(*key))
        for partition in result.partitions():
            count += len(partition)
    return count, time.perf_counter() - started


def read_from_api(base_url: str, token: str, rows: int) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=base_url, headers=headers, timeout=600) as client,
        client.stream("GET", f"/datasets/{KEY}/rows", params={"limit": rows, "format": "ndjson"}) as answer,
    ):
        answer.raise_for_status()
        for chunk in answer.iter_bytes():
            count += chunk.count(b"\n")
    return count, time.perf_counter() - started


def consumers(
    base_url: str, token: str, last_seq: int, *, count: int, poll_s: float, duration_s: float, limit: int
) -> tuple[list[float], list[str]]:
    """``count`` consumers polling /changes, each from its own random sequence every ``poll_s``; latencies in ms.

    They are tasks of one asyncio loop, each with its own client and connection, all made before the clock starts
    (a client's set-up costs tens of milliseconds of this process's CPU, which fifty threads making theirs while
    others are timed counted against the API). Each latency runs from the request's scheduled send time, so a
    send this process started late counts too; a consumer answered later than its next turn sends at once."""
    return asyncio.run(_consume_all(base_url, token, last_seq, count, poll_s, duration_s, limit))


async def _consume_all(
    base_url: str, token: str, last_seq: int, count: int, poll_s: float, duration_s: float, limit: int
) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    clients = [
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30, limits=httpx.Limits(max_connections=1))
        for _ in range(count)
    ]
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop_at = started + duration_s

    async def consume(seed: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed)
        since = rng.randrange(0, max(1, last_seq - limit))
        scheduled = started + rng.random() * poll_s  # spread the consumers over the polling interval
        async with client:
            while scheduled < stop_at:
                await asyncio.sleep(max(0.0, scheduled - loop.time()))
                answer = await client.get(f"/datasets/{KEY}/changes", params={"since": since, "limit": limit})
                elapsed = (loop.time() - scheduled) * 1000
                if answer.status_code == 200:
                    latencies.append(elapsed)
                    since = answer.json().get("next_since", since)
                else:
                    errors.append(f"{answer.status_code}")
                scheduled += poll_s

    await asyncio.gather(*(consume(seed, client) for seed, client in enumerate(clients)))
    return latencies, errors


class Served:
    """``waterhub serve api`` in a child process on a free loopback port."""

    def __init__(self, process: subprocess.Popen[bytes], base_url: str) -> None:
        self.process = process
        self.base_url = base_url

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def serve(database_url: str, data_dir: Path, rows: int, workers: int) -> Served:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "WATERHUB_DATABASE_URL": database_url,
        "WATERHUB_DATA_DIR": str(data_dir),
        "WATERHUB_API__MAX_ROWS_LIMIT": str(rows),
    }
    command = [str(Path(sys.executable).with_name("waterhub")), "serve", "api", "--port", str(port)]
    command += ["--workers", str(workers)]
    process = subprocess.Popen(command, env=env)  # noqa: S603 - our own console script
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180  # each worker imports the hub before it answers
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return Served(process, base_url)
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("waterhub serve api did not become ready within 180 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=50)
    parser.add_argument("--poll-s", type=float, default=1.0, help="Each consumer's pace: one request per this many s")
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--changes-limit", type=int, default=100)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="API worker processes")
    parser.add_argument("--database-url", default=os.environ.get("WATERHUB_BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    console = Console(stderr=True)

    engine, schema, drop_schema = scratch_schema(args.database_url, pool_size=60, max_overflow=10)
    server = None
    try:
        ensure_schema(engine)
        console.print(f"publishing {args.rows:,} samples …")
        with engine.begin() as conn:
            publish_frame(conn, WaterQualitySample, synthetic_samples(args.rows), run_id="bench", now=NOW)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        seed_departments(engine, now=NOW)
        token = create_token(engine, "gz-water", [KEY], expires_at=NOW + timedelta(days=3650), now=NOW).token
        settings = ApiSettings(max_rows_limit=args.rows)
        server = serve(
            engine.url.render_as_string(hide_password=False),
            Path(tempfile.gettempdir()) / schema,
            args.rows,
            args.workers,
        )
        base_url = server.base_url

        read_from_database(engine, settings.stream_chunk_rows)  # warm-up: caches, plans, connections
        read_from_api(base_url, token, min(args.rows, 50_000))
        db_times, api_times = [], []
        for _ in range(args.repeats):
            count, elapsed = read_from_database(engine, settings.stream_chunk_rows)
            if count != args.rows:
                raise SystemExit(f"the database gave {count} rows, not {args.rows}")
            db_times.append(elapsed)
            count, elapsed = read_from_api(base_url, token, args.rows)
            if count != args.rows:
                raise SystemExit(f"the API gave {count} rows, not {args.rows}")
            api_times.append(elapsed)
        db_s, api_s = statistics.median(db_times), statistics.median(api_times)

        latencies, errors = consumers(
            base_url,
            token,
            args.rows,
            count=args.consumers,
            poll_s=args.poll_s,
            duration_s=args.duration_s,
            limit=args.changes_limit,
        )
        ordered = sorted(latencies)
        p50 = ordered[len(ordered) // 2]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

        table = RichTable(title=f"Consumer API, {args.rows:,} samples (median of {args.repeats})")
        for column in ("measure", "value"):
            table.add_column(column)
        table.add_row("NDJSON from the API", f"{api_s:.2f} s, {args.rows / api_s:,.0f} rows/s")
        table.add_row("server-side cursor on the database", f"{db_s:.2f} s, {args.rows / db_s:,.0f} rows/s")
        table.add_row("ndjson_vs_db_ratio (goal ≥ 0.5)", f"{db_s / api_s:.2f}")
        table.add_row(
            f"/changes, {args.consumers} consumers every {args.poll_s} s, limit {args.changes_limit}",
            f"{len(latencies)} answers, {len(errors)} errors, p50 {p50:.1f} ms, p99 {p99:.1f} ms (goal ≤ 50)",
        )
        console.print(table)
        print(
            json.dumps(
                {
                    "bench": "api",
                    "rows": args.rows,
                    "ndjson_s": round(api_s, 3),
                    "ndjson_rows_per_s": round(args.rows / api_s),
                    "db_s": round(db_s, 3),
                    "db_rows_per_s": round(args.rows / db_s),
                    "ndjson_vs_db_ratio": round(db_s / api_s, 3),
                    "api_workers": args.workers,
                    "load_average_1m": round(os.getloadavg()[0], 2),
                    "changes_consumers": args.consumers,
                    "changes_requests": len(latencies),
                    "changes_errors": len(errors),
                    "changes_p50_ms": round(p50, 1),
                    "changes_p99_ms": round(p99, 1),
                    "changes_p99_goal_ratio": round(50 / p99, 3),
                }
            )
        )
    finally:
        if server is not None:
            server.stop()
        drop_schema()


if __name__ == "__main__":
    main()
