"""infra/docker-compose.yml describes the stack `make stack` starts (waterhub.stack.launcher): the hub's settings it
sets exist, it sets every hub and Airflow variable the launcher sets (but those that only place processes on one
machine), each long-running service has a health check, and two Celery workers with their own names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from waterhub.settings import settings_reference
from waterhub.stack.launcher import Stack
from waterhub.stack.settings import StackSettings

COMPOSE = Path(__file__).resolve().parents[1] / "infra" / "docker-compose.yml"
ONE_MACHINE_ONLY = {
    # Where one machine's processes find each other and their files; containers each have their own host and disk.
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__API__WORKERS",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
}
ONE_SHOT = {"airflow-init", "minio-init"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return Stack(StackSettings(state_dir=tmp_path_factory.mktemp("stack")))


def test_every_hub_variable_the_compose_file_sets_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    known = {name for name, _, _ in settings_reference()}
    set_by_compose = {
        name
        for service in services.values()
        if service.get("image") == "waterhub:local"  # our processes; other images read their own variables
        for name in service.get("environment", {})
        if name.startswith("WATERHUB_")
    }
    assert "WATERHUB_OBJECT_STORE_URL" in set_by_compose
    assert sorted(set_by_compose - known) == []


def test_the_compose_file_sets_what_the_stack_launcher_sets(services: dict[str, dict[str, Any]], stack: Stack) -> None:
    worker = services["airflow-worker-1"]["environment"]
    assert sorted(set(stack.hub_environment()) - set(services["hub-api"]["environment"])) == []
    assert sorted(set(stack.airflow_environment()) - ONE_MACHINE_ONLY - set(worker)) == []
    assert worker["AIRFLOW__CORE__EXECUTOR"] == stack.airflow_environment()["AIRFLOW__CORE__EXECUTOR"]
    assert worker["WATERHUB_OBJECT_STORE_URL"].startswith("s3://")  # workers on other machines share the store


def test_every_long_running_service_has_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    assert sorted(name for name, service in services.items() if "healthcheck" not in service) == sorted(ONE_SHOT)


def test_two_celery_workers_each_with_its_own_name(services: dict[str, dict[str, Any]]) -> None:
    workers = {
        name: service for name, service in services.items() if service.get("command", [])[1:3] == ["celery", "worker"]
    }
    names = {service["command"][service["command"].index("--celery-hostname") + 1] for service in workers.values()}
    assert len(workers) == len(names) == 2
