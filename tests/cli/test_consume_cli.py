"""`waterhub changes` and `waterhub datasets` against hostile input and a dead database: one line and a hint.

The console script runs as a child process on real PostgreSQL, as an operator runs it; what it prints is compared
with what a person can act on: one error line, one hint line, no SQL, no traceback, no password.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url

from contracts.water_quality import WaterQualitySample
from exchange.db import make_engine
from exchange.tables import ensure_schema
from tests.exchange.rows import publish, sample

WATERHUB = str(Path(sys.executable).with_name("waterhub"))
SAMPLES = WaterQualitySample.meta.key
BIGINT_MAX = 9_223_372_036_854_775_807  # PostgreSQL's BIGINT, written out rather than taken from our code


def _waterhub(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the venv's own console script
        [WATERHUB, *args],
        env=os.environ | {"WATERHUB_DATABASE_URL": database_url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def published_url(pg_schema_url: str) -> str:
    """A hub on PostgreSQL holding one published dataset, so every argument reaches the query it bounds."""
    engine = make_engine(pg_schema_url)
    ensure_schema(engine)
    publish(engine, WaterQualitySample, [sample("11000001", hour) for hour in range(3)], run_id="run-1")
    engine.dispose()
    return pg_schema_url


def _answer_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--since", str(BIGINT_MAX + 1)], "since"),
        (["--since", "-1"], "since"),
        (["--since", "1" + "0" * 400], "since"),
        (["--limit", str(BIGINT_MAX + 1)], "limit"),
        (["--limit", "100001"], "limit"),
        (["--limit", "0"], "limit"),
    ],
    ids=["since-2^63", "since-negative", "since-400-digits", "limit-2^63", "limit-too-many", "limit-zero"],
)
def test_an_argument_beyond_what_the_store_holds_gets_one_line_and_a_hint(
    published_url: str, args: list[str], named: str
) -> None:
    done = _waterhub(published_url, "changes", SAMPLES, *args)

    assert done.returncode == 1
    error, hint = _answer_lines(done)
    assert error.startswith(f"error: {named} must be")
    assert len(error) < 200
    assert hint.startswith("hint: ")
    assert "[SQL:" not in done.stderr
    assert done.stdout == ""


def test_the_largest_sequence_number_and_limit_are_still_answered(published_url: str) -> None:
    done = _waterhub(published_url, "changes", SAMPLES, "--since", str(BIGINT_MAX), "--limit", "100000", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    done = _waterhub(published_url, "changes", SAMPLES, "--since", "1", "--json")
    assert [entry["seq"] for entry in json.loads(done.stdout)] == [2, 3]


def test_a_five_thousand_character_dataset_name_is_not_echoed_whole(published_url: str) -> None:
    name = "x" * 5000
    done = _waterhub(published_url, "changes", name)

    assert done.returncode == 1
    error, _hint = _answer_lines(done)
    assert "x" * 100 in error
    assert "x" * 101 not in done.stderr
    assert SAMPLES in error  # the answer still lists what does exist


def test_a_dead_database_is_named_by_its_redacted_url_with_a_hint(pg_url: str, dead_port: int) -> None:
    dead = make_url(pg_url).set(port=dead_port, password="S3cretPw", database="hub").render_as_string(False)

    for command in (["datasets"], ["changes", SAMPLES]):
        done = _waterhub(dead, *command)
        assert done.returncode == 1
        error, hint = _answer_lines(done)
        assert error.startswith("error: StoreUnavailableError: the hub database at ")
        assert f":***@127.0.0.1:{dead_port}/hub" in error
        assert "WATERHUB_DATABASE_URL" in hint
        assert "S3cretPw" not in done.stderr + done.stdout
        assert "Traceback" not in done.stderr
