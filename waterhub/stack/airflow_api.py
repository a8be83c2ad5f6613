"""A small client of Airflow 3's REST API (``/api/v2``), as the stack's test, its benchmark and ``waterhub stack up``
use it: a JWT from the API server's ``/auth/token`` (the simple auth manager's login), then plain JSON calls.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx

__all__ = ["AirflowApi", "AirflowApiError"]

FINISHED = frozenset({"success", "failed"})


class AirflowApiError(RuntimeError):
    """Airflow answered a call with an error, or a run did not finish in time."""


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._login = {"username": username, "password": password}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def __enter__(self) -> AirflowApi:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def health(self) -> dict[str, Any]:
        """``/api/v2/monitor/health``: the metadata database's, scheduler's, DAG processor's status; no token."""
        return self._json(self._http.get("/api/v2/monitor/health"))

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG as Airflow knows it once the DAG processor has parsed it; ``None`` before."""
        answer = self._call("GET", f"/dags/{dag_id}")
        if answer.status_code == httpx.codes.NOT_FOUND:
            return None
        return self._json(answer)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._json(self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": paused}))

    def trigger(self, dag_id: str, logical_date: datetime | None = None) -> str:
        """Create a manual run; returns its run id. A run for ``logical_date`` stands in for the scheduled one of
        that tick (the scheduler makes no second run for a logical date that has one)."""
        body: dict[str, Any] = {"logical_date": None if logical_date is None else logical_date.isoformat(), "conf": {}}
        run_id: str = self._json(self._call("POST", f"/dags/{dag_id}/dagRuns", json=body))["dag_run_id"]
        return run_id

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self._json(self._call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100}))[
            "dag_runs"
        ]
        return runs

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._json(self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))

    def wait_for_run(self, dag_id: str, run_id: str, timeout_s: float) -> dict[str, Any]:
        """The run once it has succeeded or failed; ``AirflowApiError`` if neither within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.dag_run(dag_id, run_id)
            if run["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise AirflowApiError(f"{dag_id} run {run_id} still {run['state']} after {timeout_s} s")
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        instances: list[dict[str, Any]] = self._json(answer)["task_instances"]
        return instances

    def downstream(self, dag_id: str) -> dict[str, list[str]]:
        """Task id → the ids of the tasks right after it."""
        tasks = self._json(self._call("GET", f"/dags/{dag_id}/tasks"))["tasks"]
        return {task["task_id"]: list(task["downstream_task_ids"]) for task in tasks}

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token()}"}
        return self._http.request(method, f"/api/v2{path}", headers=headers, **kwargs)

    def _token(self) -> str:
        if not hasattr(self, "_access_token"):
            self._access_token: str = self._json(self._http.post("/auth/token", json=self._login))["access_token"]
        return self._access_token

    @staticmethod
    def _json(answer: httpx.Response) -> dict[str, Any]:
        if answer.is_error:
            raise AirflowApiError(
                f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text}"
            )
        body: dict[str, Any] = answer.json()
        return body
