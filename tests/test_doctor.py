"""`waterhub doctor` against real services (PostgreSQL, Mosquitto, SeaweedFS S3) and deliberately dead ports: each
component is ok when it works as the hub uses it, and a failure names what is wrong and the setting that fixes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import make_url

from exchange.db import make_engine
from exchange.tables import ensure_schema
from tests.seaweed import S3Server
from waterhub.doctor import Finding, diagnose
from waterhub.settings import Settings


def _by_component(findings: list[Finding]) -> dict[str, Finding]:
    return {finding.component: finding for finding in findings}


def test_every_configured_component_that_works_is_ok(
    pg_schema_url: str, mqtt_url: str, s3_server: S3Server, tmp_path: Path
) -> None:
    engine = make_engine(pg_schema_url)
    ensure_schema(engine)
    engine.dispose()
    credentials = s3_server.credentials()
    settings = Settings(
        data_dir=tmp_path,
        database_url=pg_schema_url,
        mqtt_url=mqtt_url,
        object_store_url=s3_server.url(f"doctor-{uuid.uuid4().hex[:12]}", "hub"),
        object_store_access_key=credentials.access_key,
        object_store_secret_key=credentials.secret_key,
    )

    found = _by_component(diagnose(settings))

    assert {name: finding.status for name, finding in found.items()} == {
        "database": "ok",
        "broker": "ok",
        "object store": "ok",
        "airflow": "skipped",
    }
    assert list(s3_server.client().list_objects(settings.resolved_object_store_url.split("/")[2], recursive=True)) == []


def test_dead_ports_and_wrong_keys_fail_each_with_what_to_fix(
    pg_url: str, dead_port: int, s3_server: S3Server, tmp_path: Path
) -> None:
    dead_db = make_url(pg_url).set(port=dead_port, password="S3cretPw").render_as_string(hide_password=False)
    settings = Settings(
        data_dir=tmp_path,
        database_url=dead_db,
        mqtt_url=f"mqtt://127.0.0.1:{dead_port}",
        object_store_url=s3_server.url("doctor-keys", "hub"),
        object_store_access_key=s3_server.credentials().access_key,
        object_store_secret_key=SecretStr("not-the-secret"),
        airflow_api_url=f"http://127.0.0.1:{dead_port}",
    )

    found = _by_component(diagnose(settings))

    assert {finding.status for finding in found.values()} == {"fail"}
    assert "cannot be reached" in found["database"].detail
    assert "WATERHUB_DATABASE_URL" in found["database"].fix
    assert "S3cretPw" not in repr(found)
    assert f"127.0.0.1:{dead_port}" in found["broker"].detail
    assert "WATERHUB_MQTT_URL" in found["broker"].fix
    assert "WATERHUB_OBJECT_STORE_SECRET_KEY" in found["object store"].detail + found["object store"].fix
    assert "WATERHUB_AIRFLOW_API_URL" in found["airflow"].fix


def test_a_database_behind_the_code_and_a_missing_embedded_hub_are_named(pg_schema_url: str, tmp_path: Path) -> None:
    behind = _by_component(diagnose(Settings(data_dir=tmp_path, database_url=pg_schema_url)))["database"]
    missing = _by_component(diagnose(Settings(data_dir=tmp_path)))["database"]

    assert behind.status == missing.status == "fail"
    assert "schema revision (none)" in behind.detail
    assert f"no embedded hub exists at {tmp_path / 'waterhub.db'}" in missing.detail
    assert not (tmp_path / "waterhub.db").exists()


def test_the_command_exits_1_and_reports_every_component(dead_port: int, tmp_path: Path) -> None:
    env = {
        "WATERHUB_DATA_DIR": str(tmp_path),
        "WATERHUB_MQTT_URL": f"mqtt://127.0.0.1:{dead_port}",
        "WATERHUB_OBJECT_STORE_URL": (tmp_path / "objects").as_uri(),
    }
    done = subprocess.run(  # noqa: S603 - the venv's own console script
        [str(Path(sys.executable).with_name("waterhub")), "doctor", "--json"],
        env={k: v for k, v in os.environ.items() if not k.startswith("WATERHUB_")} | env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert done.returncode == 1
    statuses = {finding["component"]: finding["status"] for finding in json.loads(done.stdout)}
    assert statuses == {"database": "fail", "broker": "fail", "object store": "ok", "airflow": "skipped"}
