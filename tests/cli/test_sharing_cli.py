"""`waterhub tokens create --profile` and `waterhub sharing sync` as an operator runs them, on real PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from contracts.water_quality import WaterQualityStation
from exchange.access.tokens import authenticate
from exchange.db import make_engine
from exchange.objects import LocalObjectStore
from exchange.sharing.delta import open_shared_table
from tests.exchange.rows import publish, station

WATERHUB = str(Path(sys.executable).with_name("waterhub"))


def _waterhub(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "WATERHUB_DATABASE_URL": database_url,
        "WATERHUB_DATA_DIR": str(data_dir),
        "WATERHUB_SHARING__ENDPOINT": "https://hub.example/delta-sharing",
        "COLUMNS": "200",
    }
    return subprocess.run(  # noqa: S603 - the venv's own console script
        [WATERHUB, *args], env=env, capture_output=True, text=True, check=False, timeout=120
    )


def test_a_profile_file_holds_the_endpoint_and_a_working_token(pg_schema_url: str, tmp_path: Path) -> None:
    assert _waterhub(pg_schema_url, tmp_path, "departments", "add", "--builtin").returncode == 0
    profile = tmp_path / "tianhe.share"
    created = _waterhub(
        pg_schema_url, tmp_path,
        "tokens", "create", "--department", "tianhe-water", "--datasets", "water_quality.stations",
        "--expires", "30d", "--profile", str(profile), "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    written = json.loads(profile.read_text())
    assert written["bearerToken"] == json.loads(created.stdout)["token"]
    assert (written["shareCredentialsVersion"], written["endpoint"]) == (1, "https://hub.example/delta-sharing")
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    engine = make_engine(pg_schema_url)
    try:
        with engine.connect() as conn:
            principal = authenticate(conn, written["bearerToken"], now=datetime.now(UTC))
    finally:
        engine.dispose()
    expires = datetime.fromisoformat(written["expirationTime"].replace("Z", "+00:00"))
    issued_until = datetime.fromisoformat(json.loads(created.stdout)["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - issued_until).total_seconds()) < 1  # the token's own expiry, to the second
    assert principal.department == "tianhe-water"


def test_sharing_sync_builds_each_published_datasets_table(pg_schema_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_schema_url)
    try:
        from exchange.tables import ensure_schema

        ensure_schema(engine)
        publish(engine, WaterQualityStation, [station("44010001"), station("44010002")], "run-1")
    finally:
        engine.dispose()
    first = _waterhub(pg_schema_url, tmp_path, "sharing", "sync", "--json")
    unknown = _waterhub(pg_schema_url, tmp_path, "sharing", "sync", "--dataset", "no.such_dataset")
    assert first.returncode == 0, first.stderr
    (result,) = json.loads(first.stdout)
    assert (result["dataset"], result["version"], result["seq"], result["upserted"]) == (
        "water_quality.stations",
        1,
        2,
        2,
    )
    table = open_shared_table(LocalObjectStore(tmp_path / "objects"), "water_quality.stations")
    assert table is not None
    assert sorted(table.to_pyarrow_table().column("station_code").to_pylist()) == ["44010001", "44010002"]
    assert unknown.returncode != 0
    assert "not published: no.such_dataset" in unknown.stderr + unknown.stdout
