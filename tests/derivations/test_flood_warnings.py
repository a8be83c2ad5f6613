"""Flood-warning alerts derived end to end on PostgreSQL and SQLite: readings arrive run by run, late and
corrected, and the alerts open, peak, close and (when a correction removes the exceedance) are withdrawn.

River station A has WRZ 10.0 and GRZ 12.0; B has WRZ 5.0 only; reservoir R has a main-season limit of 48.0 from
15 April to 15 July (Beijing). Readings every 15 minutes from 2026-06-10 00:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from contracts import Contract
from contracts.flood_warnings import FloodAlertRecord
from contracts.hydrology import ReservoirFloodSeasonLimit, ReservoirRecord, RiverRecord, RiverThresholds, Station
from exchange.tables import change_log, dataset_table
from tests.exchange.rows import publish
from waterhub.derived import Derivation

A, B, R = "81000002", "81000003", "81000010"
ALERTS = FloodAlertRecord.meta.key
T0 = datetime(2026, 6, 10, tzinfo=UTC)
NOW = datetime(2026, 6, 11, tzinfo=UTC)


def _at(index: int) -> datetime:
    return T0 + timedelta(minutes=15 * index)


def _reading(contract: type[Contract], stcd: str, index: int, level: float, updated: int = 0) -> dict[str, object]:
    field = "z" if contract is RiverRecord else "rz"
    when = _at(index)
    return {
        "stcd": stcd,
        "tm": when,
        field: level,
        "updated_at": when + timedelta(minutes=2 + updated),
        "source": "http:hydrology",
    }


def _river(stcd: str, levels: dict[int, float], updated: int = 0) -> list[dict[str, object]]:
    return [_reading(RiverRecord, stcd, index, level, updated) for index, level in levels.items()]


DERIVATION = "flood_warnings"


@pytest.fixture
def hub(hub: tuple[Derivation, Engine]) -> tuple[Derivation, Engine]:
    """The shared derivation hub (tests/derivations/conftest.py), with the stations and thresholds seeded."""
    engine = hub[1]
    base = {"updated_at": T0 - timedelta(days=30), "source": "http:hydrology"}
    publish(engine, Station, [{**base, "stcd": code, "stnm": f"站{code[-2:]}"} for code in (A, B, R)], run_id="s")
    publish(
        engine,
        RiverThresholds,
        [{**base, "stcd": A, "wrz": 10.0, "grz": 12.0}, {**base, "stcd": B, "wrz": 5.0}],
        run_id="s",
    )
    publish(
        engine,
        ReservoirFloodSeasonLimit,
        [{**base, "stcd": R, "bgmd": "0415", "edmd": "0715", "fsltdz": 48.0}],
        run_id="s",
    )
    return hub


def _alerts(engine: Engine) -> list[dict[str, object]]:
    table = dataset_table(FloodAlertRecord)
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.stcd, table.c.threshold_kind, table.c.opened_at))
        return [{k: _utc(v) if isinstance(v, datetime) else v for k, v in row._mapping.items()} for row in rows]


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive UTC times."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _summary(engine: Engine) -> list[tuple[object, ...]]:
    return [
        (
            row["stcd"],
            row["threshold_kind"],
            row["opened_at"],
            row["peak_level"],
            row["peak_at"],
            row["status"],
            row["closed_at"],
        )
        for row in _alerts(engine)
    ]


def _ops(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        query = select(change_log.c.op).where(change_log.c.dataset == ALERTS).order_by(change_log.c.seq)
        return list(conn.execute(query).scalars())


def test_alerts_follow_readings_run_by_run_late_corrected_and_rerun(hub: tuple[Derivation, Engine]) -> None:
    derivation, engine = hub
    # run 1: A rises over WRZ at reading 2 and is still over at 4; B spikes over at reading 1 (a bad value)
    publish(
        engine, RiverRecord, _river(A, {0: 9.0, 1: 9.6, 2: 10.3, 3: 10.8, 4: 10.6}) + _river(B, {1: 5.4}), run_id="h1"
    )
    assert derivation.publish(run_id="d1", now=NOW) == [ALERTS]
    assert _summary(engine) == [
        (A, "wrz", _at(2), 10.8, _at(3), "open", None),
        (B, "wrz", _at(1), 5.4, _at(1), "open", None),
    ]
    assert _ops(engine) == ["insert", "insert"]

    # a rerun with nothing new writes nothing
    assert derivation.publish(run_id="d1-again", now=NOW) == []
    assert _ops(engine) == ["insert", "insert"]

    # run 2: A falls back below from reading 5 and stays there for an hour; a late reading 3.5 arrives out of order
    falling = _river(A, {5: 9.9, 6: 9.5, 7: 9.3, 8: 9.2, 9: 9.1})
    publish(engine, RiverRecord, falling, run_id="h2")
    assert derivation.publish(run_id="d2", now=NOW) == [ALERTS]
    assert _summary(engine)[0] == (A, "wrz", _at(2), 10.8, _at(3), "closed", _at(5))
    assert _alerts(engine)[0]["close_confirmed_at"] == _at(9)

    # run 3: the bureau corrects A's reading 4 upwards (a new peak) and B's spike down to 4.8 (no exceedance)
    corrected = _river(A, {4: 11.1}, updated=60) + _river(B, {1: 4.8}, updated=60)
    publish(engine, RiverRecord, corrected, run_id="h3")
    assert derivation.publish(run_id="d3", now=NOW) == [ALERTS]
    assert _summary(engine) == [
        (A, "wrz", _at(2), 11.1, _at(4), "closed", _at(5)),
        (B, "wrz", _at(1), 5.4, _at(1), "withdrawn", None),
    ]

    # run 4: a second rise of A reopens a new alert, over GRZ too; the closed one stays as it was
    publish(engine, RiverRecord, _river(A, {12: 10.4, 13: 12.2}), run_id="h4")
    assert derivation.publish(run_id="d4", now=NOW) == [ALERTS]
    assert _summary(engine) == [
        (A, "grz", _at(13), 12.2, _at(13), "open", None),
        (A, "wrz", _at(2), 11.1, _at(4), "closed", _at(5)),
        (A, "wrz", _at(12), 12.2, _at(13), "open", None),
        (B, "wrz", _at(1), 5.4, _at(1), "withdrawn", None),
    ]
    assert _ops(engine) == ["insert", "insert", "update", "update", "update", "insert", "insert"]

    # run 5: a late reading 11, already over WRZ, arrives after 12 and 13: the open alert starts earlier, same key
    publish(engine, RiverRecord, _river(A, {11: 10.1}), run_id="h5")
    assert derivation.publish(run_id="d5", now=NOW) == [ALERTS]
    reopened = _alerts(engine)[2]
    assert (reopened["opened_at"], reopened["first_over_at"], reopened["opened_level"]) == (_at(12), _at(11), 10.1)
    assert (reopened["status"], len(_alerts(engine))) == ("open", 4)
    assert _ops(engine)[7:] == ["update"]  # the GRZ alert, replayed too, came out the same: not republished


def test_a_reservoir_is_held_to_the_limit_of_the_period_its_reading_falls_in(hub: tuple[Derivation, Engine]) -> None:
    derivation, engine = hub
    # 15 July 23:00 and 16 July 00:00-01:15 Beijing: 48.5 is over the main-season limit, and outside every period after
    start = datetime(2026, 7, 15, 15, tzinfo=UTC)
    rows = [
        {
            "stcd": R,
            "tm": start + timedelta(minutes=15 * i),
            "rz": 48.5,
            "updated_at": start + timedelta(minutes=15 * i + 2),
            "source": "http:hydrology",
        }
        for i in range(10)
    ]
    publish(engine, ReservoirRecord, rows, run_id="r1")
    assert derivation.publish(run_id="d1", now=NOW) == [ALERTS]
    (alert,) = _alerts(engine)
    assert (alert["threshold_kind"], alert["opened_at"], alert["threshold"], alert["stnm"]) == (
        "fsltdz",
        start,
        48.0,
        "站10",
    )
    assert (alert["status"], alert["closed_at"]) == ("closed", start + timedelta(hours=1))


def test_a_lowered_warning_level_opens_an_alert_from_the_latest_reading_on(hub: tuple[Derivation, Engine]) -> None:
    derivation, engine = hub
    publish(engine, RiverRecord, _river(A, {0: 9.0, 1: 9.5}), run_id="h1")
    assert derivation.publish(run_id="d1", now=NOW) == []
    lowered = {"stcd": A, "wrz": 9.2, "grz": 12.0, "updated_at": NOW, "source": "http:hydrology"}
    publish(engine, RiverThresholds, [lowered], run_id="t2", now=NOW)
    assert derivation.publish(run_id="d2", now=NOW) == [ALERTS]
    assert _summary(engine) == [(A, "wrz", _at(1), 9.5, _at(1), "open", None)]
