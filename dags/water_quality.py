"""Water-quality feed of the Ecology and Environment Bureau → `water_quality.stations`, `water_quality.samples`.

Hourly and incremental: samples are read by `updated_at` from the stored watermark, because the bureau re-sends
corrected hours. Every record is checked against its contract and the derived quality suite; failing records go to
quarantine with their reasons, the rest are published in one transaction that also moves the watermark.
Subscribers hear of each real change on `waterhub/datasets/<dataset>/changes`; a Parquet snapshot follows.

Each dataset has an Asset, and a small `changed_<stream>` task after publish is the only task with that Asset as
outlet: it succeeds, and so emits the asset event, only when the run changed the dataset; otherwise it is skipped
(a skipped task emits none), so a DAG scheduled on the Asset does not run every hour for nothing.

Rerunning any task is harmless: publish is an idempotent upsert, the watermark moves only with it, events keep
their ids and snapshots are keyed by sequence number.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, dag, task
from airflow.sdk.exceptions import AirflowSkipException

SOURCE = "water_quality"
STATIONS = Asset(name="water_quality.stations", uri="x-waterhub://datasets/water_quality.stations")
SAMPLES = Asset(name="water_quality.samples", uri="x-waterhub://datasets/water_quality.samples")
DATASETS = (STATIONS, SAMPLES)


@dag(
    dag_id=SOURCE,
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["source", SOURCE],
    doc_md=__doc__,
    default_args={"owner": "data-platform", "retries": 3, "retry_delay": timedelta(minutes=2)},
)
def water_quality() -> None:
    @task
    def extract(*, run_id: str | None = None, data_interval_end: datetime | None = None) -> str:
        from waterhub.pipeline import Pipeline, run_interval_end

        return Pipeline.from_environment(SOURCE).extract(
            run_id=str(run_id), interval_end=run_interval_end(data_interval_end)
        )

    @task
    def validate(batch_id: str) -> str:
        from waterhub.pipeline import Pipeline

        Pipeline.from_environment(SOURCE).validate(batch_id)
        return batch_id

    @task
    def publish(batch_id: str) -> list[str]:
        from waterhub.pipeline import Pipeline

        pipeline = Pipeline.from_environment(SOURCE)
        pipeline.publish(batch_id)
        return pipeline.changed_datasets(batch_id)

    def changed(asset: Asset) -> Callable[..., Any]:
        @task(task_id=f"changed_{asset.name.removeprefix(SOURCE + '.')}", outlets=[asset])
        def emit_if_changed(changed_datasets: list[str]) -> None:
            if asset.name not in changed_datasets:
                raise AirflowSkipException(f"{asset.name} did not change in this run: no asset event")

        return emit_if_changed

    @task
    def notify(batch_id: str) -> dict[str, int]:
        from waterhub.pipeline import Pipeline

        return Pipeline.from_environment(SOURCE).notify(batch_id)

    @task
    def snapshot(batch_id: str) -> dict[str, str]:
        from waterhub.pipeline import Pipeline

        return Pipeline.from_environment(SOURCE).snapshot(batch_id)

    batch_id = validate(extract())
    published = publish(batch_id)
    for asset in DATASETS:
        changed(asset)(published)
    published >> [notify(batch_id), snapshot(batch_id)]


water_quality()
