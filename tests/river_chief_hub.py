"""What the river-chief tests share: the platform simulator on a real socket, a hub pointed at it, one sync."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from connectors.river_chief import RiverChiefSimulator
from connectors.river_chief.settings import RiverChiefSourceSettings
from connectors.river_chief.simulator import RunningPlatform
from waterhub.pipeline import Pipeline
from waterhub.settings import HttpClientSettings, Settings

CLIENT_ID, SECRET = "guangzhou-hub", "province-issued-secret"


@contextmanager
def served_platform(*, seed: int, days: int, scale: float = 0.005) -> Iterator[RunningPlatform]:
    simulator = RiverChiefSimulator(seed=seed, client_id=CLIENT_ID, client_secret=SECRET, scale=scale, days=days)
    with simulator.serve() as running:
        yield running


def hub_pipeline(running: RunningPlatform, data_dir: Path, database_url: str, *, page_size: int = 20) -> Pipeline:
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        river_chief=RiverChiefSourceSettings(
            base_url=running.base_url, client_id=CLIENT_ID, client_secret=SECRET, page_size=page_size
        ),
        http=HttpClientSettings(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.05, timeout_s=5),
    )
    return Pipeline(settings, "river_chief")


def sync(pipeline: Pipeline, running: RunningPlatform, run_id: str) -> None:
    """One run's extract, validate and publish, its interval ending an hour after the platform's clock."""
    batch_id = pipeline.extract(run_id=run_id, interval_end=running.simulator.clock + timedelta(hours=1))
    pipeline.validate(batch_id)
    pipeline.publish(batch_id)
