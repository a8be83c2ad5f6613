"""Benchmark: the contract-derived quality suite on a batch, against per-row pydantic validation of the same rows.

Goal: the suite (coercion to contract types plus every Great Expectations check, run on the whole DataFrame)
validates at least 1,000,000 rows/s and at least 10 times faster than validating each record with the contract's
pydantic model (``speedup_ratio``). The batch is what the samples stream hands to quality: Beijing-time text,
factor values, HJ 212 flags per analyser and units, with about 1% bad records of every kind the simulator plants.
Quality judges each factor apart (a bad value is withheld, the record published), so a row the suite flags is one
it quarantined or withheld a factor of; every row pydantic refuses must be among them (the baseline has no unit,
duplicate or reference checks), which the script verifies before it reports. Each repeat runs the suite and
then the baseline, so a slow spell of a shared machine hits both; the ratio is the median of the repeats' ratios.

    .venv/bin/python benchmarks/bench_quality.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from contracts.water_quality import FACTOR_CODES, WaterQualitySample
from quality.runner import validate_frame

STATIONS = 500
BAD_SHARE = 0.01
UNITS = {name: WaterQualitySample.field_spec(name).unit for name in FACTOR_CODES.values()}
RANGES = {  # (low, high, decimals): realistic spread, at the precision stations report (HJ 212 data formats)
    "ph": (6.5, 8.5, 2),
    "dissolved_oxygen": (3.0, 11.0, 2),
    "water_temperature": (12.0, 31.0, 1),
    "conductivity": (150.0, 900.0, 1),
    "permanganate_index": (1.0, 8.0, 1),
    "ammonia_nitrogen": (0.05, 1.8, 3),
    "total_phosphorus": (0.01, 0.4, 3),
    "total_nitrogen": (0.3, 3.0, 2),
    "turbidity": (2.0, 120.0, 1),
}
_T = TypeVar("_T")
BAD_KINDS = (
    "ph_out_of_range",
    "negative",
    "unknown_station",
    "missing_time",
    "duplicate",
    "not_finite",
    "micrograms",
    "wrong_unit",
)


def station_codes() -> list[str]:
    return [f"{44010000 + number:08d}" for number in range(STATIONS)]


def synthetic_batch(rows: int, seed: int = 7) -> pd.DataFrame:
    """Hourly samples of 500 stations as the stream's post_process emits them, about 1% bad (all kinds)."""
    rng = np.random.default_rng(seed)
    index = np.arange(rows)
    codes = np.array(station_codes(), dtype=object)[index % STATIONS]
    hours = np.datetime64("2026-01-01T00:00:00", "s") + (index // STATIONS).astype("timedelta64[h]")
    beijing = hours + np.timedelta64(8, "h")
    updated = beijing + np.timedelta64(1, "h") + rng.integers(60, 600, rows).astype("timedelta64[s]")
    columns: dict[str, object] = {
        "station_code": codes,
        "sampled_at": np.char.replace(np.datetime_as_string(beijing, unit="s").astype(str), "T", " ").astype(object),
        "updated_at": np.char.replace(np.datetime_as_string(updated, unit="s").astype(str), "T", " ").astype(object),
    }
    for name, (low, high, decimals) in RANGES.items():
        columns[name] = rng.uniform(low, high, rows).round(decimals)
        columns[f"{name}_flag"] = np.where(rng.random(rows) < 0.03, "M", "N").astype(object)  # per analyser
        columns[f"{name}_unit"] = np.full(rows, UNITS[name], dtype=object)
    frame = pd.DataFrame(columns)
    bad = np.flatnonzero(rng.random(rows) < BAD_SHARE)
    bad = bad[bad > 0]
    kinds = np.array(BAD_KINDS)[rng.integers(0, len(BAD_KINDS), len(bad))]
    _plant(frame, bad, kinds)
    return frame


def _plant(frame: pd.DataFrame, rows: np.ndarray, kinds: np.ndarray) -> None:
    def at(kind: str) -> np.ndarray:
        chosen: np.ndarray = rows[kinds == kind]
        return chosen

    frame.loc[at("ph_out_of_range"), "ph"] = 15.2
    frame.loc[at("negative"), "ammonia_nitrogen"] = -0.12
    frame.loc[at("unknown_station"), "station_code"] = "99999999"
    frame.loc[at("missing_time"), "sampled_at"] = None
    duplicates = at("duplicate")
    frame.iloc[duplicates] = frame.iloc[duplicates - 1].to_numpy()  # a resent copy of the previous record
    frame["permanganate_index"] = frame["permanganate_index"].astype(object)
    frame.loc[at("not_finite"), "permanganate_index"] = "NaN"
    # µg/L is converted, not refused: a small reading, so that ×1000 stays within the contract's bound for the
    # baseline, which knows no units.
    micrograms = at("micrograms")
    frame.loc[micrograms, "ammonia_nitrogen"] = (np.linspace(0.03, 0.095, len(micrograms)) * 1000).round(1)
    frame.loc[micrograms, "ammonia_nitrogen_unit"] = "µg/L"
    frame.loc[at("wrong_unit"), "ammonia_nitrogen_unit"] = "NTU"


def run_suite(frame: pd.DataFrame) -> set[int]:
    """Rows quarantined, or published with a factor withheld."""
    outcome = validate_frame(WaterQualitySample, frame, known_references={"water_quality.stations": station_codes()})
    return set(outcome.quarantined) | set(outcome.withheld)


def run_pydantic(records: list[dict[str, object]]) -> set[int]:
    bad = set()
    for position, record in enumerate(records):
        try:
            WaterQualitySample.model_validate(record)
        except ValueError:
            bad.add(position)
    return bad


def timed(function: Callable[[_T], set[int]], argument: _T) -> tuple[float, set[int]]:
    start = time.perf_counter()
    result = function(argument)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--repeats", type=int, default=3, help="pairs of runs (suite, then baseline); medians are reported"
    )
    args = parser.parse_args()
    console = Console(stderr=True)

    frame = synthetic_batch(args.rows)
    warm_up = synthetic_batch(10_000, seed=1)
    run_suite(warm_up)  # GX import, context, suite construction
    run_pydantic(warm_up.to_dict("records"))
    suite_runs, pydantic_runs, ratios = [], [], []
    suite_bad: set[int] = set()
    pydantic_bad: set[int] = set()
    for _ in range(args.repeats):
        suite_run, suite_bad = timed(run_suite, frame)
        records = frame.to_dict("records")  # not timed: the baseline gets its input ready-made too
        pydantic_run, pydantic_bad = timed(run_pydantic, records)
        del records  # a million dicts would slow the garbage collector in the next suite run
        suite_runs.append(suite_run)
        pydantic_runs.append(pydantic_run)
        ratios.append(pydantic_run / suite_run)
    if not pydantic_bad <= suite_bad:
        raise SystemExit(f"the suite passed {len(pydantic_bad - suite_bad)} rows pydantic refuses: not comparable")
    suite_s, pydantic_s = statistics.median(suite_runs), statistics.median(pydantic_runs)

    figures = {
        "bench": "quality",
        "rows": args.rows,
        "quarantined_or_withheld": len(suite_bad),
        "pydantic_refused": len(pydantic_bad),
        "suite_s": round(suite_s, 3),
        "pydantic_s": round(pydantic_s, 3),
        "rows_per_s": round(args.rows / suite_s),
        "baseline_rows_per_s": round(args.rows / pydantic_s),
        "speedup_ratio": round(statistics.median(ratios), 2),
        "goal_rows_per_s": 1_000_000,
        "goal_speedup_ratio": 10.0,
    }
    table = Table(title=f"Quality: {args.rows:,} samples, {len(suite_bad):,} quarantined or with a factor withheld")
    for column in ("path", "seconds", "rows/s"):
        table.add_column(column)
    table.add_row("contract suite (GX, vectorized)", f"{suite_s:.3f}", f"{figures['rows_per_s']:,}")
    table.add_row("per-row pydantic (baseline)", f"{pydantic_s:.3f}", f"{figures['baseline_rows_per_s']:,}")
    console.print(table)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
