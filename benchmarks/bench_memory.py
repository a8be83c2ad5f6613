"""Benchmark: peak memory of a full water-quality load (extract, validate, publish) of 150,000 samples.

Goal: the pipeline process peaks below 400 MiB (``peak_rss_mib``, from ``resource.getrusage``, all three steps in
one process), so a year of dynamic data or a day of hydrology runs in flat memory. ``peak_rss_mib_per_task`` runs
each step in a process of its own, as Airflow runs the DAG's tasks. The bureau's simulator serves the samples from
a process of its own (``waterhub simulate sources``), so only the hub's memory is measured; the pipeline runs in
fresh child processes that report their own peaks, with an embedded SQLite hub under a temporary folder. The
baseline in the same run (``idle_rss_mib``) is a child importing the same modules and stopping before the first
request: what the interpreter, pandas, pyarrow and Great Expectations cost before any data arrives.

    .venv/bin/python benchmarks/bench_memory.py --stations 150 --hours 1000
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
from pathlib import Path

KEY = "bench-memory-key"
TASKS = ("validate", "publish")

CHILD = """
import json, resource, sys
from datetime import UTC, datetime
from connectors.water_quality.settings import WaterQualitySourceSettings
from waterhub.pipeline import Pipeline
from waterhub.settings import Settings
base_url, key, data_dir, mode, batch_id = sys.argv[1:6]
if mode == "idle":  # what the validate and publish steps import before they read any data
    import great_expectations, pyarrow.parquet, quality.runner, exchange.publish
settings = Settings(
    data_dir=data_dir,
    water_quality=WaterQualitySourceSettings(base_url=base_url, api_key=key, page_size=2000),
)
pipeline = Pipeline(settings, "water_quality")
now = datetime.now(UTC)
counts = {}
if mode in ("all", "extract"):
    batch_id = pipeline.extract(run_id="bench", interval_end=now, now=now)
if mode in ("all", "validate"):
    counts = pipeline.validate(batch_id, now=now)
if mode in ("all", "publish"):
    pipeline.publish(batch_id, now=now)
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_rss_mib": round(peak_kib / 1024, 1), "counts": counts, "batch_id": batch_id}))
"""
"""One child process: ``idle`` imports and stops, ``all`` runs the three steps, ``extract``/``validate``/``publish``
runs one step on the batch another child extracted, as separate Airflow tasks do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the simulator did not listen on {port} within {timeout_s:.0f} s")


def child(base_url: str, data_dir: Path, mode: str, batch_id: str = "") -> dict[str, object]:
    env = os.environ | {"GX_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(  # noqa: S603 - our own interpreter running our own fixed program
        [sys.executable, "-c", CHILD, base_url, KEY, str(data_dir), mode, batch_id],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=150)
    parser.add_argument("--hours", type=int, default=1000)
    args = parser.parse_args()
    port = free_port()
    waterhub = Path(sys.executable).with_name("waterhub")
    command = [str(waterhub), "simulate", "sources", "--port", str(port), "--api-key", KEY]
    command += ["--stations", str(args.stations), "--hours", str(args.hours)]
    simulator = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        wait_for(port, timeout_s=600)
        base_url = f"http://127.0.0.1:{port}"
        with (
            tempfile.TemporaryDirectory() as idle_dir,
            tempfile.TemporaryDirectory() as load_dir,
            tempfile.TemporaryDirectory() as task_dir,
        ):
            idle = child(base_url, Path(idle_dir), "idle")
            started = time.monotonic()
            load = child(base_url, Path(load_dir), "all")
            elapsed = time.monotonic() - started
            extracted = child(base_url, Path(task_dir), "extract")
            batch_id = str(extracted["batch_id"])
            per_task = {"extract": extracted["peak_rss_mib"]}
            per_task |= {step: child(base_url, Path(task_dir), step, batch_id)["peak_rss_mib"] for step in TASKS}
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)
    peak = float(str(load["peak_rss_mib"]))
    print(
        json.dumps(
            {
                "bench": "memory",
                "samples": args.stations * args.hours,
                "load_s": round(elapsed, 1),
                "peak_rss_mib": peak,
                "idle_rss_mib": idle["peak_rss_mib"],
                "peak_rss_mib_per_task": per_task,
                "counts": load["counts"],
                "goal_mib": 400,
                "met": peak < 400,
            }
        )
    )


if __name__ == "__main__":
    main()
