"""`make demo`: the whole path on embedded defaults, driven by Airflow, watched by a subscriber.

It starts the bureau's simulator and (unless WATERHUB_MQTT_URL names a broker) the embedded broker in this process,
subscribes to every dataset's change topic, runs the `water_quality` DAG through Airflow in a child process, then
the `water_quality_class` DAG derived from it (in production its inputs' Asset events start it), and reads back what
the runs did from the hub itself: the batch manifest, the derived datasets, the outbox and the events that arrived.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from exchange.access.departments import seed_departments
from exchange.staging import batch_id_for
from exchange.subscriber import ChangeEvent, ChangeSubscriber
from exchange.tables import outbox
from exchange.urls import redacted_url
from waterhub.local_airflow import LocalAirflow
from waterhub.pipeline import Pipeline
from waterhub.settings import Settings

__all__ = ["DemoReport", "DerivedSummary", "run_demo"]

SOURCE = "water_quality"
DERIVED = "water_quality_class"
DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"


@dataclass(frozen=True)
class DerivedSummary:
    """One derived dataset after the derived DAG's run: its rows, and the sequence range that run added (if any)."""

    dataset: str
    rows: int
    first_seq: int | None
    last_seq: int | None


@dataclass(frozen=True)
class DemoReport:
    """What one demo run did, read back from the hub and the broker."""

    run_id: str
    manifest: dict[str, Any]
    derived_run_id: str
    derived: tuple[DerivedSummary, ...]
    expected_event_ids: frozenset[str]
    events: tuple[ChangeEvent, ...]
    airflow_log: Path


def run_demo(settings: Settings, *, seed: int, console: Console) -> DemoReport:
    """Run the DAG once against a fresh simulator with ``seed``; a second call with the same seed changes nothing."""
    from connectors.water_quality import WaterQualitySimulator
    from connectors.water_quality.settings import WaterQualitySourceSettings

    data_dir = settings.data_dir.resolve()
    airflow = LocalAirflow(home=data_dir / "airflow", dags_folder=DAGS_FOLDER)
    pipeline = Pipeline(settings, SOURCE)
    with ExitStack() as stack, _steps(console) as step:
        with step("Starting the bureau's simulator"):
            block = settings.source_settings(SOURCE, WaterQualitySourceSettings)
            simulator = WaterQualitySimulator(seed=seed, api_key=block.api_key.get_secret_value())
            running = stack.enter_context(simulator.serve(host="127.0.0.1", port=0))
        with step(f"Connecting to the change topics at {redacted_url(settings.resolved_mqtt_url)}"):
            if settings.mqtt_url is None:
                from exchange.broker import EmbeddedBroker

                stack.enter_context(EmbeddedBroker(host="127.0.0.1", port=settings.embedded_mqtt_port))
            subscriber = stack.enter_context(ChangeSubscriber(settings.resolved_mqtt_url))
        with step("Preparing the hub's and Airflow's databases"):
            pipeline.engine  # noqa: B018 - creates the hub's tables before Airflow's tasks and our watcher race to
            seed_departments(pipeline.engine, now=datetime.now(UTC))  # the consumer API's principals
            airflow.migrate(log_path=data_dir / "logs" / "airflow-migrate.log")
        log_path = data_dir / "logs" / "airflow-dags-test.log"
        hub_env = {
            "WATERHUB_DATA_DIR": str(data_dir),
            "WATERHUB_DATABASE_URL": settings.resolved_database_url,
            "WATERHUB_OBJECT_STORE_URL": settings.resolved_object_store_url,
            "WATERHUB_MQTT_URL": settings.resolved_mqtt_url,
            "WATERHUB_WATER_QUALITY__BASE_URL": running.base_url,
        }
        with step("Running the water_quality DAG through Airflow") as line, _watch_batches(pipeline, line):
            run_id = airflow.test_dag(SOURCE, log_path=log_path, extra=hub_env)
        with step(f"Running the {DERIVED} DAG derived from it through Airflow"):
            derived_run_id = airflow.test_dag(
                DERIVED, log_path=data_dir / "logs" / "airflow-derived.log", extra=hub_env
            )
        batch_id = batch_id_for(SOURCE, run_id)
        with pipeline.engine.connect() as conn:
            query = select(outbox.c.event_id).where(outbox.c.run_id.in_([run_id, derived_run_id]))
            expected = frozenset(conn.execute(query).scalars())
        with step(f"Waiting for {len(expected)} change event(s)"):
            events = subscriber.wait_for(expected, timeout_s=15)
        derived = _derived(pipeline, derived_run_id)
        return DemoReport(
            run_id, pipeline.manifest(batch_id), derived_run_id, derived, expected, tuple(events), log_path
        )


def _derived(pipeline: Pipeline, run_id: str) -> tuple[DerivedSummary, ...]:
    from exchange.consumer import list_datasets
    from exchange.runs import run_publication
    from waterhub.derived import derivation_declaration

    rows = {summary.key: summary.rows for summary in list_datasets(pipeline.engine)}
    summaries = []
    with pipeline.engine.connect() as conn:
        for dataset in derivation_declaration(DERIVED).outputs.values():
            published = run_publication(conn, dataset, run_id)
            first, last = (published.first_seq, published.last_seq) if published else (None, None)
            summaries.append(DerivedSummary(dataset, rows.get(dataset, 0), first, last))
    return tuple(summaries)


class _StepProgress:
    """One spinner line per step; a step's line can be retitled while it runs."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    @contextmanager
    def __call__(self, title: str) -> Iterator[_StepLine]:
        task = self.progress.add_task(title, total=1)
        line = _StepLine(self.progress, task, title)
        yield line
        self.progress.update(task, completed=1, description=f"[green]✓[/] {title}")


@dataclass
class _StepLine:
    progress: Progress
    task: TaskID
    title: str

    def note(self, text: str) -> None:
        self.progress.update(self.task, description=f"{self.title} [dim]({text})[/]")


@contextmanager
def _steps(console: Console) -> Iterator[_StepProgress]:
    columns = (SpinnerColumn(finished_text=""), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        yield _StepProgress(progress)


@contextmanager
def _watch_batches(pipeline: Pipeline, line: _StepLine) -> Iterator[None]:
    """Show which step the newest batch has reached while Airflow runs the tasks in its own process."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.5):
            latest = pipeline.staging.latest(SOURCE)
            if latest is not None:
                line.note(f"batch {latest.status}")

    watcher = threading.Thread(target=watch, name="demo-batch-watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=2)
