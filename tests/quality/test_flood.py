"""The flood-alert lifecycle on hand-drawn hydrographs, and the flood-season period lookup (REFERENCE 5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from quality.flood import (
    CLOSE_HOLD,
    FloodSeasonPeriod,
    LevelReading,
    StationThresholds,
    alert_lifecycle,
    flood_season_limit,
)

T0 = datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
RIVER = "81000002"
RIVER_LIMITS = {RIVER: StationThresholds(wrz=10.0, grz=12.0)}


def _hydrograph(levels: Sequence[float | None], stcd: str = RIVER, step_min: int = 15) -> list[LevelReading]:
    return [LevelReading(stcd, T0 + timedelta(minutes=step_min * i), z) for i, z in enumerate(levels)]


def _at(index: int, step_min: int = 15) -> datetime:
    return T0 + timedelta(minutes=step_min * index)


def test_a_rising_and_falling_flood_opens_once_tracks_its_peak_and_closes_once() -> None:
    #          0    1     2     3     4     5    6    7    8    9    10
    levels = [9.0, 9.8, 10.2, 10.9, 11.4, 10.6, 9.9, 9.7, 9.5, 9.4, 9.3]
    (alert,) = alert_lifecycle(_hydrograph(levels), RIVER_LIMITS)
    assert (alert.kind, alert.opened_at, alert.opened_level, alert.threshold) == ("wrz", _at(2), 10.2, 10.0)
    assert (alert.peak_level, alert.peak_at) == (11.4, _at(4))
    # back at or below from reading 6; an hour (four 15-minute steps) later, reading 10, the close is confirmed
    assert (alert.closed_at, alert.close_confirmed_at) == (_at(6), _at(10))
    assert _at(10) - _at(6) == CLOSE_HOLD
    assert not alert.is_open


def test_a_level_dipping_below_for_less_than_the_hold_does_not_close_and_a_second_rise_reopens() -> None:
    levels = [10.5, 9.9, 9.8, 10.3, 9.0, 9.0, 9.0, 9.0, 9.0, 10.4, 10.8]
    first, second = alert_lifecycle(_hydrograph(levels), RIVER_LIMITS)
    # the dip at readings 1-2 (30 min) is not a close: one alert spans it
    assert (first.opened_at, first.peak_level, first.closed_at, first.close_confirmed_at) == (
        _at(0),
        10.5,
        _at(4),
        _at(8),
    )
    assert (second.opened_at, second.peak_level, second.peak_at, second.is_open) == (_at(9), 10.8, _at(10), True)
    assert (second.latest_level, second.latest_at) == (10.8, _at(10))


def test_over_the_guaranteed_level_is_its_own_alert_beside_the_warning_one() -> None:
    levels = [11.0, 12.3, 12.1, 11.5, 9.0, 9.0, 9.0, 9.0, 9.0]
    alerts = alert_lifecycle(_hydrograph(levels), RIVER_LIMITS)
    assert [(a.kind, a.opened_at, a.peak_level, a.closed_at) for a in alerts] == [
        ("grz", _at(1), 12.3, _at(3)),
        ("wrz", _at(0), 12.3, _at(4)),
    ]


def test_a_level_on_the_threshold_is_not_over_it_and_a_missing_threshold_is_no_check() -> None:
    assert alert_lifecycle(_hydrograph([10.0, 10.0, 10.0]), RIVER_LIMITS) == []
    no_grz = {RIVER: StationThresholds(wrz=None, grz=None)}
    assert alert_lifecycle(_hydrograph([50.0, 60.0]), no_grz) == []
    assert alert_lifecycle(_hydrograph([50.0]), {}) == []  # a station without thresholds


def test_readings_out_of_order_and_without_a_level_give_the_same_alerts() -> None:
    levels = [9.0, 10.4, 11.0, None, 10.2, 9.5, 9.5, 9.5, 9.5, 9.5]
    in_order = alert_lifecycle(_hydrograph(levels), RIVER_LIMITS)
    shuffled = _hydrograph(levels)[::-1]
    assert alert_lifecycle(shuffled, RIVER_LIMITS) == in_order
    (alert,) = in_order
    assert (alert.opened_at, alert.peak_level, alert.closed_at, alert.close_confirmed_at) == (
        _at(1),
        11.0,
        _at(5),
        _at(9),
    )


def test_an_alert_open_before_the_readings_continues_and_closes() -> None:
    (opened,) = alert_lifecycle(_hydrograph([10.5, 11.2]), RIVER_LIMITS)
    later = [LevelReading(RIVER, _at(2 + i), z) for i, z in enumerate([10.8, 9.0, 9.0, 9.0, 9.0, 9.0])]
    (continued,) = alert_lifecycle(later, RIVER_LIMITS, {(RIVER, "wrz"): opened})
    assert (continued.opened_at, continued.peak_level, continued.peak_at) == (_at(0), 11.2, _at(1))
    assert (continued.closed_at, continued.close_confirmed_at) == (_at(3), _at(7))


PERIODS = (
    FloodSeasonPeriod("0415", "0715", 48.0),  # main flood season
    FloodSeasonPeriod("0716", "1015", 49.2),  # late flood season
)


def _beijing(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC) - timedelta(hours=8)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (_beijing(4, 15, 0), 48.0),  # first day of the main season, 00:00 Beijing (16:00 UTC the day before)
        (_beijing(4, 14, 23), None),  # before it: no check
        (_beijing(7, 15, 23), 48.0),
        (_beijing(7, 16, 0), 49.2),  # the late season's limit from 00:00 Beijing on 16 July
        (_beijing(10, 15), 49.2),
        (_beijing(10, 16), None),
    ],
)
def test_the_limit_is_the_one_of_the_period_the_beijing_month_day_falls_in(
    when: datetime, expected: float | None
) -> None:
    assert flood_season_limit(PERIODS, when) == expected


def test_a_period_across_the_new_year_wraps_and_an_open_end_runs_to_the_next_period() -> None:
    winter = (FloodSeasonPeriod("1101", "0315", 30.0), FloodSeasonPeriod("0601", None, 28.0))
    assert flood_season_limit(winter, _beijing(12, 31)) == 30.0
    assert flood_season_limit(winter, _beijing(1, 1)) == 30.0
    assert flood_season_limit(winter, _beijing(3, 16)) is None
    assert flood_season_limit(winter, _beijing(10, 31)) == 28.0  # 0601 with no end runs to the day before 1101
    assert flood_season_limit((FloodSeasonPeriod("0601", None, 28.0),), _beijing(2, 1)) == 28.0


def test_a_reservoir_alert_meets_each_period_limit_and_closes_when_the_season_ends() -> None:
    reservoir = "81000010"
    limits = {reservoir: StationThresholds(periods=PERIODS)}
    # 48.5 is over the main-season limit (48.0) but under the late one (49.2); hourly readings across 16 July 00:00
    start = _beijing(7, 15, 21)
    readings = [LevelReading(reservoir, start + timedelta(hours=i), 48.5) for i in range(6)]
    (alert,) = alert_lifecycle(readings, limits)
    assert (alert.kind, alert.opened_at, alert.threshold) == ("fsltdz", start, 48.0)
    assert (alert.closed_at, alert.close_confirmed_at) == (_beijing(7, 16, 0), _beijing(7, 16, 1))
