"""Benchmark: the official Delta Sharing client's ``load_as_pandas`` of a shared dataset, against reading the same
Parquet files straight from disk into pandas in the same run.

Goal: ``load_as_pandas`` of a 1,000,000-row share runs at least at 0.3 times the speed of reading the Delta table's
own Parquet files locally with pyarrow into pandas (``load_vs_local_ratio``). Both are timed inside the client's
isolated environment (the same pandas and pyarrow), after a warm-up, as the median of ``--repeats``; the client's
time includes its metadata and query requests and the download of every file through signed URLs from
``waterhub serve api`` (one uvicorn worker on loopback). The data is published to PostgreSQL in a fresh schema
(dropped afterwards) and synced to its Delta table with ``sync_dataset``.

    .venv/bin/python benchmarks/bench_sharing.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_api import serve
from bench_publish import synthetic_samples
from rich.console import Console
from rich.table import Table as RichTable
from scratch import scratch_schema

from contracts.water_quality import WaterQualitySample
from exchange.access.departments import seed_departments
from exchange.access.tokens import create_token
from exchange.objects import LocalObjectStore
from exchange.publish import publish_frame
from exchange.sharing.delta import open_shared_table, sync_dataset
from exchange.sharing.profile import write_profile
from exchange.sharing.settings import SharingSettings
from exchange.tables import ensure_schema
from tests.sharing_client import client_python

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime.now(UTC)
KEY = "water_quality.samples"

# Runs in the isolated environment: times both reads, prints one JSON line of medians.
_TIMER = """
import json, statistics, sys, time
import delta_sharing, pyarrow.parquet as pq
url, files, repeats = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
def shared():
    return len(delta_sharing.load_as_pandas(url))
def local():
    return len(pq.read_table(files).to_pandas())
timings = {}
for name, read in (("shared", shared), ("local", local)):
    read()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        rows = read()
        runs.append(time.perf_counter() - started)
    timings[name] = (statistics.median(runs), rows)
print(json.dumps(timings))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get("WATERHUB_BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    console = Console(stderr=True)
    python = client_python()

    engine, _, drop_schema = scratch_schema(args.database_url)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-sharing-"))
    server = None
    try:
        ensure_schema(engine)
        console.print(f"publishing {args.rows:,} samples …")
        with engine.begin() as conn:
            publish_frame(conn, WaterQualitySample, synthetic_samples(args.rows), run_id="bench", now=NOW)
        store = LocalObjectStore(data_dir / "objects")
        console.print("syncing the Delta table …")
        sync_dataset(engine, store, WaterQualitySample, SharingSettings(), now=NOW)
        seed_departments(engine, now=NOW)
        token = create_token(engine, "gz-water", [KEY], expires_at=NOW + timedelta(days=30), now=NOW)
        server = serve(engine.url.render_as_string(hide_password=False), data_dir, args.rows, workers=1)
        profile = data_dir / "bench.share"
        write_profile(
            profile, endpoint=f"{server.base_url}/delta-sharing", token=token.token, expires_at=token.expires_at
        )
        shared_table = open_shared_table(store, KEY)
        if shared_table is None:
            raise SystemExit(f"no Delta table of {KEY} after the sync")
        files = json.dumps(shared_table.file_uris())  # the table's current files, not those OPTIMIZE replaced
        console.print("timing the official client and the local read …")
        done = subprocess.run(  # noqa: S603 - our own script in the client's environment
            [str(python), "-c", _TIMER, f"{profile}#waterhub.water_quality.samples", files, str(args.repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        timings = json.loads(done.stdout.strip().splitlines()[-1])
        (shared_s, shared_rows), (local_s, local_rows) = timings["shared"], timings["local"]
        if shared_rows != args.rows or local_rows != args.rows:
            raise SystemExit(f"read {shared_rows} rows shared and {local_rows} locally, not {args.rows}")

        table = RichTable(title=f"Delta Sharing, {args.rows:,} samples (median of {args.repeats})")
        for column in ("measure", "value"):
            table.add_column(column)
        table.add_row("load_as_pandas over the API", f"{shared_s:.2f} s, {args.rows / shared_s:,.0f} rows/s")
        table.add_row("the same Parquet read locally", f"{local_s:.2f} s, {args.rows / local_s:,.0f} rows/s")
        table.add_row("load_vs_local_ratio (goal ≥ 0.3)", f"{local_s / shared_s:.2f}")
        console.print(table)
        print(
            json.dumps(
                {
                    "bench": "sharing",
                    "rows": args.rows,
                    "load_as_pandas_s": round(shared_s, 3),
                    "load_as_pandas_rows_per_s": round(args.rows / shared_s),
                    "local_parquet_s": round(local_s, 3),
                    "local_parquet_rows_per_s": round(args.rows / local_s),
                    "load_vs_local_ratio": round(local_s / shared_s, 3),
                }
            )
        )
    finally:
        if server is not None:
            server.stop()
        drop_schema()


if __name__ == "__main__":
    main()
