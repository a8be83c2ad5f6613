"""Benchmark: publishing water-quality samples into PostgreSQL, against a plain COPY of the same rows.

Goals: a first publish (hash, compare, upsert, one change-log entry per row, outbox, dataset row) runs at least at
0.4 times the speed of a bare COPY into a table of the same shape (``publish_vs_copy_ratio``), and republishing
the unchanged frame is at least 3 times faster than the first publish (``republish_speedup_ratio``).

The baseline COPY uses the same serialisation (Arrow CSV) as the publish fast path and loads into a table with
the dataset table's columns and primary key, so the ratio measures what publish adds, not a slower encoder.
Everything runs in a fresh schema that is dropped afterwards. Each phase is warmed up on a smaller frame; at the
default million rows each phase is then measured ``--repeats`` times (default 1) and the median reported.

    .venv/bin/python benchmarks/bench_publish.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import Engine, text

from contracts.water_quality import WaterQualitySample
from exchange.db import make_engine
from exchange.pg_copy import copy_kind, copy_rows
from exchange.publish import PublishResult, publish_frame
from exchange.tables import dataset_table, ensure_schema

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
FACTORS = (
    "ph",
    "dissolved_oxygen",
    "water_temperature",
    "conductivity",
    "permanganate_index",
    "ammonia_nitrogen",
    "total_phosphorus",
    "total_nitrogen",
    "turbidity",
)
BASELINE_TABLE = "bench_copy_baseline"


def synthetic_samples(rows: int, seed: int = 7) -> pd.DataFrame:
    """Hourly samples of 500 stations: realistic value ranges, a few missing factors and non-N flags."""
    rng = np.random.default_rng(seed)
    stations = 500
    index = np.arange(rows)
    codes = np.array([f"{32010000 + number:08d}" for number in range(stations)], dtype=object)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    sampled = start + (index // stations).astype("timedelta64[h]")
    frame: dict[str, Any] = {
        "station_code": pd.array(codes[index % stations], dtype="str"),
        "sampled_at": pd.Series(sampled).dt.tz_localize("UTC"),
        "updated_at": pd.Series(sampled + np.timedelta64(20, "m")).dt.tz_localize("UTC"),
    }
    scales = {"ph": 7.5, "water_temperature": 18.0, "conductivity": 450.0, "turbidity": 12.0}
    flags = np.array(["N", "N", "N", "N", "N", "N", "N", "N", "M", "D"], dtype=object)
    for factor in FACTORS:
        values = np.round(rng.gamma(4.0, scales.get(factor, 1.0) / 4.0, rows), 3)
        values[rng.random(rows) < 0.02] = np.nan
        frame[factor] = values
        flag = flags[rng.integers(0, len(flags), rows)]
        flag[np.isnan(values)] = None
        frame[f"{factor}_flag"] = pd.array(flag, dtype="str")
        status = np.where(flag == "N", "valid", "invalid").astype(object)  # README: status follows the flag
        status[np.isnan(values)] = None
        frame[f"{factor}_status"] = pd.array(status, dtype="str")
    names = [spec.name for spec in WaterQualitySample.field_specs()]
    return pd.DataFrame(frame)[names]


def copy_baseline(engine: Engine, frame: pd.DataFrame, *, binary: bool = True) -> float:
    """Seconds to COPY the frame (plus the three bookkeeping columns) into an empty table of the same shape.

    ``binary`` uses the same encoder as publish's fast path (the fair baseline); otherwise Arrow writes CSV, the
    usual way to COPY a DataFrame, shown for reference.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = dataset_table(WaterQualitySample)
    columns: dict[str, object] = {name: frame[name] for name in frame.columns}
    columns |= {"_hash": np.arange(len(frame), dtype=np.int64), "_seq": np.arange(1, len(frame) + 1), "_run_id": "b"}
    started = time.perf_counter()
    with engine.begin() as conn:
        driver: Any = conn.connection.driver_connection
        with driver.cursor() as cursor:
            if binary:
                kinds = [(name, copy_kind(table.c[name].type)) for name in columns]
                copy_rows(cursor, BASELINE_TABLE, kinds, columns, len(frame))
            else:
                names = ", ".join(f'"{name}"' for name in columns)
                full = frame.assign(_hash=columns["_hash"], _seq=columns["_seq"], _run_id="b")
                buffer = pa.BufferOutputStream()
                pacsv.write_csv(
                    pa.Table.from_pandas(full, preserve_index=False), buffer, pacsv.WriteOptions(include_header=False)
                )
                with cursor.copy(f"COPY {BASELINE_TABLE} ({names}) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(buffer.getvalue())
    return time.perf_counter() - started


def publish_once(engine: Engine, frame: pd.DataFrame, run_id: str) -> tuple[float, PublishResult]:
    started = time.perf_counter()
    with engine.begin() as conn:
        result = publish_frame(conn, WaterQualitySample, frame, run_id=run_id, now=NOW)
    return time.perf_counter() - started, result


def reset(engine: Engine) -> None:
    table = dataset_table(WaterQualitySample).name
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {table}, change_log, outbox, datasets, {BASELINE_TABLE}"))


def measure(engine: Engine, frame: pd.DataFrame, repeats: int, warmup: pd.DataFrame) -> dict[str, list[float]]:
    """Warm every phase on a smaller frame, then run the baselines, publish and republish ``repeats`` times.

    Each baseline and each first publish starts from empty tables; the republish follows its first publish.
    """
    times: dict[str, list[float]] = {"csv_copy": [], "copy": [], "publish": [], "republish": []}
    for data, record in ((warmup, False), *((frame, True) for _ in range(repeats))):
        reset(engine)
        csv_s = copy_baseline(engine, data, binary=False)
        reset(engine)
        copy_s = copy_baseline(engine, data)
        reset(engine)
        publish_s, first = publish_once(engine, data, "bench-1")
        republish_s, again = publish_once(engine, data, "bench-2")
        if first.inserted != len(data) or again.changed != 0:
            raise SystemExit(f"publish did not behave: first {first.counts()}, republish {again.counts()}")
        if record:
            for name, seconds in zip(times, (csv_s, copy_s, publish_s, republish_s), strict=True):
                times[name].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1, help="measured runs per phase (median reported)")
    parser.add_argument("--warmup-rows", type=int, default=50_000)
    args = parser.parse_args()
    url = os.environ.get("WATERHUB_BENCH_DATABASE_URL", DEFAULT_URL)
    console = Console()

    frame = synthetic_samples(args.rows)
    warmup = synthetic_samples(min(args.warmup_rows, args.rows), seed=11)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        ensure_schema(engine)
        with engine.begin() as conn:
            table = dataset_table(WaterQualitySample).name
            conn.execute(text(f"CREATE TABLE {BASELINE_TABLE} (LIKE {table} INCLUDING ALL)"))
        results = measure(engine, frame, args.repeats, warmup)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    csv_s, copy_s, publish_s, republish_s = (statistics.median(results[name]) for name in results)
    rows = args.rows
    figures = {
        "bench": "publish",
        "rows": rows,
        "repeats": args.repeats,
        "copy_s": round(copy_s, 3),
        "csv_copy_s": round(csv_s, 3),
        "publish_s": round(publish_s, 3),
        "republish_s": round(republish_s, 3),
        "baseline_rows_per_s": round(rows / copy_s),
        "csv_baseline_rows_per_s": round(rows / csv_s),
        "rows_per_s": round(rows / publish_s),
        "republish_rows_per_s": round(rows / republish_s),
        "publish_vs_copy_ratio": round(copy_s / publish_s, 3),
        "publish_vs_csv_copy_ratio": round(csv_s / publish_s, 3),
        "republish_speedup_ratio": round(publish_s / republish_s, 2),
    }
    table_out = RichTable(title=f"publish_frame vs COPY, {rows:,} rows, PostgreSQL, median of {args.repeats}")
    for column in ("phase", "seconds", "rows/s", "goal"):
        table_out.add_column(column)
    table_out.add_row("COPY baseline (binary, same encoder)", f"{copy_s:.2f}", f"{rows / copy_s:,.0f}", "")
    table_out.add_row("COPY via Arrow CSV (reference)", f"{csv_s:.2f}", f"{rows / csv_s:,.0f}", "")
    table_out.add_row(
        "first publish", f"{publish_s:.2f}", f"{rows / publish_s:,.0f}", f"≥ 0.4 × COPY: {copy_s / publish_s:.2f}"
    )
    table_out.add_row(
        "republish (unchanged)",
        f"{republish_s:.2f}",
        f"{rows / republish_s:,.0f}",
        f"≥ 3 × faster: {publish_s / republish_s:.1f}",
    )
    console.print(table_out)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
