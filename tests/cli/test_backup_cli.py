"""`waterhub backup` and `waterhub restore` of an embedded hub (SQLite and object folder), as an operator runs them:
the restored hub lists the same dataset with the same rows and last sequence, and holds the same snapshot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from contracts.water_quality import WaterQualitySample
from exchange.db import make_engine
from exchange.objects import LocalObjectStore
from exchange.snapshots import write_snapshot
from exchange.tables import ensure_schema
from tests.exchange.rows import NOW, publish, sample

WATERHUB = str(Path(sys.executable).with_name("waterhub"))


def _waterhub(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("WATERHUB_")}
    return subprocess.run(  # noqa: S603 - the venv's own console script
        [WATERHUB, *args], env=env | {"WATERHUB_DATA_DIR": str(data_dir)}, capture_output=True, text=True, timeout=120
    )


def test_an_embedded_hub_backed_up_and_restored_elsewhere_lists_the_same_data(tmp_path: Path) -> None:
    original, elsewhere, folder = tmp_path / "var", tmp_path / "var2", tmp_path / "backup"
    engine = make_engine(f"sqlite:///{original / 'waterhub.db'}")
    ensure_schema(engine)
    publish(engine, WaterQualitySample, [sample("11000001", hour) for hour in range(4)], run_id="run-1")
    snapshot = write_snapshot(engine, LocalObjectStore(original / "objects"), WaterQualitySample, now=NOW)
    engine.dispose()

    backed_up = _waterhub(original, "backup", str(folder))
    restored = _waterhub(elsewhere, "restore", str(folder))
    listed = _waterhub(elsewhere, "datasets", "--json")

    assert backed_up.returncode == 0, backed_up.stderr
    assert restored.returncode == 0, restored.stderr
    (entry,) = json.loads(listed.stdout)
    assert (entry["key"], entry["rows"], entry["last_seq"]) == (WaterQualitySample.meta.key, 4, 4)
    restored_snapshot = elsewhere / "objects" / snapshot.object_key
    assert restored_snapshot.read_bytes() == (original / "objects" / snapshot.object_key).read_bytes()
    assert _waterhub(elsewhere, "restore", str(folder)).returncode == 1  # never over a live hub
