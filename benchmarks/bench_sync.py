"""Benchmark: a source's sync through connector + quality + publish against bare httpx on the same pages, and the
peak memory of a year of dynamic data against one month.

Goals: the hub syncs at least 0.5× the rate of fetching the same pages with bare httpx (``sync_vs_bare_ratio``,
records per second, same run, same simulator: the whole workload, static registers plus the day of hydrology, as
issue 18 words it; each sync's own ratio is ``<source>_sync_vs_bare_ratio``), and a year of dynamic data peaks at no
more than 1.5× the memory of one month (``year_vs_month_memory_ratio``).

Beside the baseline, the floor of any hub: the same bare httpx walk also writing each record once, as it came, into
SQLite (``floor_vs_bare_ratio``): no staging, checks, versions or change log. What the hub spends on a record beyond
that floor is what 0.5× must leave room for; each sync prints microseconds a record for bare, floor and the hub's
extract, validate and publish.

Each entry of ``syncs()`` is one sync measured that way: the provincial river-chief platform's static registers at
Guangzhou scale (1,368 rivers ... 3,120 chiefs, cursor pages), and a day of hydrology (288 five-minute reports from
``--hydrology-stations`` stations, page-numbered pages; Guangdong's 4,000 stations make 1.1 million readings, more
than this benchmark's default machine syncs in a few minutes, so the default is 400 and the figure says so).
Simulators run as processes of their own (``waterhub simulate ...``), so only the hub's time and memory are
measured; each pipeline runs in a fresh child process on an embedded SQLite hub that reports its own peak RSS
(imports and migrations happen before the clock starts: every task process pays them once, whatever the volume).

    .venv/bin/python benchmarks/bench_sync.py --memory-scale 0.05
    .venv/bin/python benchmarks/bench_sync.py --memory-only --memory-scale 1   # the year/month runs alone
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CLIENT_ID, SECRET = "bench-hub", "bench-client-secret"

CHILD = """
import json, resource, sys, time
from datetime import UTC, datetime, timedelta
from waterhub.pipeline import Pipeline
from waterhub.settings import Settings
source, block_json, data_dir = sys.argv[1:4]
settings = Settings(data_dir=data_dir, **{source: json.loads(block_json)})
pipeline = Pipeline(settings, source)
pipeline.engine  # migrations are set-up, not sync; so are the imports every task process pays once
import pyarrow.parquet, quality.gx, quality.runner, exchange.publish  # noqa: E401
quality.gx.load_great_expectations()  # GX's import, and the one collection that puts its objects out of gc's sight
now = datetime.now(UTC)
started = time.perf_counter()
batch_id = pipeline.extract(run_id="bench", interval_end=now, now=now)
extracted = time.perf_counter()
counts = pipeline.validate(batch_id, now=now)
validated = time.perf_counter()
pipeline.publish(batch_id, now=now)
elapsed = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
records = sum(c["valid"] + c["quarantined"] for c in counts.values())
stages = {"extract_s": extracted - started, "validate_s": validated - extracted}
stages["publish_s"] = started + elapsed - validated
print(json.dumps({"seconds": elapsed, "records": records, "peak_rss_mib": round(peak_kib / 1024, 1)} | stages))
"""
"""One sync in a fresh process: extract, validate and publish, timed from the first request to the commit."""

BARE = """
import json, sqlite3, sys, time
import httpx
base_url, paths_json, page_size, token_path, paging, client_id, secret, store_path = sys.argv[1:9]
paths, page_size = json.loads(paths_json), int(page_size)
store = sqlite3.connect(store_path) if store_path else None

tables = {}

def kept(path, rows):
    if store is None or not rows:
        return
    table = "t_" + path.rsplit("/", 1)[-1].replace("-", "_")
    names = list(dict.fromkeys(name for row in rows for name in row))
    known = tables.setdefault(table, [])
    for name in names:
        if name not in known:
            action = "alter table {} add column {}" if known else "create table {} ({})"
            store.execute(action.format(f'"{table}"', f'"{name}"'))
            known.append(name)
    columns = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join("?" for _ in names)
    values = [[cell(row.get(name)) for name in names] for row in rows]
    store.executemany(f'insert into "{table}" ({columns}) values ({marks})', values)

def cell(value):
    return json.dumps(value) if isinstance(value, (dict, list)) else value

started = time.perf_counter()
records = 0
with httpx.Client(base_url=base_url, timeout=60) as client:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    token = client.post(token_path, data=form).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for path in paths:
        cursor, page = None, 1
        while True:
            if paging == "cursor":
                params = {"page_size": page_size} | ({"cursor": cursor} if cursor else {})
                data = client.get(path, params=params, headers=headers).json()["data"]
                records += len(data["records"])
                kept(path, data["records"])
                cursor = data.get("next_cursor")
                if not cursor:
                    break
            else:
                data = client.get(path, params={"page": page, "page_size": page_size}, headers=headers).json()["data"]
                records += len(data["items"])
                kept(path, data["items"])
                if len(data["items"]) < page_size or page * page_size >= data["total"]:
                    break
                page += 1
if store is not None:
    store.commit()
    store.close()
print(json.dumps({"seconds": time.perf_counter() - started, "records": records}))
"""
"""The baseline: the same pages, fetched with bare httpx and counted, nothing checked or stored. Given a file
(``store_path``), the floor of any hub instead: each record also written once, as it came, into a SQLite table of
its path (one ``executemany`` a page, one commit): no staging, checks, versions or change log."""


@dataclass(frozen=True)
class Sync:
    """One source sync to measure: the simulator command that serves it, the paths bare httpx walks, and how."""

    name: str
    source: str
    simulator: tuple[str, ...]
    paths: tuple[str, ...]
    token_path: str
    paging: Literal["cursor", "page"]
    """``cursor``: ``?cursor=`` from ``data.next_cursor``; ``page``: ``?page=`` until a short page or ``data.total``."""
    page_size: int


RIVER_CHIEF_REGISTERS = (
    "rivers",
    "segments",
    "lakes",
    "reservoirs",
    "small-water-bodies",
    "offices",
    "departments",
    "chiefs",
    "segment-chiefs",
)
HYDROLOGY_TABLES = (
    "ST_STBPRP_B",
    "ST_RVFCCH_B",
    "ST_RSVRFCCH_B",
    "ST_RSVRFSR_B",
    "ST_PPTN_R",
    "ST_RIVER_R",
    "ST_RSVR_R",
)
DAY_STEPS = 288
"""Five-minute reports in a day."""


def syncs(hydrology_stations: int) -> tuple[Sync, ...]:
    """The syncs measured against bare httpx: the river-chief static registers at Guangzhou scale, and a day of
    hydrology from ``hydrology_stations`` stations (Guangdong has about 4,000: 1.1 million readings a day)."""
    return (
        Sync(
            "river_chief static registers, Guangzhou scale",
            "river_chief",
            ("river-chief", "--scale", "1", "--days", "0"),
            tuple(f"/api/v1/{path}" for path in RIVER_CHIEF_REGISTERS),
            "/oauth2/token",
            "cursor",
            500,
        ),
        Sync(
            f"hydrology, a day of {hydrology_stations:,} stations",
            "hydrology",
            ("hydrology", "--stations", str(hydrology_stations), "--steps", str(DAY_STEPS)),
            tuple(f"/api/sl323/{table}" for table in HYDROLOGY_TABLES),
            "/oauth/token",
            "page",
            1000,
        ),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env() -> dict[str, str]:
    credentials = {
        f"WATERHUB_{source}__{name}": value
        for source in ("RIVER_CHIEF", "HYDROLOGY")
        for name, value in (("CLIENT_ID", CLIENT_ID), ("CLIENT_SECRET", SECRET))
    }
    return os.environ | {"GX_ANALYTICS_ENABLED": "False"} | credentials


@contextmanager
def simulator(args: tuple[str, ...]) -> Iterator[str]:
    """A simulator in a process of its own; its base URL once it listens. Closing its stdin stops it."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("waterhub")), "simulate", *args, "--port", str(port)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env())  # noqa: S603
    try:
        assert process.stdout is not None  # noqa: S101 - piped just above
        line = process.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"the simulator did not start: {line!r}")
        process.stdout.readline()  # its record counts
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=30)


def _child(code: str, *args: str) -> dict[str, float]:
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=_env()
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def _sync(source: str, base_url: str, page_size: int) -> dict[str, float]:
    block = {"base_url": base_url, "client_id": CLIENT_ID, "client_secret": SECRET, "page_size": page_size}
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as data_dir:
        return _child(CHILD, source, json.dumps(block), data_dir)


def measure_sync(sync: Sync) -> dict[str, float]:
    with simulator(sync.simulator) as base_url:
        paths, size = json.dumps(sync.paths), str(sync.page_size)
        walk = (base_url, paths, size, sync.token_path, sync.paging, CLIENT_ID, SECRET)
        bare = _child(BARE, *walk, "")
        with tempfile.TemporaryDirectory(prefix="bench-floor-") as folder:
            floor = _child(BARE, *walk, str(Path(folder) / "floor.sqlite"))
        hub = _sync(sync.source, base_url, sync.page_size)
    hub_rate, bare_rate = hub["records"] / hub["seconds"], bare["records"] / bare["seconds"]
    floor_rate = floor["records"] / floor["seconds"]
    per_record_us = {
        f"{name}_us_per_record": 1e6 * seconds / hub["records"]
        for name, seconds in (
            ("bare", bare["seconds"]),
            ("floor", floor["seconds"]),
            *((stage, hub[f"{stage}_s"]) for stage in ("extract", "validate", "publish")),
        )
    }
    print(
        f"{sync.name}: {hub['records']:.0f} records in {hub['seconds']:.1f} s ({hub_rate:,.0f}/s, peak "
        f"{hub['peak_rss_mib']:.0f} MiB); bare httpx {bare['records']:.0f} records in {bare['seconds']:.2f} s "
        f"({bare_rate:,.0f}/s): ratio {hub_rate / bare_rate:.2f}; bare httpx storing each record as it came "
        f"{floor_rate:,.0f}/s: ratio {floor_rate / bare_rate:.2f}; µs a record: "
        + ", ".join(f"{name.removesuffix('_us_per_record')} {value:.1f}" for name, value in per_record_us.items())
    )
    return {
        "records": hub["records"],
        "hub_per_s": hub_rate,
        "bare_per_s": bare_rate,
        "floor_per_s": floor_rate,
        "ratio": hub_rate / bare_rate,
        "floor_ratio": floor_rate / bare_rate,
        **per_record_us,
    }


def measure_memory(scale: float, days: int) -> dict[str, float]:
    args = ("river-chief", "--scale", str(scale), "--days", str(days))
    with simulator(args) as base_url:
        figures = _sync("river_chief", base_url, 500)
    print(
        f"river_chief, {days} days of dynamic data at {scale:g}× Guangzhou: {figures['records']:.0f} records in "
        f"{figures['seconds']:.1f} s, peak RSS {figures['peak_rss_mib']:.0f} MiB"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--memory-scale", type=float, default=0.05, help="Share of Guangzhou's volumes for the year/month runs"
    )
    parser.add_argument(
        "--hydrology-stations",
        type=int,
        default=400,
        help="Stations of the day of hydrology (Guangdong: about 4,000; the default is what this machine syncs in a "
        "few minutes)",
    )
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="Only the year/month memory runs, without the syncs against bare httpx (for iterating on memory)",
    )
    options = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    started = time.monotonic()
    result: dict[str, object] = {}
    if not options.memory_only:
        measured = {sync.source: measure_sync(sync) for sync in syncs(options.hydrology_stations)}
        hub_s, bare_s, floor_s = (
            sum(s["records"] / s[rate] for s in measured.values())
            for rate in ("hub_per_s", "bare_per_s", "floor_per_s")
        )
        result |= {
            "sync_vs_bare_ratio": round(bare_s / hub_s, 3),
            "floor_vs_bare_ratio": round(bare_s / floor_s, 3),
            **{f"{name}_sync_vs_bare_ratio": round(s["ratio"], 3) for name, s in measured.items()},
            "syncs": {name: {k: round(v, 3) for k, v in s.items()} for name, s in measured.items()},
            "hydrology_stations": options.hydrology_stations,
        }
    month = measure_memory(options.memory_scale, 30)
    year = measure_memory(options.memory_scale, 365)
    result |= {
        "month_peak_rss_mib": month["peak_rss_mib"],
        "year_peak_rss_mib": year["peak_rss_mib"],
        "year_vs_month_memory_ratio": round(year["peak_rss_mib"] / month["peak_rss_mib"], 3),
        "memory_scale": options.memory_scale,
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
