"""``waterhub doctor``: each configured component asked the way the hub uses it, and what to do when it fails.

Every check returns a ``Finding`` rather than raising: an operator wants the whole picture in one go (the database
is down *and* the broker refuses the password), each failure with the setting or command that fixes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from exchange.errors import ExchangeError
from exchange.urls import redacted_url
from waterhub.settings import Settings

__all__ = ["Finding", "diagnose"]

Status = Literal["ok", "fail", "skipped"]


@dataclass(frozen=True)
class Finding:
    component: str
    status: Status
    detail: str
    fix: str = ""


def diagnose(settings: Settings) -> list[Finding]:
    """Every component's finding, in the order a run needs them."""
    checks: list[Callable[[Settings], Finding]] = [_database, _broker, _object_store, _airflow]
    return [check(settings) for check in checks]


def _database(settings: Settings) -> Finding:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from exchange.db import make_engine
    from exchange.schema import alembic_config

    url = settings.resolved_database_url
    shown = redacted_url(url)
    if settings.database_url is None and not (settings.data_dir / "waterhub.db").is_file():
        return Finding(
            "database",
            "fail",
            f"WATERHUB_DATABASE_URL is not set and no embedded hub exists at {settings.data_dir / 'waterhub.db'}",
            "set WATERHUB_DATABASE_URL to the hub's PostgreSQL (or WATERHUB_DATA_DIR to an embedded hub's folder)",
        )
    engine = make_engine(url, connect_args={"connect_timeout": 5} if url.startswith("postgresql") else {})
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            head = ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
    except ExchangeError as exc:
        return Finding("database", "fail", str(exc), getattr(exc, "hint", "") or "start it or fix the URL")
    except Exception as exc:  # noqa: BLE001 - any refusal (a password, a missing database) is a finding to report
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Finding(
            "database",
            "fail",
            f"{shown}: {reason}",
            "check the user, password and database name in WATERHUB_DATABASE_URL",
        )
    finally:
        engine.dispose()
    if current != head:
        return Finding(
            "database",
            "fail",
            f"{shown} is at schema revision {current or '(none)'}, the code at {head}",
            "the first DAG task or write command migrates an older schema to head; a newer one needs the newer code",
        )
    return Finding("database", "ok", f"{shown}, schema at revision {head}")


def _broker(settings: Settings) -> Finding:
    from exchange.notify import MqttNotifier

    embedded = settings.mqtt_url is None
    try:
        with MqttNotifier(settings.resolved_mqtt_url, timeout_s=5) as notifier:
            notifier.connect()
            where = notifier.where
    except (ExchangeError, ValueError) as exc:
        fix = (
            "start `waterhub broker` (embedded default), or set WATERHUB_MQTT_URL to the real broker"
            if embedded
            else "start the broker, or fix host, port, user and password in WATERHUB_MQTT_URL"
        )
        return Finding("broker", "fail", str(exc).split(". ")[0], fix)
    return Finding("broker", "ok", f"MQTT broker at {where}{' (embedded)' if embedded else ''} accepts the hub's login")


def _object_store(settings: Settings) -> Finding:
    """Write, read back and remove a probe object: tasks do all three."""
    from exchange.objects import open_object_store

    shown = redacted_url(settings.resolved_object_store_url)
    key = f"doctor/probe-{uuid.uuid4().hex}"
    try:
        store = open_object_store(settings.resolved_object_store_url, settings.object_store_credentials)
        store.put(key, b"waterhub doctor")
        read = store.get(key)
        store.delete(key)
    except (ExchangeError, OSError, ValueError) as exc:
        fix = getattr(exc, "hint", "") or (
            "start the store or fix WATERHUB_OBJECT_STORE_URL and its keys (WATERHUB_OBJECT_STORE_ACCESS_KEY, "
            "WATERHUB_OBJECT_STORE_SECRET_KEY); a local folder must be writable by this user"
        )
        return Finding("object store", "fail", f"{shown}: {exc}", fix)
    if read != b"waterhub doctor":
        return Finding("object store", "fail", f"{shown}: a probe object read back different bytes", "check the store")
    return Finding("object store", "ok", f"{shown}: write, read and delete work")


def _airflow(settings: Settings) -> Finding:
    """Airflow's own health endpoint: its metadata database, scheduler, triggerer and DAG processor."""
    import httpx

    if settings.airflow_api_url is None:
        return Finding("airflow", "skipped", "WATERHUB_AIRFLOW_API_URL is not set", "set it to check Airflow too")
    url = f"{settings.airflow_api_url.rstrip('/')}/api/v2/monitor/health"
    try:
        answer = httpx.get(url, timeout=5)
        answer.raise_for_status()
        health = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Finding(
            "airflow",
            "fail",
            f"{url}: {type(exc).__name__}: {exc}",
            "start `airflow api-server`, or fix WATERHUB_AIRFLOW_API_URL",
        )
    unhealthy = sorted(
        name for name, part in health.items() if isinstance(part, dict) and part.get("status") not in ("healthy", None)
    )
    if unhealthy:
        return Finding(
            "airflow",
            "fail",
            f"{url}: unhealthy: {', '.join(unhealthy)}",
            "start the components named (`airflow scheduler`, `airflow triggerer`, `airflow dag-processor`)",
        )
    return Finding("airflow", "ok", f"{url}: every component healthy")
