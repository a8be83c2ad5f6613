"""Commands that only read never create a hub database: they name the one they read, or say none exists and how
to name one. Run as an operator runs them, as child processes, against real PostgreSQL and a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from contracts.water_quality import WaterQualitySample
from exchange.db import make_engine
from exchange.tables import ensure_schema
from tests.exchange.rows import publish, sample

WATERHUB = str(Path(sys.executable).with_name("waterhub"))
READ_ONLY = [["datasets"], ["changes", WaterQualitySample.meta.key], ["departments", "list"], ["tokens", "list"]]


def _waterhub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {name: value for name, value in os.environ.items() if not name.startswith("WATERHUB_")}
    return subprocess.run(  # noqa: S603 - the venv's own console script
        [WATERHUB, *args], env=base | env | {"COLUMNS": "200"}, capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.parametrize("command", READ_ONLY, ids=[" ".join(c) for c in READ_ONLY])
def test_with_no_database_url_and_no_embedded_hub_nothing_is_created_and_the_variable_is_named(
    tmp_path: Path, command: list[str]
) -> None:
    data_dir = tmp_path / "var"

    done = _waterhub({"WATERHUB_DATA_DIR": str(data_dir)}, *command)

    assert done.returncode == 1
    assert f"no embedded hub exists at {data_dir / 'waterhub.db'}" in done.stderr
    assert "WATERHUB_DATABASE_URL" in done.stderr
    assert done.stdout == ""  # no empty table that looks like an answer
    assert not data_dir.exists()


def test_a_database_without_hub_tables_is_named_and_left_empty(pg_schema_url: str) -> None:
    done = _waterhub({"WATERHUB_DATABASE_URL": pg_schema_url}, "datasets")

    assert done.returncode == 1
    assert "holds no hub tables" in done.stderr
    assert "127.0.0.1" in done.stderr
    engine = make_engine(pg_schema_url)
    with engine.connect() as conn:
        assert inspect(conn).get_table_names() == []
    engine.dispose()


def test_the_datasets_table_names_the_database_it_was_read_from(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    engine = make_engine(f"sqlite:///{data_dir / 'waterhub.db'}")
    ensure_schema(engine)
    publish(engine, WaterQualitySample, [sample("11000001", 0)], run_id="run-1")
    engine.dispose()

    done = _waterhub({"WATERHUB_DATA_DIR": str(data_dir), "COLUMNS": "400"}, "datasets")

    assert done.returncode == 0
    assert "hub database:" in done.stdout
    assert f"sqlite:///{data_dir / 'waterhub.db'}" in done.stdout  # the caption may wrap before the URL
    assert "water_quality.samples" in done.stdout
