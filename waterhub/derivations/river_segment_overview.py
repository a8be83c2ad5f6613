"""The river-segment overview and the problem closure rate per district, from the river-chief platform's datasets.

The core is two pure functions over records: ``segment_overview`` (one segment, its chiefs, its latest patrols and
its problems → its row) and ``closure_rates`` (problems → one row per district and year of report). ``derive``
finds which segments the inputs' changes touched and reads only what those need:

- a segment that changed, or whose chief assignments changed;
- every segment a changed chief answers for or made the latest patrol of (the name shown is the chief's);
- the segment of a changed patrol, and the segment whose latest patrol it was (a deleted or moved patrol);
- every segment whose count of open problems differs from the one published (open problems are few, so this is
  one grouped count, and it catches a problem deleted upstream, whose segment the change log does not name).

The closure rates are counted again over every published problem whenever a problem changed (tens of thousands
a year: one read). Rows equal to the published ones are dropped (``changed_only``), so a touched segment that did
not change logs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, false, func, select

from contracts.river_chief import CHIEF_LEVELS, Chief, Patrol, Problem, RiverSegment, SegmentChief
from contracts.river_segment_overview import ProblemClosureRate, SegmentOverview
from contracts.types import BEIJING
from exchange.tables import dataset_table
from waterhub.derivations.tables import CHUNK, changed_only, read_frame, rows_where_in
from waterhub.derived import DerivationInputs, DerivedRows

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ENDED_STATUSES", "closure_rates", "derive", "segment_overview"]

ENDED_STATUSES = ("closed", "rejected")
"""A problem in one of these is not open; any other status (a reopened one's too) is."""

_SEGMENTS, _CHIEFS, _ASSIGNED = RiverSegment.meta.key, Chief.meta.key, SegmentChief.meta.key
_PATROLS, _PROBLEMS = Patrol.meta.key, Problem.meta.key
_Record = Mapping[str, object]


def segment_overview(
    segment: _Record, chiefs: Sequence[_Record], patrols: Sequence[_Record], problems: Sequence[_Record]
) -> dict[str, object]:
    """One segment's overview row. ``chiefs``: the chiefs assigned to it (chief_id, name, level); ``patrols``: its
    patrols (patrol_id, chief_id, started_at, chief_name: None for a chief the platform does not hold), any subset
    holding the latest; ``problems``: its problems (status), any subset holding the open ones."""
    ordered = sorted(chiefs, key=lambda chief: (CHIEF_LEVELS.index(str(chief["level"])), str(chief["chief_id"])))
    listed = [{"chief_id": c["chief_id"], "name": c["name"], "level": c["level"]} for c in ordered]
    latest = max(patrols, key=lambda patrol: (_instant(patrol["started_at"]), str(patrol["patrol_id"])), default=None)
    return {
        "segment_code": segment["segment_code"],
        "river_code": segment["river_code"],
        "name": segment["name"],
        "division_code": segment["division_code"],
        "chiefs": json.dumps(listed, ensure_ascii=False, separators=(",", ":")) if listed else None,
        "chief_count": len(listed),
        "last_patrol_id": latest["patrol_id"] if latest else None,
        "last_patrol_at": latest["started_at"] if latest else None,
        "last_patrol_chief_id": latest["chief_id"] if latest else None,
        "last_patrol_chief_name": latest.get("chief_name") if latest else None,
        "open_problems": sum(1 for problem in problems if problem["status"] not in ENDED_STATUSES),
    }


def closure_rates(problems: Iterable[_Record]) -> list[dict[str, object]]:
    """Per county-level district (the first 6 digits of a problem's division code) and Beijing year of report:
    problems, rejected, closed, open and closed / (problems − rejected), in key order."""
    counts: dict[tuple[str, int], dict[str, int]] = {}
    for problem in problems:
        key = (str(problem["division_code"])[:6], _instant(problem["reported_at"]).astimezone(BEIJING).year)
        tally = counts.setdefault(key, {"problems": 0, "rejected": 0, "closed": 0})
        tally["problems"] += 1
        if problem["status"] in ENDED_STATUSES:
            tally[str(problem["status"])] += 1
    rows: list[dict[str, object]] = []
    for (district, year), tally in sorted(counts.items()):
        accepted = tally["problems"] - tally["rejected"]
        rows.append(
            {
                "district_code": district,
                "year": year,
                **tally,
                "open": accepted - tally["closed"],
                "closure_rate": tally["closed"] / accepted if accepted else None,
            }
        )
    return rows


def _instant(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, not {value!r}")
    return value


def derive(inputs: DerivationInputs) -> dict[str, DerivedRows]:
    """Overview rows of every segment the inputs' changes touched, and the closure rates if a problem changed."""
    import pandas as pd

    conn = inputs.conn
    touched = _touched_segments(conn, inputs.changes)
    segments = rows_where_in(conn, RiverSegment, ["segment_code"], touched)
    codes = _codes(segments)
    assigned = rows_where_in(conn, SegmentChief, ["segment_code"], codes, ["segment_code", "chief_id"])
    patrols = _latest_patrols(conn, codes)
    chief_ids = _codes(assigned, "chief_id") | _codes(patrols, "chief_id")
    chiefs = rows_where_in(conn, Chief, ["chief_id"], chief_ids, ["chief_id", "name", "level"])
    names = dict(zip(chiefs["chief_id"], chiefs["name"], strict=True))
    patrols["chief_name"] = [names.get(chief) for chief in patrols["chief_id"]]
    chiefs_of = _by(assigned.merge(chiefs, on="chief_id"), "segment_code")
    patrols_of = _by(patrols, "water_body_code")
    problems_of = _by(_open_problems(conn, codes), "water_body_code")
    rows = [
        segment_overview(
            segment,
            chiefs_of.get(segment["segment_code"], []),
            patrols_of.get(segment["segment_code"], []),
            problems_of.get(segment["segment_code"], []),
        )
        for segment in segments.to_dict("records")
    ]
    overview_fields = [s.name for s in SegmentOverview.field_specs() if s.name != SegmentOverview.meta.version_field]
    frame = pd.DataFrame(rows, columns=overview_fields)
    gone = rows_where_in(conn, SegmentOverview, ["segment_code"], touched - codes, ["segment_code"])
    return {
        SegmentOverview.meta.key: DerivedRows(changed_only(conn, SegmentOverview, frame), gone if len(gone) else None),
        ProblemClosureRate.meta.key: _closure_rows(conn, has_changed=not inputs.changes[_PROBLEMS].empty),
    }


def _by(frame: pd.DataFrame, column: str) -> dict[object, list[dict[str, object]]]:
    """The records of ``frame`` grouped by the value of ``column``."""
    grouped: dict[object, list[dict[str, object]]] = {}
    for record in frame.to_dict("records"):
        grouped.setdefault(record[column], []).append(record)
    return grouped


def _touched_segments(conn: Connection, changes: Mapping[str, pd.DataFrame]) -> set[tuple[object, ...]]:
    overview = dataset_table(SegmentOverview)
    touched = _codes(changes[_SEGMENTS]) | _codes(changes[_ASSIGNED])
    chiefs = _codes(changes[_CHIEFS], "chief_id")
    touched |= _codes(rows_where_in(conn, SegmentChief, ["chief_id"], chiefs, ["segment_code"]), "segment_code")
    touched |= _codes(rows_where_in(conn, SegmentOverview, ["last_patrol_chief_id"], chiefs, ["segment_code"]))
    patrols = _codes(changes[_PATROLS], "patrol_id")
    touched |= _codes(rows_where_in(conn, Patrol, ["patrol_id"], patrols, ["water_body_code"]), "water_body_code")
    touched |= _codes(rows_where_in(conn, SegmentOverview, ["last_patrol_id"], patrols, ["segment_code"]))
    if not changes[_PROBLEMS].empty:
        problems = dataset_table(Problem)
        now_open: dict[object, int] = dict(
            conn.execute(
                select(problems.c.water_body_code, func.count())
                .where(problems.c.status.not_in(ENDED_STATUSES))
                .group_by(problems.c.water_body_code)
            ).all()
        )
        published: dict[object, int] = dict(
            conn.execute(
                select(overview.c.segment_code, overview.c.open_problems).where(overview.c.open_problems > 0)
            ).all()
        )
        touched |= {(code,) for code in set(now_open) | set(published) if now_open.get(code) != published.get(code)}
    return touched


def _codes(frame: pd.DataFrame, column: str = "segment_code") -> set[tuple[object, ...]]:
    """The values of one key column, as the one-field keys ``rows_where_in`` takes."""
    return {(code,) for code in frame[column].tolist()}


def _latest_patrols(conn: Connection, codes: set[tuple[object, ...]]) -> pd.DataFrame:
    """Each segment's patrols that started at its latest patrol's start (ties are kept: the pure core decides)."""
    import pandas as pd

    patrols = dataset_table(Patrol)
    columns = [patrols.c.water_body_code, patrols.c.patrol_id, patrols.c.chief_id, patrols.c.started_at]
    wanted = sorted(str(code) for (code,) in codes)
    frames = [read_frame(conn, select(*columns).where(false()))]  # no rows, but the columns
    for start in range(0, len(wanted), CHUNK):
        latest = (
            select(patrols.c.water_body_code, func.max(patrols.c.started_at).label("started_at"))
            .where(patrols.c.water_body_code.in_(wanted[start : start + CHUNK]))
            .group_by(patrols.c.water_body_code)
            .subquery()
        )
        query = select(*columns).join(
            latest,
            (patrols.c.water_body_code == latest.c.water_body_code) & (patrols.c.started_at == latest.c.started_at),
        )
        frames.append(read_frame(conn, query))
    return pd.concat(frames, ignore_index=True)


def _open_problems(conn: Connection, codes: set[tuple[object, ...]]) -> pd.DataFrame:
    problems = rows_where_in(conn, Problem, ["water_body_code"], codes, ["water_body_code", "problem_id", "status"])
    return problems.loc[~problems["status"].isin(ENDED_STATUSES)]


def _closure_rows(conn: Connection, *, has_changed: bool) -> DerivedRows:
    import pandas as pd

    fields = [s.name for s in ProblemClosureRate.field_specs() if s.name != ProblemClosureRate.meta.version_field]
    if not has_changed:
        return DerivedRows(pd.DataFrame([], columns=fields))
    problems = dataset_table(Problem)
    read = read_frame(conn, select(problems.c.division_code, problems.c.reported_at, problems.c.status))
    rows = pd.DataFrame(closure_rates(read.to_dict("records")), columns=fields)
    rates = dataset_table(ProblemClosureRate)
    stored = read_frame(conn, select(rates.c.district_code, rates.c.year))
    kept = {(district, int(year)) for district, year in zip(rows["district_code"], rows["year"], strict=True)}
    gone = stored.loc[[(d, int(y)) not in kept for d, y in zip(stored["district_code"], stored["year"], strict=True)]]
    return DerivedRows(changed_only(conn, ProblemClosureRate, rows), gone.reset_index(drop=True) if len(gone) else None)
