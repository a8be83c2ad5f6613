"""``waterhub stack up|down``: start the production-like stack on this machine from the project's environment, and
stop exactly what was started.

Up creates Airflow's and the hub's databases on the configured PostgreSQL if they are missing, starts SeaweedFS
(S3, keys enforced) and the live water-quality simulator, migrates Airflow's metadata, starts the API server,
scheduler, DAG processor and the Celery workers, waits until each answers, then unpauses the configured DAGs. The
keys it needs (Airflow's JWT secret and admin password, the object store's keys, the simulator's API key) are made
once and kept in ``<state_dir>/secrets.json``; ``<state_dir>/hub.env`` holds the hub's settings for the ``waterhub``
commands (``set -a; . var/stack/hub.env``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property, partial
from pathlib import Path

import httpx
from minio import Minio
from sqlalchemy import create_engine, make_url, text

from waterhub.stack.airflow_api import AirflowApi
from waterhub.stack.processes import ProcessTable
from waterhub.stack.settings import StackSettings
from waterhub.stack.weed import wait_until_answering, weed_command
from waterhub.stack.worker import WORKER_VARIABLE

__all__ = ["ADMIN", "BUCKET", "Stack", "StackError", "StackSecrets"]

BIN = Path(sys.executable).parent
DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
ADMIN = "admin"
BUCKET = "waterhub"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


class StackError(RuntimeError):
    """The stack could not start (or is running already); the message says what to look at."""


@dataclass(frozen=True)
class StackSecrets:
    jwt_secret: str
    admin_password: str
    s3_access_key: str
    s3_secret_key: str
    source_api_key: str

    @classmethod
    def kept_in(cls, path: Path) -> StackSecrets:
        """The stack's keys from ``path``, made (and written, owner-readable only) the first time."""
        if path.exists():
            return cls(**json.loads(path.read_text()))
        made = cls(*(secrets.token_urlsafe(24) for _ in range(5)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(made)))
        return made


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.processes = ProcessTable(self.state_dir)

    @cached_property
    def secrets(self) -> StackSecrets:
        return StackSecrets.kept_in(self.state_dir / "secrets.json")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.settings.s3_port}"

    def database_url(self, database: str) -> str:
        url = make_url(self.settings.postgres_url.get_secret_value()).set(database=database)
        return url.render_as_string(hide_password=False)

    def api(self) -> AirflowApi:
        return AirflowApi(self.api_url, ADMIN, self.secrets.admin_password)

    def s3_client(self) -> Minio:
        return Minio(
            self.s3_endpoint.removeprefix("http://"),
            access_key=self.secrets.s3_access_key,
            secret_key=self.secrets.s3_secret_key,
            secure=False,
        )

    def hub_environment(self) -> dict[str, str]:
        """The hub's settings for every task (and for ``waterhub`` commands against this stack)."""
        return {
            "WATERHUB_DATA_DIR": str(self.state_dir / "hub"),
            "WATERHUB_DATABASE_URL": self.database_url(self.settings.hub_database),
            "WATERHUB_MQTT_URL": self.settings.mqtt_url.get_secret_value(),
            "WATERHUB_OBJECT_STORE_URL": f"s3://{BUCKET}/hub?endpoint={self.s3_endpoint}",
            "WATERHUB_OBJECT_STORE_ACCESS_KEY": self.secrets.s3_access_key,
            "WATERHUB_OBJECT_STORE_SECRET_KEY": self.secrets.s3_secret_key,
            "WATERHUB_WATER_QUALITY__BASE_URL": f"http://127.0.0.1:{self.settings.simulator_port}",
            "WATERHUB_WATER_QUALITY__API_KEY": self.secrets.source_api_key,
            "WATERHUB_AIRFLOW_API_URL": self.api_url,
        }

    def airflow_environment(self) -> dict[str, str]:
        """Airflow's configuration: CeleryExecutor on Redis, metadata on PostgreSQL, sized for a small machine."""
        home = self.state_dir / "airflow"
        metadata = make_url(self.database_url(self.settings.airflow_database))
        return {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.settings.parallelism),
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.settings.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": self.secrets.jwt_secret,
            # Airflow 3 opens its metadata twice: psycopg 3 for the sync URL, asyncpg for the async one.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.render_as_string(hide_password=False),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata.set(drivername="postgresql+asyncpg").render_as_string(
                hide_password=False
            ),
            "AIRFLOW__CELERY__BROKER_URL": f"{self.settings.redis_url.rstrip('/')}/{self.settings.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata.render_as_string(hide_password=False)}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.settings.worker_concurrency),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.settings.queue,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "GX_ANALYTICS_ENABLED": "False",
        }

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.hub_environment(), **self.airflow_environment()}

    def up(self) -> None:
        """Start everything, wait until it answers; on any failure stop what was started and raise."""
        if running := self.processes.running():
            raise StackError(f"the stack in {self.state_dir} is running already ({', '.join(running)}): stop it first")
        try:
            self._start()
        except BaseException:
            self.down()
            raise

    def down(self) -> list[str]:
        """Stop every process this stack started; returns the services that were running."""
        return self.processes.stop_all()

    def _start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.create_database(self.settings.airflow_database)
        self.create_database(self.settings.hub_database)
        self._migrate_hub()
        env = self.environment()
        weed = self.processes.start(
            "weed",
            weed_command(
                self.state_dir / "s3",
                s3_port=self.settings.s3_port,
                access_key=self.secrets.s3_access_key,
                secret_key=self.secrets.s3_secret_key,
            ),
            env,
        )
        port = str(self.settings.simulator_port)
        simulator = [str(BIN / "waterhub"), "simulate", "sources", "--live", "--host", "127.0.0.1", "--port", port]
        self.processes.start("simulator", [*simulator, "--api-key", self.secrets.source_api_key], env)
        self._write_admin_password()
        self._migrate_airflow(env)
        airflow = str(BIN / "airflow")
        self.processes.start("api-server", [airflow, "api-server"], env)
        self.processes.start("scheduler", [airflow, "scheduler"], env)
        self.processes.start("dag-processor", [airflow, "dag-processor"], env)
        for number in range(1, self.settings.workers + 1):
            name = f"worker-{number}"
            worker_env = env | {
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.settings.worker_log_port + number - 1),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "waterhub.stack.worker.worker_hostname",
                WORKER_VARIABLE: name,
            }
            concurrency = str(self.settings.worker_concurrency)
            command = [airflow, "celery", "worker", "--queues", self.settings.queue, "--concurrency", concurrency]
            command += ["--celery-hostname", f"{name}@%h"]
            self.processes.start(name, command, worker_env)
        deadline = time.monotonic() + self.settings.start_timeout_s
        wait_until_answering(self.s3_client(), weed.poll, self.processes.log_path("weed"), self._left(deadline))
        self._wait("simulator", deadline, self._simulator_answers)
        self._wait("api-server", deadline, self._airflow_healthy)
        for number in range(1, self.settings.workers + 1):
            self._wait(f"worker-{number}", deadline, partial(self._worker_ready, number))
        self._unpause(deadline)
        hub_env = self.state_dir / "hub.env"
        hub_env.touch(mode=0o600)  # it holds the object store's keys
        hub_env.write_text("".join(f"{name}={value}\n" for name, value in self.hub_environment().items()))

    def drop_databases(self) -> None:
        """Drop the stack's two databases (a stopped throwaway stack's: a test's, a benchmark's)."""
        self.drop_database(self.settings.airflow_database)
        self.drop_database(self.settings.hub_database)

    def create_database(self, database: str) -> None:
        self._admin_sql(database, "select 1 from pg_database where datname = :d", 'create database "{}"')

    def drop_database(self, database: str) -> None:
        self._admin_sql(database, None, 'drop database if exists "{}" with (force)')

    def _admin_sql(self, database: str, unless: str | None, statement: str) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
            raise StackError(f"{database!r} is not a database name the stack makes (a-z, 0-9, _)")
        engine = create_engine(self.settings.postgres_url.get_secret_value(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                if unless is None or conn.execute(text(unless), {"d": database}).first() is None:
                    conn.execute(text(statement.format(database)))
        finally:
            engine.dispose()

    def _migrate_hub(self) -> None:
        """The hub's schema to head now (a first task would do it too), so `waterhub doctor` finds it ready."""
        from exchange.db import make_engine
        from exchange.tables import ensure_schema

        engine = make_engine(self.database_url(self.settings.hub_database))
        try:
            ensure_schema(engine)
        finally:
            engine.dispose()

    def _write_admin_password(self) -> None:
        """The simple auth manager keeps its users' passwords in a file it fills in itself; the stack writes its own
        admin password there first, so the API can be called without reading Airflow's log."""
        passwords = self.state_dir / "airflow" / "passwords.json"
        passwords.parent.mkdir(parents=True, exist_ok=True)
        passwords.touch(mode=0o600)
        passwords.write_text(json.dumps({ADMIN: self.secrets.admin_password}) + "\n")

    def _migrate_airflow(self, env: dict[str, str]) -> None:
        log_path = self.processes.log_path("airflow-db-migrate")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            done = subprocess.run(  # noqa: S603 - the venv's own airflow with fixed arguments
                [str(BIN / "airflow"), "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT, check=False
            )
        if done.returncode != 0:
            raise StackError(f"`airflow db migrate` failed (exit {done.returncode}): see {log_path}")

    def _simulator_answers(self) -> bool:
        httpx.get(f"http://127.0.0.1:{self.settings.simulator_port}/", timeout=2)
        return True

    def _airflow_healthy(self) -> bool:
        with self.api() as api:
            health = api.health()
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    def _worker_ready(self, number: int) -> bool:
        return f"worker-{number}@" in (log := self.processes.log_path(f"worker-{number}").read_text()) and (
            " ready." in log
        )

    def _unpause(self, deadline: float) -> None:
        """Unpause the configured DAGs once the DAG processor has parsed them (a new DAG starts paused)."""
        with self.api() as api:
            for dag_id in self.settings.unpaused_dags():
                self._wait(f"DAG {dag_id} to be parsed", deadline, partial(_parsed, api, dag_id))
                api.set_paused(dag_id, False)

    def _wait(self, what: str, deadline: float, ready: Callable[[], bool]) -> None:
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            stopped = set(self._services()) - set(self.processes.running())
            if stopped:
                logs = ", ".join(str(self.processes.log_path(name)) for name in sorted(stopped))
                raise StackError(f"{', '.join(sorted(stopped))} exited while waiting for {what}: see {logs}")
            try:
                if ready():
                    return
            except Exception as exc:  # noqa: BLE001 - anything but ready means "not yet"
                last_error = exc
            time.sleep(0.5)
        raise StackError(
            f"{what} not ready within {self.settings.start_timeout_s} s ({last_error}); logs in "
            f"{self.processes.log_dir}"
        )

    def _services(self) -> list[str]:
        workers = [f"worker-{number}" for number in range(1, self.settings.workers + 1)]
        return ["weed", "simulator", "api-server", "scheduler", "dag-processor", *workers]

    @staticmethod
    def _left(deadline: float) -> float:
        return max(1.0, deadline - time.monotonic())


def _parsed(api: AirflowApi, dag_id: str) -> bool:
    return api.dag(dag_id) is not None
