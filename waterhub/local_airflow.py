"""A throwaway Airflow on this machine: its own home and SQLite metadata database, our ``dags/`` folder.

`make demo` and the DAG tests run DAGs through Airflow itself (``airflow dags test``, which is ``dag.test()``), in a
child process so Airflow reads its configuration from this environment and nothing of it leaks into ours.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AirflowRunError", "LocalAirflow"]

_FINISHED_RUN = re.compile(r"DagRun Finished: dag_id=[^,]+, logical_date=[^,]+, run_id=(?P<run_id>[^,]+),")


class AirflowRunError(RuntimeError):
    """Airflow could not migrate its database or the DAG run failed; the message carries the log's tail."""


@dataclass(frozen=True)
class LocalAirflow:
    home: Path
    dags_folder: Path

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables that point Airflow at this home; ``extra`` adds the hub's own settings for the tasks."""
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "GX_ANALYTICS_ENABLED": "False",
            **(extra or {}),
        }

    def migrate(self, log_path: Path) -> None:
        """Create or upgrade the metadata database (``airflow db migrate`` is idempotent)."""
        self._airflow(["db", "migrate"], log_path=log_path, extra=None)

    def test_dag(self, dag_id: str, *, log_path: Path, extra: Mapping[str, str] | None = None) -> str:
        """Run one DAG run to the end (tasks in Airflow's process, as ``dag.test()`` does); returns its run id."""
        output = self._airflow(["dags", "test", dag_id], log_path=log_path, extra=extra)
        found = _FINISHED_RUN.search(output)
        if found is None:
            raise AirflowRunError(f"`airflow dags test {dag_id}` finished without naming its run; log {log_path}")
        return found.group("run_id")

    def _airflow(self, args: list[str], *, log_path: Path, extra: Mapping[str, str] | None) -> str:
        self.home.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [str(Path(sys.executable).with_name("airflow")), *args]
        with log_path.open("w") as log:
            done = subprocess.run(  # noqa: S603 - the venv's own airflow with fixed arguments
                command, env=os.environ | self.environment(extra), stdout=log, stderr=subprocess.STDOUT, check=False
            )
        output = log_path.read_text(errors="replace")
        if done.returncode != 0:
            tail = "\n".join(output.splitlines()[-40:])
            raise AirflowRunError(
                f"`airflow {' '.join(args)}` failed (exit {done.returncode}); log {log_path}:\n{tail}"
            )
        return output
