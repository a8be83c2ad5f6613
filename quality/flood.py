"""Flood warnings (REFERENCE 5): which threshold a level is measured against, and the lifecycle of an alert.

Pure functions of readings and thresholds, so a duty officer's questions ("why did this alert open, why did it
close") are answered by a test, not by a database. Three kinds, each its own lifecycle (a station over its
guaranteed level is also over its warning level: two alerts, each opening and closing once):

- ``wrz``: river stage ``Z`` over the warning level (超警), ``ST_RVFCCH_B.WRZ``;
- ``grz``: river stage ``Z`` over the guaranteed level (超保), ``ST_RVFCCH_B.GRZ``;
- ``fsltdz``: reservoir level ``RZ`` over the flood-season limit (超汛限) of the period the reading falls in,
  ``ST_RSVRFSR_B.FSLTDZ``.

Rules (each a policy REFERENCE 5 leaves to us, fixed here):

- **Open** on the first reading strictly over the threshold (``>``, REFERENCE 5 "waterhub uses > in one place").
- **Peak**: the highest level while open, at the first time it was reached.
- **Close** when the level has stayed at or below the threshold for ``CLOSE_HOLD`` (one hour): a reading at or
  below at ``t0``, and a reading at or after ``t0 + CLOSE_HOLD`` with none over in between. ``closed_at`` is
  ``t0`` (when the water went back below), ``close_confirmed_at`` the reading that completed the hold. A duration
  rather than a count of readings, so 5-minute and hourly stations close alike.
- A null threshold (REFERENCE 3.5: many stations have no GRZ) or a reservoir reading outside every period is no
  check: it never opens an alert and counts as "not over" for closing one (the flood season ended).
- A reading without a level is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Literal

from contracts.types import BEIJING

__all__ = [
    "CLOSE_HOLD",
    "AlertKind",
    "FloodAlert",
    "FloodSeasonPeriod",
    "LevelReading",
    "StationThresholds",
    "alert_lifecycle",
    "flood_season_limit",
]

AlertKind = Literal["wrz", "grz", "fsltdz"]
CLOSE_HOLD = timedelta(hours=1)
"""How long the level must stay at or below the threshold before an alert closes (REFERENCE 5: "a hold time (for
example 1 h)"), so a level hovering on the threshold does not open and close an alert every reading."""


@dataclass(frozen=True)
class LevelReading:
    """One river stage or reservoir level of a station, at its observation time (UTC)."""

    stcd: str
    tm: datetime
    level: float | None


@dataclass(frozen=True)
class FloodSeasonPeriod:
    """One ``ST_RSVRFSR_B`` row: from month-day ``bgmd`` to ``edmd`` (``MMDD``, Beijing time), limit ``fsltdz``."""

    bgmd: str
    edmd: str | None
    fsltdz: float | None


@dataclass(frozen=True)
class StationThresholds:
    """What one station's levels are checked against: a river's WRZ and GRZ, or a reservoir's periods."""

    wrz: float | None = None
    grz: float | None = None
    periods: tuple[FloodSeasonPeriod, ...] = ()

    def at(self, tm: datetime) -> dict[AlertKind, float | None]:
        """The threshold of each kind this station has, as it applies at ``tm``; None: no check then."""
        if self.periods:
            return {"fsltdz": flood_season_limit(self.periods, tm)}
        return {"wrz": self.wrz, "grz": self.grz}


@dataclass(frozen=True)
class FloodAlert:
    """One alert: a station over one kind of threshold, from ``opened_at`` until it closed (or still open)."""

    stcd: str
    kind: AlertKind
    opened_at: datetime
    threshold: float
    """The threshold at opening (a reservoir's may differ in a later period; each reading meets its own)."""
    opened_level: float
    peak_level: float
    peak_at: datetime
    latest_level: float
    latest_at: datetime
    closed_at: datetime | None = None
    close_confirmed_at: datetime | None = None
    below_since: datetime | None = field(default=None, compare=False)
    """While open: the first reading of the current run at or below the threshold (not stored)."""

    @property
    def is_open(self) -> bool:
        return self.close_confirmed_at is None


def flood_season_limit(periods: Iterable[FloodSeasonPeriod], tm: datetime) -> float | None:
    """The FSLTDZ of the period ``tm`` falls in (its month-day in Beijing time, REFERENCE 5), None outside them.

    A period whose ``bgmd`` is after its ``edmd`` crosses the new year (``1101``–``0315``). A null ``edmd`` runs to
    the day before the station's next period begins (the next ``bgmd``, wrapping the year), or all year when it is
    the station's only period: REFERENCE 3.7 says only "runs to season end", and the next period is where the
    season, as the station's table states it, changes.
    """
    month_day = tm.astimezone(BEIJING).strftime("%m%d")
    ordered = sorted(periods, key=lambda period: period.bgmd)
    for index, period in enumerate(ordered):
        end = period.edmd
        if end is None:
            following = ordered[(index + 1) % len(ordered)]
            if following is period:
                return period.fsltdz
            end = _day_before(following.bgmd)
        if _within(month_day, period.bgmd, end):
            return period.fsltdz
    return None


def _within(month_day: str, begin: str, end: str) -> bool:
    if begin <= end:
        return begin <= month_day <= end
    return month_day >= begin or month_day <= end  # crosses the new year


def _day_before(month_day: str) -> str:
    # A leap year, so that the day before 0301 is 0229 and a period may end on it.
    day = date(2024, int(month_day[:2]), int(month_day[2:]))
    return (day - timedelta(days=1)).strftime("%m%d")


def alert_lifecycle(
    readings: Iterable[LevelReading],
    thresholds: Mapping[str, StationThresholds],
    open_alerts: Mapping[tuple[str, AlertKind], FloodAlert] | None = None,
) -> list[FloodAlert]:
    """Every alert the readings open, carry on or close, in order of (station, kind, opened_at).

    ``readings`` may arrive in any order (late ones included); they are taken in time order per station.
    ``open_alerts`` are alerts still open before the first of these readings, by (station, kind): they continue
    (peak, latest, closing) and are returned too. A station missing from ``thresholds`` has no check.
    """
    current: dict[tuple[str, AlertKind], FloodAlert] = dict(open_alerts or {})
    done: list[FloodAlert] = []
    for reading in sorted(readings, key=lambda r: (r.stcd, r.tm)):
        level = reading.level
        if level is None:
            continue
        applicable = thresholds.get(reading.stcd, StationThresholds()).at(reading.tm)
        kinds = set(applicable) | {kind for stcd, kind in current if stcd == reading.stcd}
        for kind in sorted(kinds):
            key = (reading.stcd, kind)
            alert = _step(current.get(key), reading, level, kind, applicable.get(kind))
            if alert is None:
                current.pop(key, None)
            elif alert.is_open:
                current[key] = alert
            else:
                done.append(alert)
                current.pop(key)
    return sorted([*done, *current.values()], key=lambda a: (a.stcd, a.kind, a.opened_at))


def _step(
    alert: FloodAlert | None, reading: LevelReading, level: float, kind: AlertKind, threshold: float | None
) -> FloodAlert | None:
    """One reading (``level``: its level, known to be there) and its effect on the (station, kind) alert: opened,
    carried on, closed, or still none."""
    tm = reading.tm
    is_over = threshold is not None and level > threshold
    if alert is None:
        if not is_over or threshold is None:
            return None
        return FloodAlert(reading.stcd, kind, tm, threshold, level, level, tm, level, tm)
    latest = replace(alert, latest_level=level, latest_at=tm)
    if is_over:
        if level > alert.peak_level:
            latest = replace(latest, peak_level=level, peak_at=tm)
        return replace(latest, below_since=None)
    below_since = alert.below_since or tm
    if tm - below_since >= CLOSE_HOLD:
        return replace(latest, closed_at=below_since, close_confirmed_at=tm, below_since=None)
    return replace(latest, below_since=below_since)
