"""`make demo`: the whole path on embedded defaults, driven by Airflow, watched by a subscriber.

It starts every declared source's simulator (``SourceDeclaration.demo_simulator``) and (unless WATERHUB_MQTT_URL
names a broker) the embedded broker in this process, subscribes to every dataset's change topic, runs each source's
DAG through Airflow in a child process, then every derived DAG (``waterhub/derived.toml``; in production their
inputs' Asset events start them), and reads back what each run did from the hub itself: the batch manifest, the
derived datasets, the outbox and the events that arrived.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine, select

from exchange.access.departments import seed_departments
from exchange.staging import batch_id_for
from exchange.subscriber import ChangeEvent, ChangeSubscriber
from exchange.tables import outbox
from exchange.urls import redacted_url
from waterhub.derived import declared_derivations, derivation_declaration
from waterhub.local_airflow import LocalAirflow
from waterhub.pipeline import Pipeline
from waterhub.settings import Settings
from waterhub.sources import declared_sources

__all__ = ["DemoReport", "DerivedSummary", "SourceRun", "run_demo"]

DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"


@dataclass(frozen=True)
class SourceRun:
    """What one source's DAG run did, read back from the hub."""

    source: str
    run_id: str
    manifest: dict[str, Any]
    expected_event_ids: frozenset[str]
    airflow_log: Path


@dataclass(frozen=True)
class DerivedSummary:
    """One derived dataset after its derived DAG's run: its rows, and the sequence range that run added (if any)."""

    derivation: str
    run_id: str
    dataset: str
    rows: int
    first_seq: int | None
    last_seq: int | None


@dataclass(frozen=True)
class DemoReport:
    """What one demo did: a run per declared source and per derivation, and the change events received."""

    runs: tuple[SourceRun, ...]
    derived: tuple[DerivedSummary, ...]
    derived_event_ids: frozenset[str]
    events: tuple[ChangeEvent, ...]

    @property
    def expected_event_ids(self) -> frozenset[str]:
        return frozenset().union(self.derived_event_ids, *(run.expected_event_ids for run in self.runs))

    def run(self, source: str) -> SourceRun:
        return next(run for run in self.runs if run.source == source)


def run_demo(settings: Settings, *, seed: int, console: Console) -> DemoReport:
    """Run every source's DAG once against a fresh simulator with ``seed``; a second call with the same seed changes
    nothing."""
    data_dir = settings.data_dir.resolve()
    airflow = LocalAirflow(home=data_dir / "airflow", dags_folder=DAGS_FOLDER)
    sources = declared_sources()
    with ExitStack() as stack, _steps(console) as step:
        urls: dict[str, str] = {}
        for name, declaration in sources.items():
            with step(f"Starting the simulator of {declaration.title}"):
                simulator = declaration.demo_simulator(settings.source_settings(name, BaseModel), seed)
                urls[name] = stack.enter_context(simulator.served(host="127.0.0.1", port=0)).base_url
        with step(f"Connecting to the change topics at {redacted_url(settings.resolved_mqtt_url)}"):
            if settings.mqtt_url is None:
                from exchange.broker import EmbeddedBroker

                stack.enter_context(EmbeddedBroker(host="127.0.0.1", port=settings.embedded_mqtt_port))
            subscriber = stack.enter_context(ChangeSubscriber(settings.resolved_mqtt_url))
        pipelines = {name: Pipeline(settings, name) for name in sources}
        with step("Preparing the hub's and Airflow's databases"):
            engine = next(iter(pipelines.values())).engine  # creates the hub's tables before Airflow's tasks race to
            seed_departments(engine, now=datetime.now(UTC))  # the consumer API's principals
            airflow.migrate(log_path=data_dir / "logs" / "airflow-migrate.log")
        hub_env = {
            "WATERHUB_DATA_DIR": str(data_dir),
            "WATERHUB_DATABASE_URL": settings.resolved_database_url,
            "WATERHUB_OBJECT_STORE_URL": settings.resolved_object_store_url,
            "WATERHUB_MQTT_URL": settings.resolved_mqtt_url,
        }
        runs = []
        for name, pipeline in pipelines.items():
            url_field = pipeline.source.url_field or "base_url"
            extra = hub_env | {f"WATERHUB_{name.upper()}__{url_field.upper()}": urls[name]}
            log_path = data_dir / "logs" / f"airflow-dags-test-{name}.log"
            with step(f"Running the {name} DAG through Airflow") as line, _watch_batches(pipeline, line):
                run_id = airflow.test_dag(name, log_path=log_path, extra=extra)
            with pipeline.engine.connect() as conn:
                expected = conn.execute(select(outbox.c.event_id).where(outbox.c.run_id == run_id)).scalars()
                runs.append(
                    SourceRun(
                        name, run_id, pipeline.manifest(batch_id_for(name, run_id)), frozenset(expected), log_path
                    )
                )
        derived: list[DerivedSummary] = []
        derived_events: set[str] = set()
        for name in declared_derivations():
            with step(f"Running the {name} DAG derived from them through Airflow"):
                log_path = data_dir / "logs" / f"airflow-dags-test-{name}.log"
                run_id = airflow.test_dag(name, log_path=log_path, extra=hub_env)
            derived += _derived(engine, name, run_id)
            with engine.connect() as conn:
                derived_events |= set(
                    conn.execute(select(outbox.c.event_id).where(outbox.c.run_id == run_id)).scalars()
                )
        report = DemoReport(tuple(runs), tuple(derived), frozenset(derived_events), ())
        with step(f"Waiting for {len(report.expected_event_ids)} change event(s)"):
            events = subscriber.wait_for(report.expected_event_ids, timeout_s=15)
        return DemoReport(report.runs, report.derived, report.derived_event_ids, tuple(events))


def _derived(engine: Engine, name: str, run_id: str) -> list[DerivedSummary]:
    from exchange.consumer import list_datasets
    from exchange.runs import run_publication

    rows = {summary.key: summary.rows for summary in list_datasets(engine)}
    summaries = []
    with engine.connect() as conn:
        for dataset in derivation_declaration(name).outputs.values():
            published = run_publication(conn, dataset, run_id)
            first, last = (published.first_seq, published.last_seq) if published else (None, None)
            summaries.append(DerivedSummary(name, run_id, dataset, rows.get(dataset, 0), first, last))
    return summaries


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
            latest = pipeline.staging.latest(pipeline.source_name)
            if latest is not None:
                line.note(f"batch {latest.status}")

    watcher = threading.Thread(target=watch, name="demo-batch-watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=2)
