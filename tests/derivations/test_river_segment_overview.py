"""The river-segment overview and the problem closure rate: the pure core on a table of cases (no chief, no patrol,
a tie, an unknown patrolling chief, a reopened problem, a rejected one, years and districts), then end to end
through the derived runner on PostgreSQL and SQLite: rerun, a new patrol, a renamed chief, a problem deleted
upstream by tombstone, a reopened problem."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from contracts.river_chief import Chief, Patrol, Problem, RiverSegment, SegmentChief
from contracts.river_segment_overview import ProblemClosureRate, SegmentOverview
from exchange.publish import publish_frame
from exchange.tables import change_log, dataset_table
from tests.exchange.rows import LATER, NOW, T0, publish, typed_frame
from waterhub.derivations.river_segment_overview import closure_rates, segment_overview
from waterhub.derived import Derivation

DERIVATION = "river_segment_overview"
OVERVIEW, RATES = SegmentOverview.meta.key, ProblemClosureRate.meta.key
SEGMENT = {"segment_code": "S000001", "river_code": "R00001", "name": "第1段", "division_code": "440106001001"}
AT = datetime(2026, 3, 1, 2, tzinfo=UTC)


def _chief(chief_id: str, level: str, name: str | None = None) -> dict[str, object]:
    return {"chief_id": chief_id, "name": name or f"河长{chief_id}", "level": level}


def _patrol(
    patrol_id: str, hours: int, chief_id: str = "C00001", chief_name: str | None = "河长C00001"
) -> dict[str, Any]:
    return {
        "patrol_id": patrol_id,
        "chief_id": chief_id,
        "started_at": AT + timedelta(hours=hours),
        "chief_name": chief_name,
    }


@pytest.mark.parametrize(
    ("chiefs", "patrols", "statuses", "expected"),
    [
        pytest.param([], [], [], (None, 0, None, None, None, 0), id="no chief, no patrol, no problem"),
        pytest.param(
            [_chief("C00003", "village"), _chief("C00002", "county"), _chief("C00001", "town")],
            [_patrol("P1", 0), _patrol("P2", 5, "C00002", "河长C00002"), _patrol("P3", 2)],
            ["handling", "closed", "rejected", "reported"],
            (["C00002", "C00001", "C00003"], 3, "P2", AT + timedelta(hours=5), "河长C00002", 2),
            id="chiefs by level, latest patrol, open problems",
        ),
        pytest.param(
            [_chief("C00001", "town")],
            [_patrol("P7", 1, "X00009", None), _patrol("P6", 1)],
            ["closed", "closed"],
            (["C00001"], 1, "P7", AT + timedelta(hours=1), None, 0),
            id="a tie goes to the larger patrol id; an unknown chief has no name",
        ),
        pytest.param([], [], ["handling"], (None, 0, None, None, None, 1), id="a reopened problem is open again"),
    ],
)
def test_a_segment_row_shows_its_chiefs_latest_patrol_and_open_problems(
    chiefs: list[dict[str, Any]], patrols: list[dict[str, Any]], statuses: list[str], expected: tuple[Any, ...]
) -> None:
    row = segment_overview(SEGMENT, chiefs, patrols, [{"status": status} for status in statuses])
    listed = None if row["chiefs"] is None else [c["chief_id"] for c in json.loads(str(row["chiefs"]))]
    assert (
        listed,
        row["chief_count"],
        row["last_patrol_id"],
        row["last_patrol_at"],
        row["last_patrol_chief_name"],
        row["open_problems"],
    ) == expected
    assert {k: row[k] for k in SEGMENT} == SEGMENT


def _problem(division: str, reported: datetime, status: str) -> dict[str, object]:
    return {"division_code": division, "reported_at": reported, "status": status}


@pytest.mark.parametrize(
    ("problems", "expected"),
    [
        pytest.param([], [], id="no problems, no rows"),
        pytest.param(
            [
                _problem("440106001001", AT, "closed"),
                _problem("440106002000", AT, "closed"),
                _problem("440106003000", AT, "handling"),
                _problem("440106003000", AT, "rejected"),
            ],
            [("440106", 2026, 4, 1, 2, 1, 2 / 3)],
            id="rejected leave the denominator; districts are the first 6 digits",
        ),
        pytest.param(
            # 2025-12-31 17:00 UTC is 2026-01-01 01:00 in Beijing: the 2026 window
            [
                _problem("440104000000", datetime(2025, 12, 31, 17, tzinfo=UTC), "closed"),
                _problem("440104000000", datetime(2025, 12, 31, 15, tzinfo=UTC), "verified"),
            ],
            [("440104", 2025, 1, 0, 0, 1, 0.0), ("440104", 2026, 1, 0, 1, 0, 1.0)],
            id="the year is Beijing's; verified is not yet closed",
        ),
        pytest.param(
            [_problem("440111000000", AT, "rejected")],
            [("440111", 2026, 1, 1, 0, 0, None)],
            id="every problem rejected: no rate",
        ),
    ],
)
def test_closure_rate_per_district_and_year_of_report(
    problems: list[dict[str, Any]], expected: list[tuple[Any, ...]]
) -> None:
    rows = closure_rates(problems)
    fields = ("district_code", "year", "problems", "rejected", "closed", "open", "closure_rate")
    assert [tuple(row[f] for f in fields) for row in rows] == expected


# ---------------------------------------------------------------- end to end through the runner


def _segment(code: str, name: str = "段") -> dict[str, object]:
    return {
        "segment_code": code,
        "river_code": "R00001",
        "name": name,
        "division_code": "440106001001",
        "start_point": "1号桥",
        "end_point": "2号闸",
        "length_km": 1.5,
        "updated_at": T0,
    }


def _chief_row(chief_id: str, level: str, name: str, at: datetime = T0) -> dict[str, object]:
    return {
        "chief_id": chief_id,
        "name": name,
        "post": f"{level}级河长",
        "level": level,
        "office_code": "O0001",
        "updated_at": at,
    }


def _patrol_row(patrol_id: str, chief_id: str, segment: str, hours: int, at: datetime = T0) -> dict[str, object]:
    started = T0 + timedelta(hours=hours)
    return {
        "patrol_id": patrol_id,
        "chief_id": chief_id,
        "water_body_code": segment,
        "started_at": started,
        "ended_at": started + timedelta(minutes=30),
        "distance_km": 1.2,
        "track_points": 180,
        "channel": "app",
        "problems_found": 0,
        "updated_at": at,
    }


def _problem_row(problem_id: str, segment: str, status: str, division: str, at: datetime = T0) -> dict[str, object]:
    return {
        "problem_id": problem_id,
        "water_body_code": segment,
        "division_code": division,
        "source": "patrol",
        "category": "rubbish",
        "status": status,
        "reported_at": T0,
        "longitude": 113.3,
        "latitude": 23.1,
        "updated_at": at,
    }


def _overview(engine: Engine) -> dict[str, dict[str, object]]:
    table = dataset_table(SegmentOverview)
    with engine.connect() as conn:
        return {row["segment_code"]: dict(row) for row in conn.execute(select(table)).mappings()}


def _rates(engine: Engine) -> dict[tuple[str, int], tuple[object, ...]]:
    table = dataset_table(ProblemClosureRate)
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.district_code, table.c.year, table.c.closed, table.c.open, table.c.closure_rate)
        )
        return {(d, y): (closed, open_, rate) for d, y, closed, open_, rate in rows}


def _changes(engine: Engine, dataset: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        query = select(change_log.c.key, change_log.c.op).where(change_log.c.dataset == dataset)
        return [(key, op) for key, op in conn.execute(query.order_by(change_log.c.seq))]


def _chief_names(row: dict[str, object]) -> list[tuple[str, str]]:
    return [(c["name"], c["level"]) for c in json.loads(str(row["chiefs"]))] if row["chiefs"] else []


def test_overview_and_closure_rates_follow_every_change_and_a_rerun_changes_nothing(
    hub: tuple[Derivation, Engine],
) -> None:
    derivation, engine = hub
    publish(engine, RiverSegment, [_segment("S000001"), _segment("S000002")], run_id="rc-1")
    publish(
        engine,
        Chief,
        [_chief_row("C00001", "town", "王河长"), _chief_row("C00002", "village", "李河长")],
        run_id="rc-1",
    )
    publish(
        engine,
        SegmentChief,
        [{"segment_code": "S000001", "chief_id": c, "updated_at": T0} for c in ("C00002", "C00001")],
        run_id="rc-1",
    )
    publish(
        engine,
        Patrol,
        [_patrol_row("P00000001", "C00001", "S000001", 1), _patrol_row("P00000002", "C00002", "S000001", 3)],
        run_id="rc-1",
    )
    problems = [
        _problem_row("Q0000001", "S000001", "handling", "440106001001"),
        _problem_row("Q0000002", "S000001", "closed", "440106001001"),
        _problem_row("Q0000003", "S000002", "reported", "440104002000"),
        _problem_row("Q0000004", "W00001", "closed", "440104002000"),  # a small water body: a rate, no segment
    ]
    publish(engine, Problem, problems, run_id="rc-1")

    assert derivation.publish(run_id="ov-1", now=NOW) == [OVERVIEW, RATES]
    overview = _overview(engine)
    assert set(overview) == {"S000001", "S000002"}
    first, second = overview["S000001"], overview["S000002"]
    assert _chief_names(first) == [("王河长", "town"), ("李河长", "village")]
    assert (first["last_patrol_id"], first["last_patrol_chief_name"], first["open_problems"]) == (
        "P00000002",
        "李河长",
        1,
    )
    assert (second["chiefs"], second["chief_count"], second["last_patrol_at"], second["open_problems"]) == (
        None,
        0,
        None,
        1,
    )
    assert _rates(engine) == {("440106", 2026): (1, 1, 0.5), ("440104", 2026): (1, 1, 0.5)}
    logged = len(_changes(engine, OVERVIEW)), len(_changes(engine, RATES))

    assert derivation.publish(run_id="ov-2", now=LATER) == []
    assert (len(_changes(engine, OVERVIEW)), len(_changes(engine, RATES))) == logged

    # a first patrol of segment 2 by a chief renamed at the same time: both segments show the new name
    publish(engine, Chief, [_chief_row("C00002", "village", "李新", LATER)], run_id="rc-2", now=LATER)
    publish(engine, Patrol, [_patrol_row("P00000003", "C00002", "S000002", 2, LATER)], run_id="rc-2", now=LATER)
    assert derivation.publish(run_id="ov-3", now=LATER) == [OVERVIEW]
    overview = _overview(engine)
    assert _chief_names(overview["S000001"])[1] == ("李新", "village")
    assert (overview["S000002"]["last_patrol_id"], overview["S000002"]["last_patrol_chief_name"]) == (
        "P00000003",
        "李新",
    )
    assert sorted(_changes(engine, OVERVIEW)[logged[0] :]) == [('["S000001"]', "update"), ('["S000002"]', "update")]

    # a problem deleted upstream (its segment is not in the change log) and a closed one reopened
    with engine.begin() as conn:
        gone = pd.DataFrame({"problem_id": ["Q0000003"], "updated_at": [LATER]})
        publish_frame(conn, Problem, typed_frame(Problem, []), run_id="rc-3", now=LATER, tombstones=gone)
    publish(engine, Problem, [{**problems[1], "status": "handling", "updated_at": LATER}], run_id="rc-3", now=LATER)
    assert derivation.publish(run_id="ov-4", now=LATER) == [OVERVIEW, RATES]
    overview = _overview(engine)
    assert (overview["S000001"]["open_problems"], overview["S000002"]["open_problems"]) == (2, 0)
    assert _rates(engine) == {("440106", 2026): (0, 2, 0.0), ("440104", 2026): (1, 0, 1.0)}

    # the segment itself deleted upstream leaves the overview
    with engine.begin() as conn:
        gone = pd.DataFrame({"segment_code": ["S000002"], "updated_at": [LATER]})
        publish_frame(conn, RiverSegment, typed_frame(RiverSegment, []), run_id="rc-4", now=LATER, tombstones=gone)
    assert derivation.publish(run_id="ov-5", now=LATER) == [OVERVIEW]
    assert set(_overview(engine)) == {"S000001"}
    assert _changes(engine, OVERVIEW)[-1] == ('["S000002"]', "delete")
