"""`make demo` on embedded defaults: SQLite, a local object folder and the in-process broker, through Airflow, twice.

The DAG test covers PostgreSQL and Mosquitto; this one covers the zero-setup path a new user runs first.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine, func, select

from connectors.hydrology.settings import HydrologySourceSettings
from connectors.hydrology.simulator import (
    FLOOD_SEASON_LIMITS,
    RAINFALL,
    RESERVOIR,
    RIVER,
    RIVER_THRESHOLDS,
    STATIONS,
    HydrologyTruth,
    demo_simulator,
)
from connectors.hydrology.streams import HYDROLOGY_STREAMS
from connectors.water_quality import WaterQualitySimulator
from connectors.water_quality.settings import WaterQualitySourceSettings
from connectors.water_quality.simulator import SimulatorTruth
from contracts.river_chief import Problem
from contracts.river_segment_overview import SegmentOverview
from contracts.water_quality import FACTOR_CODES
from contracts.water_quality_class import HourlyWaterClass
from exchange.consumer import DatasetSummary, changes_since, list_datasets
from exchange.db import make_engine
from exchange.tables import dataset_table
from quality.address_linkage import linked_contracts
from quality.gb3838 import classify
from waterhub.demo import run_demo
from waterhub.derived import declared_derivations
from waterhub.settings import Settings
from waterhub.sources import declared_sources

pytestmark = [pytest.mark.slow]

SEED = 7
FACTOR_CODES_BY_NAME = {name: code for code, name in FACTOR_CODES.items()}


@pytest.mark.timeout(2700)  # every source DAG and every derived DAG, twice, each a fresh Airflow process
def test_the_demo_publishes_on_embedded_defaults_and_a_second_run_changes_nothing(
    tmp_path: Path, free_port: int
) -> None:
    settings = Settings(data_dir=tmp_path / "var", embedded_mqtt_port=free_port)
    assert settings.database_url is None  # the embedded defaults, nothing else
    assert settings.mqtt_url is None
    console = Console(file=io.StringIO(), width=140)
    truth = WaterQualitySimulator(
        seed=SEED,
        api_key=settings.source_settings("water_quality", WaterQualitySourceSettings).api_key.get_secret_value(),
    ).truth
    hydrology = demo_simulator(settings.source_settings("hydrology", HydrologySourceSettings), SEED).truth

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
    changed = [e for run in first.runs for e in run.manifest["streams"].values() if e["first_seq"] is not None]
    assert len(changed) == sum(len(declaration.streams) for declaration in declared_sources().values())
    derived = {d.dataset: (d.rows, d.first_seq) for d in first.derived}
    assert len(derived) == sum(len(d.outputs) for d in declared_derivations().values())
    published_derived = [d for d in first.derived if d.first_seq is not None]
    assert len(first.expected_event_ids) == len(changed) + len(published_derived)  # one per dataset that changed
    valid_keys = truth.valid_sample_keys()
    station_days = {(code, (at + timedelta(hours=8)).date().isoformat()) for code, at in valid_keys}
    assert derived["water_quality.hourly_classes"] == (len(valid_keys), 1)
    assert derived["water_quality.daily_classes"] == (len(station_days), 1)
    regime = _hydrology_summary(hydrology)
    assert derived["hydrology.flood_alerts"] == (regime["alerts"], 1 if regime["alerts"] else None)
    assert derived["hydrology.station_rainfall"] == (regime["rain_stations"], 1)
    assert derived["hydrology.district_rainfall"] == (regime["districts"], 1)
    assert derived["hydrology.water_regime"] == (regime["level_stations"], 1)
    assert Path(samples["snapshot"].removeprefix("file://")).is_file()

    second = run_demo(settings, seed=SEED, console=console)
    assert {run.run_id for run in second.runs}.isdisjoint(run.run_id for run in first.runs)
    assert second.expected_event_ids == frozenset()
    assert second.events == ()
    for run in second.runs:
        assert all(entry["inserted"] == entry["updated"] == 0 for entry in run.manifest["streams"].values())
    assert [d.first_seq for d in second.derived] == [None] * len(first.derived)

    engine = make_engine(settings.resolved_database_url)
    summaries = {summary.key: summary for summary in list_datasets(engine)}
    assert summaries["water_quality.samples"].rows == len(truth.valid_samples())
    assert len(changes_since(engine, "water_quality.samples", 0, limit=10_000)) == len(truth.valid_samples())
    assert _hourly_classes(engine) == _classes_of_the_truth(truth)
    _check_linkage_and_overview(engine, summaries, derived)
    engine.dispose()


def _hydrology_summary(truth: HydrologyTruth) -> dict[str, int]:
    """Row counts of the hydrology derivations, from the simulator's own record of what must be published: the
    demo's hour lies within every window, so every gauge that sent rain has a row; each (station, threshold) some
    published level exceeds opens one alert (a reservoir's level is held to each of its limits: none comes near)."""
    rain_stations = {stcd for stcd, _ in truth.published(RAINFALL)}
    districts = {row["STCD"]: row.get("ADDVCD") for row in truth.published(STATIONS).values()}
    levels = [(row["STCD"], row.get("Z")) for row in truth.published(RIVER).values()]
    levels += [(row["STCD"], row.get("RZ")) for row in truth.published(RESERVOIR).values()]
    thresholds = [
        (row["STCD"], kind, row.get(kind.upper()))
        for row in truth.published(RIVER_THRESHOLDS).values()
        for kind in ("wrz", "grz")
    ]
    thresholds += [(row["STCD"], "fsltdz", row.get("FSLTDZ")) for row in truth.published(FLOOD_SEASON_LIMITS).values()]
    over = {
        (stcd, kind)
        for stcd, kind, limit in thresholds
        if isinstance(limit, int | float)
        for code, level in levels
        if code == stcd and isinstance(level, int | float) and level > limit
    }
    return {
        "rain_stations": len(rain_stations),
        "districts": len({districts[stcd] for stcd in rain_stations if districts.get(stcd)}),
        "level_stations": len({stcd for stcd, level in levels if isinstance(level, int | float)}),
        "alerts": len(over),  # an alert closes after an hour below, so within the demo's hour none reopens
    }


def _check_linkage_and_overview(
    engine: Engine, summaries: dict[str, DatasetSummary], derived: dict[str, tuple[int, int | None]]
) -> None:
    """The address linkage has a row per published record of every linked dataset and a rate per dataset; the
    overview a row per published segment, open problems as the problems table counts them, and a closure rate per
    district and Beijing year of the published problems."""
    linked = [contract.meta.key for contract in linked_contracts()]
    assert derived["addresses.record_links"] == (sum(summaries[key].rows for key in linked), 1)
    assert derived["addresses.match_rates"][0] == len(linked)
    assert derived["river_chief.segment_overview"] == (summaries["river_chief.segments"].rows, 1)
    problems, overview = dataset_table(Problem), dataset_table(SegmentOverview)
    with engine.connect() as conn:
        published = conn.execute(
            select(problems.c.water_body_code, problems.c.division_code, problems.c.reported_at, problems.c.status)
        ).all()
        segments = set(conn.execute(select(overview.c.segment_code)).scalars())
        open_problems = conn.execute(select(func.sum(overview.c.open_problems))).scalar_one()
    assert open_problems == sum(
        1 for code, _, _, status in published if code in segments and status not in ("closed", "rejected")
    )
    windows = {(division[:6], (at + timedelta(hours=8)).year) for _, division, at, _ in published}
    assert derived["river_chief.problem_closure_rates"] == (len(windows), 1)


def _hourly_classes(engine: Engine) -> dict[tuple[str, datetime], tuple[str | None, str | None]]:
    table = dataset_table(HourlyWaterClass)
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.station_code, table.c.sampled_at, table.c.water_class, table.c.deciding_factors)
        )
        return {(code, at): (water_class, deciding) for code, at, water_class, deciding in rows}


def _classes_of_the_truth(truth: SimulatorTruth) -> dict[tuple[str, datetime], tuple[str | None, str | None]]:
    """Each published sample classed from the simulator's own record of what must be published: its values and
    statuses, and its station's water body."""
    bodies = {station["station_code"]: station["water_body_type"] for station in truth.stations}
    classes: dict[tuple[str, datetime], tuple[str | None, str | None]] = {}
    for (code, at), outcomes in truth.published_outcomes().items():
        values = {FACTOR_CODES_BY_NAME[name]: o.value for name, o in outcomes.items() if name in FACTOR_CODES_BY_NAME}
        statuses = {
            FACTOR_CODES_BY_NAME[name]: o.status for name, o in outcomes.items() if name in FACTOR_CODES_BY_NAME
        }
        result = classify(values, bodies[code], statuses=statuses)  # type: ignore[arg-type]
        classes[(code, at)] = (result.water_class, ",".join(result.deciding_factors) or None)
    return classes
