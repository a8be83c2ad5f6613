"""Reference keys are looked up by exchange for the values a batch refers to, composite keys included, on real
PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import Engine

from contracts.water_quality import WaterQualityStation
from exchange.publish import publish_frame
from exchange.references import published_keys_among
from exchange.tables import ensure_schema
from tests.exchange.rows import NOW, publish, station
from tests.plant_app import PlantReading, registered

T = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture
def plant_tables(engine: Engine) -> Iterator[Engine]:
    registration = registered()
    next(registration)
    ensure_schema(engine)
    yield engine
    next(registration, None)


def test_only_the_published_candidates_come_back(engine: Engine) -> None:
    publish(engine, WaterQualityStation, [station("44010001"), station("44010002")], "run-1")
    with engine.begin() as conn:
        found = published_keys_among(conn, WaterQualityStation, [("44010002",), ("44019999",), ("44010002",)])
    assert found == {("44010002",)}


def test_a_composite_key_is_matched_on_every_part(plant_tables: Engine) -> None:
    frame = pd.DataFrame({"station": ["S1", "S1", "S2"], "n": [0, 1, 0], "value": [1.0, 2.0, 3.0]})
    frame["n"] = frame["n"].astype("Int64")
    frame["updated_at"] = pd.Series([T, T, T]).dt.as_unit("us")
    with plant_tables.begin() as conn:
        publish_frame(conn, PlantReading, frame, run_id="run-1", now=NOW)
    with plant_tables.begin() as conn:
        found = published_keys_among(conn, PlantReading, [("S1", "1"), ("S2", "1"), ("S2", "0"), ("S1", "x")])
    assert found == {("S1", "1"), ("S2", "0")}
