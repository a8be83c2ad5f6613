"""The one builder of every source DAG (extract → validate → publish → one `changed_<stream>` task per dataset, then
notify and snapshot side by side, and any `after_publish` step the source declares, such as the river-chief
platform's `push_to_province`, beside them) and of every derived DAG (publish → one `changed_<output>` task per
output, then notify and snapshot).

A source's `extract` is a short-circuit task: when it finds nothing new it closes the run itself
(`Pipeline.close_if_nothing_new`: the batch recorded as published, so the source stays fresh; a waiting outbox
sent; staging removed), runs the source's `after_publish` steps, and returns None, so Airflow skips every later
task without starting a process for it. An hourly run of a quiet source is then one task.

A DAG file calls `source_dag("<name>", __doc__)` and nothing else. What differs between sources (schedule, owner,
streams and the datasets they publish) comes from `waterhub/sources.toml`, read here by path with `tomllib`: the
dag processor parses these files every few seconds, and importing our packages (GX, pandas, SQLAlchemy behind
them) at parse time is what the DAG-integrity test forbids. `importlib.util.find_spec` locates the installed
`waterhub` package without running it, so a checkout and an installed hub read the same file.

Each dataset has an Asset, and a small `changed_<stream>` task after publish is the only task with that Asset as
outlet: it succeeds, and so emits the asset event, only when the run changed the dataset; otherwise it is skipped
(a skipped task emits none), so a DAG scheduled on the Asset does not run every hour for nothing.

A derived DAG (`derived_dag("<name>", __doc__)`, declared in `waterhub/derived.toml`) is scheduled on its inputs'
Assets, any of them: it runs when a run changed one of its inputs, never on a clock. Its `publish` task derives and
publishes in one transaction (`waterhub.derived.Derivation`).
"""

from __future__ import annotations

import importlib.util
import tomllib
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetAny, dag, task
from airflow.sdk.exceptions import AirflowSkipException

__all__ = ["dataset_asset", "derived_dag", "source_dag"]

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def _declaration(name: str, file: str = "sources.toml") -> dict[str, Any]:
    spec = importlib.util.find_spec("waterhub")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the waterhub package is not installed where Airflow runs")
    table = tomllib.loads((Path(spec.submodule_search_locations[0]) / file).read_text(encoding="utf-8"))
    if name not in table:
        raise KeyError(f"no entry {name!r} in waterhub/{file}; declared: {', '.join(table)}")
    declaration: dict[str, Any] = table[name]
    return declaration


def dataset_asset(dataset: str) -> Asset:
    """The Asset of a published dataset: its name is the dataset key (STYLE rule 13)."""
    return Asset(name=dataset, uri=f"x-waterhub://datasets/{dataset}")


def _dag_arguments(name: str, declaration: dict[str, Any], doc_md: str | None, kind: str) -> dict[str, Any]:
    """What every DAG of ours shares: one run at a time, no catch-up, the declared owner and title, retries."""
    return {
        "dag_id": name,
        "start_date": START,
        "catchup": False,
        "max_active_runs": 1,
        "tags": [kind, name],
        "doc_md": doc_md,
        "description": declaration["title"],
        "default_args": {"owner": declaration["owner"], "retries": 3, "retry_delay": timedelta(minutes=2)},
    }


def _changed(short_name: str, dataset: str) -> Callable[..., Any]:
    """The one task with ``dataset``'s Asset as outlet: skipped (no asset event) unless the run changed it."""

    @task(task_id=f"changed_{short_name}", outlets=[dataset_asset(dataset)])
    def emit_if_changed(changed_datasets: list[str]) -> None:
        if dataset not in changed_datasets:
            raise AirflowSkipException(f"{dataset} did not change in this run: no asset event")

    return emit_if_changed


def source_dag(name: str, doc_md: str | None) -> DAG:
    """The DAG of source `name` as `sources.toml` declares it; `doc_md` is the DAG file's own docstring."""
    declaration = _declaration(name)
    streams: dict[str, str] = declaration["streams"]
    after_publish_steps: list[str] = list(declaration.get("after_publish", {}))

    @dag(schedule=declaration["schedule"], **_dag_arguments(name, declaration, doc_md, "source"))
    def source() -> None:
        @task.short_circuit
        def extract(*, run_id: str | None = None, data_interval_end: datetime | None = None) -> str | None:
            from waterhub.openlineage import declare_lineage, source_endpoints
            from waterhub.pipeline import Pipeline, run_interval_end

            if run_id is None:
                raise ValueError(f"{name}: extract ran without a run id; run it from a DAG run")
            pipeline = Pipeline.from_environment(name)
            declare_lineage(inputs=source_endpoints(pipeline.source))
            batch_id = pipeline.extract(run_id=run_id, interval_end=run_interval_end(data_interval_end))
            if not pipeline.close_if_nothing_new(batch_id):
                return batch_id
            if after_publish_steps:  # they run every run: a report that failed is sent again with nothing new
                from waterhub.sources import source_declaration

                for task_id in after_publish_steps:
                    source_declaration(name).after_publish_step(task_id)(pipeline)
            return None  # nothing new: every later task is skipped

        @task
        def validate(batch_id: str) -> str:
            from waterhub.pipeline import Pipeline

            Pipeline.from_environment(name).validate(batch_id)
            return batch_id

        @task
        def publish(batch_id: str) -> list[str]:
            from waterhub.openlineage import declare_lineage, published_datasets, source_endpoints
            from waterhub.pipeline import Pipeline

            pipeline = Pipeline.from_environment(name)
            declare_lineage(
                inputs=source_endpoints(pipeline.source),
                outputs=published_datasets(pipeline.settings.hub_id, streams.values()),
            )
            pipeline.publish(batch_id)
            return pipeline.changed_datasets(batch_id)

        @task
        def notify(batch_id: str) -> dict[str, int]:
            from waterhub.pipeline import Pipeline

            return Pipeline.from_environment(name).notify(batch_id)

        @task
        def snapshot(batch_id: str) -> dict[str, str]:
            from waterhub.pipeline import Pipeline

            return Pipeline.from_environment(name).snapshot(batch_id)

        def after_publish(task_id: str) -> Callable[..., Any]:
            @task(task_id=task_id)
            def run_step(batch_id: str) -> dict[str, int]:
                from waterhub.pipeline import Pipeline
                from waterhub.sources import source_declaration

                step = source_declaration(name).after_publish_step(task_id)
                return step(Pipeline.from_environment(name))

            return run_step

        # Airflow's `@task` typing asks for a task's runtime argument (the batch id) where a DAG body passes the XComArg
        # that will carry it.
        batch_id = validate(extract())  # type: ignore[arg-type]
        published = publish(batch_id)  # type: ignore[arg-type]
        for stream, dataset in streams.items():
            _changed(stream, dataset)(published)
        published >> [notify(batch_id), snapshot(batch_id)]  # type: ignore[arg-type]
        for task_id in after_publish_steps:
            published >> after_publish(task_id)(batch_id)

    built: DAG = source()
    return built


def derived_dag(name: str, doc_md: str | None) -> DAG:
    """The DAG of derived dataset `name` as `derived.toml` declares it, run by any change of one of its inputs."""
    declaration = _declaration(name, "derived.toml")
    outputs: dict[str, str] = declaration["outputs"]
    inputs = AssetAny(*(dataset_asset(dataset) for dataset in declaration["inputs"]))

    @dag(schedule=inputs, **_dag_arguments(name, declaration, doc_md, "derived"))
    def derived() -> None:
        @task
        def publish(*, run_id: str | None = None) -> list[str]:
            from waterhub.derived import Derivation
            from waterhub.openlineage import declare_lineage, published_datasets

            if run_id is None:
                raise ValueError(f"{name}: publish ran without a run id; run it from a DAG run")
            derivation = Derivation.from_environment(name)
            hub_id = derivation.settings.hub_id
            declare_lineage(
                inputs=published_datasets(hub_id, declaration["inputs"]),
                outputs=published_datasets(hub_id, outputs.values()),
            )
            return derivation.publish(run_id=run_id)

        @task
        def notify() -> dict[str, int]:
            from waterhub.derived import Derivation

            return Derivation.from_environment(name).notify()

        @task
        def snapshot() -> dict[str, str]:
            from waterhub.derived import Derivation

            return Derivation.from_environment(name).snapshot()

        published = publish()
        for short_name, dataset in outputs.items():
            _changed(short_name, dataset)(published)
        published >> [notify(), snapshot()]

    built: DAG = derived()
    return built
