"""`waterhub departments` and `waterhub tokens` as an operator runs them, on real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exchange.access.tokens import authenticate
from exchange.db import make_engine
from exchange.errors import InvalidTokenError

WATERHUB = str(Path(sys.executable).with_name("waterhub"))


def _waterhub(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the venv's own console script
        [WATERHUB, *args],
        env=os.environ | {"WATERHUB_DATABASE_URL": database_url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_a_token_is_printed_once_and_works_with_its_grant_and_filter(pg_schema_url: str) -> None:
    assert _waterhub(pg_schema_url, "departments", "add", "--builtin").returncode == 0
    listed = json.loads(_waterhub(pg_schema_url, "departments", "list", "--json").stdout)
    created = _waterhub(
        pg_schema_url,
        "tokens", "create", "--department", "tianhe-water", "--datasets", "water_quality.stations",
        "--filter", "district=天河区", "--expires", "30d", "--json",
    )  # fmt: skip
    assert {"code": "tianhe-water", "name": "天河区水务局"} in listed
    token = json.loads(created.stdout)["token"]
    engine = make_engine(pg_schema_url)
    try:
        with engine.connect() as conn:
            principal = authenticate(conn, token, now=datetime.now(UTC))
        listing = _waterhub(pg_schema_url, "tokens", "list", "--json").stdout
        assert token.split("_")[2] not in listing  # the secret is never shown again
        _waterhub(pg_schema_url, "tokens", "revoke", principal.token_id)
        revoked = json.loads(_waterhub(pg_schema_url, "tokens", "list", "--json").stdout)
    finally:
        engine.dispose()
    assert principal.department == "tianhe-water"
    assert json.loads(principal.grants["water_quality.stations"] or "[]") == [
        {"field": "district", "op": "eq", "values": ["天河区"]}
    ]
    assert revoked[0]["revoked_at"] is not None


def test_a_filter_on_a_field_the_dataset_lacks_is_refused_in_one_line(pg_schema_url: str) -> None:
    _waterhub(pg_schema_url, "departments", "add", "--builtin")
    refused = _waterhub(
        pg_schema_url,
        "tokens", "create", "--department", "tianhe-water", "--datasets", "water_quality.samples",
        "--filter", "district=天河区",
    )  # fmt: skip
    unknown = _waterhub(pg_schema_url, "tokens", "create", "--department", "nope", "--datasets", "devices.status")
    assert refused.returncode == 1
    assert "water_quality.samples has no field 'district'" in refused.stderr
    assert unknown.returncode == 1
    assert "no department 'nope'" in unknown.stderr


def test_a_rotated_token_keeps_the_grant_and_the_old_one_works_only_for_its_grace(pg_schema_url: str) -> None:
    _waterhub(pg_schema_url, "departments", "add", "--builtin")
    created = _waterhub(
        pg_schema_url,
        "tokens", "create", "--department", "tianhe-water", "--datasets", "water_quality.stations",
        "--filter", "district=天河区", "--json",
    )  # fmt: skip
    old = json.loads(created.stdout)
    graced = json.loads(_waterhub(pg_schema_url, "tokens", "rotate", old["token_id"], "--grace", "1h", "--json").stdout)
    at_once = _waterhub(pg_schema_url, "tokens", "rotate", graced["token_id"], "--grace", "0m", "--json")
    newest = json.loads(at_once.stdout)
    engine = make_engine(pg_schema_url)
    now = datetime.now(UTC)
    try:
        with engine.connect() as conn:
            principal = authenticate(conn, newest["token"], now=now)
            authenticate(conn, old["token"], now=now)  # still within its hour of grace
            with pytest.raises(InvalidTokenError, match="revoked"):
                authenticate(conn, graced["token"], now=now)
            with pytest.raises(InvalidTokenError):
                authenticate(conn, old["token"], now=now + timedelta(hours=1, minutes=1))
    finally:
        engine.dispose()
    assert (principal.department, list(principal.grants)) == ("tianhe-water", ["water_quality.stations"])
    assert json.loads(principal.grants["water_quality.stations"] or "[]") == [
        {"field": "district", "op": "eq", "values": ["天河区"]}
    ]
