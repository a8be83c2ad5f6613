"""The README's Operations section and the compose file agree: every Airflow setting the README tells an operator
to set is set by the compose file, and the metadata URLs it sets open with drivers the lock installs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parents[1]


def _airflow_environment() -> dict[str, str]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "infra" / "docker-compose.yml").read_text())
    environment: dict[str, str] = compose["x-airflow"]["environment"]
    return environment


def _readme_airflow_variables() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Operations", 1)[1]
    return set(re.findall(r"^  \| `(AIRFLOW[A-Z_]*)` \|", section, flags=re.MULTILINE))


def test_every_airflow_setting_the_readme_names_is_set_by_the_compose_file() -> None:
    named = _readme_airflow_variables()
    assert {"AIRFLOW_HOME", "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__PARALLELISM"} <= named
    assert sorted(named - set(_airflow_environment())) == []


def test_the_compose_metadata_urls_open_with_drivers_in_the_lock() -> None:
    environment = _airflow_environment()
    sync = make_url(environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("${AIRFLOW_DB_PASSWORD:-airflow}", "pw"))
    async_ = make_url(
        environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].replace("${AIRFLOW_DB_PASSWORD:-airflow}", "pw")
    )
    assert (sync.drivername, async_.drivername) == ("postgresql+psycopg", "postgresql+asyncpg")
    assert sync.set(drivername=async_.drivername) == async_  # one database, two drivers
    for url in (sync, async_):
        url.get_dialect().import_dbapi()  # raises ImportError if the driver is not installed


def test_parallelism_is_bounded_for_a_small_machine() -> None:
    value = _airflow_environment()["AIRFLOW__CORE__PARALLELISM"]
    default = int(re.fullmatch(r"\$\{AIRFLOW_PARALLELISM:-(\d+)\}", value).group(1))  # type: ignore[union-attr]
    assert 1 <= default <= 8
