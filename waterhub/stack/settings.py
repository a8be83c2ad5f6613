"""The production-like stack's settings block (``WATERHUB_STACK__*``): where ``waterhub stack up`` puts each service.

Every port, database name and the Redis database number is a setting, so two stacks on one machine (a developer's
and CI's) never clash; the hub's database is another database than Airflow's metadata, on the same server.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["StackSettings"]

_Port = Field(ge=1, le=65535)


class StackSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    state_dir: Path = Field(
        Path("var/stack"),
        description="Folder of the stack's pid files, logs, generated secrets, Airflow home and object-store data",
    )
    postgres_url: SecretStr = Field(
        SecretStr("postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
        description="SQLAlchemy URL of a PostgreSQL role that may create databases; the stack's own databases "
        "are made on the same server",
    )
    airflow_database: str = Field(
        "waterhub_stack_airflow", pattern=r"^[a-z_][a-z0-9_]*$", description="Airflow's metadata database"
    )
    hub_database: str = Field("waterhub_stack_hub", pattern=r"^[a-z_][a-z0-9_]*$", description="The hub's database")
    redis_url: str = Field("redis://127.0.0.1:6379", description="Redis server used as the Celery broker")
    redis_db: int = Field(5, ge=0, le=15, description="Redis database number of the Celery broker")
    queue: str = Field(
        "waterhub",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Celery queue the scheduler sends tasks to, and the workers read",
    )
    mqtt_url: SecretStr = Field(
        SecretStr("mqtt://127.0.0.1:1883"), description="Broker the DAGs' notify tasks publish change events to"
    )
    api_port: int = Field(28080, ge=1, le=65535, description="Port of Airflow's API server (UI and /api/v2)")
    s3_port: int = Field(28333, ge=1, le=65535, description="Port of the S3 gateway of the stack's object store")
    simulator_port: int = Field(28765, ge=1, le=65535, description="Port of the live water-quality simulator")
    worker_log_port: int = Field(
        28793, ge=1, le=65500, description="Log-server port of the first Celery worker; worker N uses this + N - 1"
    )
    workers: int = Field(2, ge=1, le=8, description="Celery workers started")
    worker_concurrency: int = Field(
        1,
        ge=1,
        le=32,
        description="Task processes per Celery worker (two workers of one: one per core of a small machine)",
    )
    parallelism: int = Field(4, ge=1, le=64, description="Task instances the scheduler runs at once, all workers")
    unpause: str = Field(
        "water_quality,water_quality_class",
        description="DAGs unpaused once parsed (comma-separated): they then follow their schedule or Assets",
    )
    start_timeout_s: float = Field(240.0, gt=0, description="Longest wait for every service to answer")

    @classmethod
    def isolated(cls, state_dir: Path, **values: Any) -> StackSettings:
        """A stack that clashes with no other on this machine (a test's, a benchmark's): free ports, its own
        databases and Celery queue, state under ``state_dir``; ``values`` set the rest."""
        from waterhub.stack.weed import free_ports

        api_port, s3_port, simulator_port, log_port = free_ports(4)
        suffix = uuid.uuid4().hex[:10]
        return cls(
            state_dir=state_dir,
            airflow_database=f"stack_airflow_{suffix}",
            hub_database=f"stack_hub_{suffix}",
            queue=f"stack-{suffix}",
            api_port=api_port,
            s3_port=s3_port,
            simulator_port=simulator_port,
            worker_log_port=log_port,
            **values,
        )

    def unpaused_dags(self) -> list[str]:
        return [dag_id.strip() for dag_id in self.unpause.split(",") if dag_id.strip()]

    def resolved_state_dir(self) -> Path:
        return self.state_dir.resolve()
