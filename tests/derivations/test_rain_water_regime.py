"""The rain and water regime derived end to end on PostgreSQL and SQLite: rainfall windows at their edges, missing
hours, districts, stations without thresholds, and the windows moving when a later reading arrives.

Windows end at the latest rainfall observation (``END``). Rain gauges P1, P2 are in district 440100, P5 in 440200,
P3 has no station record (so no district).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from contracts import Contract
from contracts.hydrology import (
    RainfallRecord,
    ReservoirFloodSeasonLimit,
    ReservoirRecord,
    RiverRecord,
    RiverThresholds,
    Station,
)
from contracts.rain_water_regime import DistrictRainfall, StationRainfall, WaterRegime
from exchange.tables import dataset_table
from tests.exchange.rows import publish
from waterhub.derivations.rain_water_regime import level_trend
from waterhub.derived import Derivation

P1, P2, P3, P5 = "81000001", "81000002", "81000003", "81000005"
A, B, C, R = "81000011", "81000012", "81000013", "81000020"
END = datetime(2026, 6, 10, 6, tzinfo=UTC)
NOW = END + timedelta(days=1)
STATIONS, DISTRICTS, REGIME = (c.meta.key for c in (StationRainfall, DistrictRainfall, WaterRegime))
BASE = {"updated_at": END - timedelta(days=30), "source": "http:hydrology"}


def _rain(stcd: str, hours_before: float, drp: float) -> dict[str, object]:
    tm = END - timedelta(hours=hours_before)
    return {"stcd": stcd, "tm": tm, "drp": drp, "intv": 0.05, "updated_at": tm + timedelta(minutes=1), "source": "x:y"}


def _level(
    contract: type[Contract], stcd: str, hours_before: float, level: float, trend: str | None = None
) -> dict[str, object]:
    tm = END - timedelta(hours=hours_before)
    names = ("z", "wptn") if contract is RiverRecord else ("rz", "rwptn")
    return {"stcd": stcd, "tm": tm, names[0]: level, names[1]: trend, "updated_at": tm, "source": "x:y"}


DERIVATION = "rain_water_regime"


@pytest.fixture
def hub(hub: tuple[Derivation, Engine]) -> tuple[Derivation, Engine]:
    """The shared derivation hub (tests/derivations/conftest.py), with the stations and thresholds seeded."""
    engine = hub[1]
    districts = {P1: "440100", P2: "440100", P5: "440200", A: "440100", B: None, C: None, R: "440300"}
    publish(
        engine,
        Station,
        [{**BASE, "stcd": code, "stnm": f"站{code[-2:]}", "addvcd": d} for code, d in districts.items()],
        run_id="s",
    )
    publish(engine, RiverThresholds, [{**BASE, "stcd": A, "wrz": 10.0}], run_id="s")
    publish(
        engine,
        ReservoirFloodSeasonLimit,
        [{**BASE, "stcd": R, "bgmd": "0415", "edmd": "0715", "fsltdz": 48.0}],
        run_id="s",
    )
    return hub


def _rows(engine: Engine, contract: type[Contract], columns: tuple[str, ...]) -> list[tuple[object, ...]]:
    table = dataset_table(contract)
    with engine.connect() as conn:
        query = select(*(table.c[name] for name in columns)).order_by(*(table.c[k] for k in contract.meta.primary_key))
        return [tuple(row) for row in conn.execute(query)]


RAIN = ("stcd", "addvcd", "rain_1h", "rain_3h", "rain_6h", "rain_24h", "readings_24h")
DISTRICT = ("addvcd", "stations", "rain_1h", "rain_3h", "rain_6h", "rain_24h", "max_rain_24h", "max_rain_24h_stcd")


def test_rainfall_windows_take_the_periods_ending_inside_them_and_move_with_the_latest_reading(
    hub: tuple[Derivation, Engine],
) -> None:
    derivation, engine = hub
    rain = [
        _rain(P1, 0, 2.0),
        _rain(P1, 0.5, 1.0),
        _rain(P1, 1, 4.0),  # exactly an hour old: its period ended before the last hour began
        _rain(P1, 3, 8.0),  # exactly three hours old: in the 6-hour window only
        _rain(P1, 24, 16.0),  # exactly a day old: in no window
        _rain(P2, 2, 3.0),  # P2 missed every other hour: what it sent, nothing made up
        _rain(P2, 5, 5.0),
        _rain(P3, 0.25, 1.5),  # a gauge with no station record
        _rain(P5, 23.5, 1.0),
    ]
    publish(engine, RainfallRecord, rain, run_id="r1")
    assert derivation.publish(run_id="d1", now=NOW) == [STATIONS, DISTRICTS]
    assert _rows(engine, StationRainfall, RAIN) == [
        (P1, "440100", 2.0 + 1.0, 2.0 + 1.0 + 4.0, 15.0, 15.0, 4),
        (P2, "440100", 0.0, 3.0, 8.0, 8.0, 2),
        (P3, None, 1.5, 1.5, 1.5, 1.5, 1),
        (P5, "440200", 0.0, 0.0, 0.0, 1.0, 1),
    ]
    assert _rows(engine, DistrictRainfall, DISTRICT) == [
        ("440100", 2, 1.5, 5.0, 11.5, 11.5, 15.0, P1),
        ("440200", 1, 0.0, 0.0, 0.0, 1.0, 1.0, P5),
    ]
    assert {as_of for (as_of,) in _rows(engine, StationRainfall, ("as_of",))} in ({END}, {END.replace(tzinfo=None)})
    assert derivation.publish(run_id="d1-again", now=NOW) == []

    # an hour later: P5's only period leaves the day, so P5 and its district go; P2's 3 mm is now 3 hours old
    publish(engine, RainfallRecord, [_rain(P1, -1, 0.5)], run_id="r2")
    assert derivation.publish(run_id="d2", now=NOW) == [STATIONS, DISTRICTS]
    assert _rows(engine, StationRainfall, RAIN) == [
        (P1, "440100", 0.5, 0.5 + 2.0 + 1.0 + 4.0, 15.5, 15.5, 5),
        (P2, "440100", 0.0, 0.0, 3.0, 8.0, 2),  # its 5-hour-old period is now 6 hours old
        (P3, None, 0.0, 1.5, 1.5, 1.5, 1),
    ]
    assert [row[0] for row in _rows(engine, DistrictRainfall, DISTRICT)] == ["440100"]


LEVELS = ("stcd", "station_kind", "level", "trend", "trend_source", "warning_kind", "warning_level", "margin_m")


def test_the_water_regime_has_each_latest_level_with_its_trend_and_margin(hub: tuple[Derivation, Engine]) -> None:
    derivation, engine = hub
    rivers = [
        _level(RiverRecord, A, 1, 9.2, "5"),
        _level(RiverRecord, A, 0, 9.7, "5"),  # reports its own trend
        _level(RiverRecord, B, 1, 5.0),
        _level(RiverRecord, B, 0.5, 5.3),  # under an hour before the latest: not the comparison
        _level(RiverRecord, B, 0, 5.005),  # within a centimetre of an hour before: steady
        _level(RiverRecord, C, 2, 3.4),
        _level(RiverRecord, C, 1.5, 3.0),  # the latest level at least an hour older
        _level(RiverRecord, C, 0, 2.9),
    ]
    publish(engine, RiverRecord, rivers, run_id="h1")
    publish(engine, ReservoirRecord, [_level(ReservoirRecord, R, 0, 48.3)], run_id="h1")
    assert derivation.publish(run_id="d1", now=NOW) == [REGIME]
    assert _rows(engine, WaterRegime, LEVELS) == [
        (A, "river", 9.7, "rising", "reported", "wrz", 10.0, 0.3),
        (B, "river", 5.005, "steady", "computed", None, None, None),
        (C, "river", 2.9, "falling", "computed", None, None, None),
        (R, "reservoir", 48.3, None, None, "fsltdz", 48.0, -0.3),  # over its limit by 0.3 m; one reading, no trend
    ]

    # a lowered warning level for A alone recomputes A's margin
    publish(engine, RiverThresholds, [{**BASE, "stcd": A, "wrz": 9.5, "updated_at": NOW}], run_id="t2", now=NOW)
    assert derivation.publish(run_id="d2", now=NOW) == [REGIME]
    assert _rows(engine, WaterRegime, LEVELS)[0] == (A, "river", 9.7, "rising", "reported", "wrz", 9.5, -0.2)


@pytest.mark.parametrize(
    ("level", "before", "expected"),
    [(5.0, 4.99, "steady"), (5.0, 5.01, "steady"), (5.0, 4.98, "rising"), (5.0, 5.02, "falling"), (5.0, None, None)],
)
def test_a_computed_trend_needs_more_than_a_centimetre(
    level: float, before: float | None, expected: str | None
) -> None:
    assert level_trend(level, before) == expected
