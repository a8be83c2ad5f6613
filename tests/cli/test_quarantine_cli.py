"""`waterhub quarantine list|show|replay` as an operator runs it, against a hub on real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.water_quality import WaterQualitySimulator
from exchange.db import make_engine
from exchange.objects import LocalObjectStore
from exchange.quarantine import quarantine_records
from exchange.staging import BatchStaging
from exchange.tables import ensure_schema
from tests.exchange.rows import NOW

WATERHUB = str(Path(sys.executable).with_name("waterhub"))
SAMPLES = "water_quality.samples"


def _waterhub(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"WATERHUB_DATABASE_URL": database_url, "WATERHUB_DATA_DIR": str(tmp_path / "var"), "COLUMNS": "200"}
    return subprocess.run(  # noqa: S603 - the venv's own console script
        [WATERHUB, *args], env=os.environ | env, capture_output=True, text=True, check=False, timeout=120
    )


@pytest.fixture
def held(pg_schema_url: str, tmp_path: Path) -> dict[str, object]:
    """A hub whose water-quality run quarantined a sample of a station nobody listed, and whose gateway
    quarantined an undecodable frame: the raw record is what the simulator sent for it."""
    truth = WaterQualitySimulator(seed=5, api_key="k", stations=3, hours=6).truth
    record = next(record for record, reason in truth.bad_samples() if reason == "unknown_station")
    engine = make_engine(pg_schema_url)
    ensure_schema(engine)
    staging = BatchStaging(engine, LocalObjectStore(tmp_path / "objects"))
    batch = staging.open(source="water_quality", run_id="run-1", interval_end=NOW, now=NOW)
    with engine.begin() as conn:
        quarantine_records(
            conn,
            dataset=SAMPLES,
            contract_version="2.0.0",
            run_id="run-1",
            batch_id=batch.batch_id,
            entries=[(["unknown_station"], record)],
            now=NOW,
        )
        quarantine_records(
            conn,
            dataset="devices.sl651",
            contract_version="-",
            run_id="gateway-1",
            batch_id="gateway-1",
            entries=[(["bad_checksum"], {"topic": "waterhub/devices/sl651/0012345678/up", "hex": "7e7e00"})],
            now=NOW,
        )
    engine.dispose()
    return record


def test_list_and_show_tell_why_a_record_is_held_and_what_was_sent(
    pg_schema_url: str, tmp_path: Path, held: dict[str, object]
) -> None:
    listed = json.loads(_waterhub(pg_schema_url, tmp_path, "quarantine", "list", "--json").stdout)
    by_reason = json.loads(
        _waterhub(pg_schema_url, tmp_path, "quarantine", "list", "--reason", "unknown_station", "--json").stdout
    )
    shown = _waterhub(pg_schema_url, tmp_path, "quarantine", "show", str(by_reason[0]["id"]))

    assert sorted(record["dataset"] for record in listed) == ["devices.sl651", SAMPLES]
    assert [record["reasons"] for record in by_reason] == [["unknown_station"]]
    assert json.loads(by_reason[0]["payload"]) == held
    assert shown.returncode == 0
    assert "unknown_station" in shown.stdout
    assert str(held["station_code"]) in shown.stdout


def test_a_replay_of_a_record_still_refused_holds_it_again_and_device_frames_are_not_replayed(
    pg_schema_url: str, tmp_path: Path, held: dict[str, object]
) -> None:
    replayed = _waterhub(pg_schema_url, tmp_path, "quarantine", "replay", SAMPLES, "--json")
    devices = _waterhub(pg_schema_url, tmp_path, "quarantine", "replay", "devices.sl651")
    after = json.loads(_waterhub(pg_schema_url, tmp_path, "quarantine", "list", "--json").stdout)

    assert replayed.returncode == 0, replayed.stderr
    summary = json.loads(replayed.stdout)
    assert (summary["replayed"], summary["quarantined_again"], summary["inserted"]) == (1, 1, 0)
    assert summary["reasons"] == {"unknown_station": 1}
    assert devices.returncode == 1
    assert "raw device frames" in devices.stderr
    assert sorted(record["dataset"] for record in after) == ["devices.sl651", SAMPLES]
    assert [json.loads(record["payload"]) for record in after if record["dataset"] == SAMPLES] == [held]
