"""`make demo` on embedded defaults: SQLite, a local object folder and the in-process broker, through Airflow, twice.

The DAG test covers PostgreSQL and Mosquitto; this one covers the zero-setup path a new user runs first.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from connectors.hydrology.simulator import RAINFALL, TABLES, demo_simulator
from connectors.hydrology.streams import HYDROLOGY_STREAMS
from connectors.water_quality import WaterQualitySimulator
from exchange.consumer import changes_since, list_datasets
from exchange.db import make_engine
from waterhub.demo import run_demo
from waterhub.settings import Settings
from waterhub.sources import declared_sources

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]  # four DAG runs through Airflow: every source, twice

SEED = 7


def test_the_demo_publishes_on_embedded_defaults_and_a_second_run_changes_nothing(
    tmp_path: Path, free_port: int
) -> None:
    settings = Settings(data_dir=tmp_path / "var", embedded_mqtt_port=free_port)
    assert settings.database_url is None  # the embedded defaults, nothing else
    assert settings.mqtt_url is None
    console = Console(file=io.StringIO(), width=140)
    truth = WaterQualitySimulator(seed=SEED, api_key=settings.water_quality.api_key.get_secret_value()).truth
    hydrology = demo_simulator(settings.hydrology, SEED).truth

    first = run_demo(settings, seed=SEED, console=console)
    assert [run.source for run in first.runs] == list(declared_sources())
    samples = first.run("water_quality").manifest["streams"]["samples"]
    assert samples["fetched"] == len(truth.samples)
    assert (samples["valid"], samples["inserted"]) == (len(truth.valid_samples()), len(truth.valid_samples()))
    assert samples["reasons"] == {
        reason: sum(r == reason for r in truth.reasons) for reason in set(truth.reasons) - {None}
    }
    tables = {stream.name: stream.table for stream in HYDROLOGY_STREAMS}
    for name, entry in first.run("hydrology").manifest["streams"].items():
        table = tables[name]
        assert entry["fetched"] == len(hydrology.rows[table]), name
        assert entry["inserted"] == len(hydrology.published(table)), name
        assert entry["reasons"] == dict(hydrology.quarantined(table)), name
    assert len(hydrology.published(RAINFALL)) > 2000  # 200 stations, every 5 minutes for an hour
    assert {event.event_id for event in first.events} == first.expected_event_ids
    assert len(first.expected_event_ids) == 2 + len(TABLES)  # one event per changed dataset
    assert Path(samples["snapshot"].removeprefix("file://")).is_file()

    second = run_demo(settings, seed=SEED, console=console)
    assert {run.run_id for run in second.runs}.isdisjoint(run.run_id for run in first.runs)
    assert second.expected_event_ids == frozenset()
    assert second.events == ()
    for run in second.runs:
        assert all(entry["inserted"] == entry["updated"] == 0 for entry in run.manifest["streams"].values())

    engine = make_engine(settings.resolved_database_url)
    summaries = {summary.key: summary for summary in list_datasets(engine)}
    assert summaries["water_quality.samples"].rows == len(truth.valid_samples())
    assert len(changes_since(engine, "water_quality.samples", 0, limit=10_000)) == len(truth.valid_samples())
    engine.dispose()
