"""Airflow for the DAG tests: a throwaway AIRFLOW_HOME, set before anything imports airflow."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of an isolated Airflow: its own home and SQLite metadata database, our DAG folder."""
    from waterhub.local_airflow import LocalAirflow

    local = LocalAirflow(home=tmp_path_factory.mktemp("airflow-home"), dags_folder=DAGS_FOLDER)
    env = local.environment()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield env


@pytest.fixture(scope="session")
def dagbag(airflow_env: dict[str, str]) -> Any:
    """Every DAG in ``dags/``, parsed the way the dag processor parses them (import path of Airflow 3.3): with the
    bundle's folder on ``sys.path``, so a DAG file can import the shared builder next to it."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(DAGS_FOLDER), bundle_path=DAGS_FOLDER)
