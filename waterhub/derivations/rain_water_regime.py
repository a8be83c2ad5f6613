"""The rain and water regime (雨水情) summary: rainfall over the last 1, 3, 6 and 24 hours per station and per
district, and each river or reservoir station's latest level, trend and margin to its warning level.

**Windows end at ``as_of``, the latest rainfall observation time published**, not at the run's clock. A derived
run has no business reading the clock (STYLE rule 3): the same inputs give the same rows, so a rerun writes nothing
and a backfill or a replayed day reads as it did then. The price is that a feed that stops keeps showing its last
windows; each station's ``last_tm`` and the dataset's freshness check show that, where a clock-based window would
silently show zero rain.

A rainfall row (``ST_PPTN_R``) covers the period ending at its ``tm``, so a window of ``h`` hours takes the periods
ending in ``(as_of - h, as_of]``: a reading exactly one hour old closed before the last hour began and counts in
the 3-hour window, not the 1-hour one. A missing period adds nothing (no interpolation); ``readings_24h`` says how
many periods a station sent. When ``as_of`` moves every station's windows move, so station and district rainfall
are recomputed whole when rainfall or stations changed (an aggregate in the database over one day of rows); rows
that came out as stored are not republished.

The water regime is recomputed for the stations whose readings, thresholds or record changed. **Trend**: the
station's own ``WPTN``/``RWPTN`` on its latest reading when sent (SL 323: 4 falling, 5 rising, 6 steady), else the
change since the station's latest level at least an hour older (within ``TREND_LOOKBACK``): more than
``STEADY_BAND`` up is rising, down is falling, else steady; no such level, no trend.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import case, func, select

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
from quality.flood import StationThresholds
from waterhub.derivations.flood_warnings import station_names, station_thresholds
from waterhub.derivations.tables import changed_only, read_frame
from waterhub.derived import DerivationInputs, DerivedRows

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STEADY_BAND", "TREND_LOOKBACK", "WINDOWS", "derive", "level_trend"]

WINDOWS = {"rain_1h": timedelta(hours=1), "rain_3h": timedelta(hours=3), "rain_6h": timedelta(hours=6)}
"""The windows below the day; the 24-hour one bounds the query itself."""
DAY = timedelta(hours=24)
STEADY_BAND = 0.01
"""Metres: a level within a centimetre of the one an hour before is steady (SL 323 stores centimetres)."""
TREND_LOOKBACK = timedelta(hours=6)
"""How far back a computed trend looks for a level at least an hour older before giving up."""

_REPORTED = {"4": "falling", "5": "rising", "6": "steady"}
_OBSERVATIONS = ((RiverRecord, "river", "z", "wptn"), (ReservoirRecord, "reservoir", "rz", "rwptn"))
_REGIME_SETTINGS = (RiverThresholds, ReservoirFloodSeasonLimit, Station)


def derive(inputs: DerivationInputs) -> dict[str, DerivedRows]:
    """Station and district rainfall when rainfall or stations changed; the water regime of changed stations."""
    rain_changed = not inputs.changes[RainfallRecord.meta.key].empty or not inputs.changes[Station.meta.key].empty
    stations, districts = _rainfall(inputs) if rain_changed else (_empty(StationRainfall), _empty(DistrictRainfall))
    return {
        StationRainfall.meta.key: stations,
        DistrictRainfall.meta.key: districts,
        WaterRegime.meta.key: _water_regime(inputs),
    }


def _columns(contract: type[StationRainfall | DistrictRainfall | WaterRegime]) -> list[str]:
    return [spec.name for spec in contract.field_specs() if spec.name != contract.meta.version_field]


def _empty(contract: type[StationRainfall | DistrictRainfall | WaterRegime]) -> DerivedRows:
    import pandas as pd

    return DerivedRows(pd.DataFrame(columns=_columns(contract)))


def _rainfall(inputs: DerivationInputs) -> tuple[DerivedRows, DerivedRows]:
    import pandas as pd

    rain = dataset_table(RainfallRecord)
    as_of = inputs.conn.execute(select(func.max(rain.c.tm))).scalar()
    if as_of is None:
        return _empty(StationRainfall), _empty(DistrictRainfall)
    as_of = pd.Timestamp(as_of).tz_localize("UTC") if pd.Timestamp(as_of).tzinfo is None else pd.Timestamp(as_of)
    end = as_of.to_pydatetime()
    sums = [
        func.coalesce(func.sum(case((rain.c.tm > end - window, rain.c.drp), else_=0.0)), 0.0).label(name)
        for name, window in WINDOWS.items()
    ]
    query = (
        select(
            rain.c.stcd,
            *sums,
            func.coalesce(func.sum(rain.c.drp), 0.0).label("rain_24h"),
            func.count(rain.c.drp).label("readings_24h"),
            func.max(rain.c.tm).label("last_tm"),
        )
        .where(rain.c.tm > end - DAY, rain.c.tm <= end)
        .group_by(rain.c.stcd)
    )
    per_station = read_frame(inputs.conn, query, ("last_tm",))
    stations = dataset_table(Station)
    codes = read_frame(inputs.conn, select(stations.c.stcd, stations.c.addvcd))
    per_station = per_station.merge(codes, on="stcd", how="left").assign(as_of=as_of)
    for name in [*WINDOWS, "rain_24h"]:
        per_station[name] = per_station[name].astype(float).round(1)  # DRP has one decimal (NUMERIC(5,1))
    per_station["readings_24h"] = per_station["readings_24h"].astype(int)
    per_station["addvcd"] = per_station["addvcd"].where(per_station["addvcd"].notna(), None)
    station_rows = per_station[_columns(StationRainfall)].sort_values("stcd", ignore_index=True)
    district_rows = _districts(per_station, as_of)
    return (
        DerivedRows(
            changed_only(inputs.conn, StationRainfall, station_rows), _gone(inputs, StationRainfall, station_rows)
        ),
        DerivedRows(
            changed_only(inputs.conn, DistrictRainfall, district_rows),
            _gone(inputs, DistrictRainfall, district_rows),
        ),
    )


def _districts(per_station: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Each district's areal mean over its reporting stations, and its wettest station (the first code on ties)."""
    import pandas as pd

    known = per_station.loc[per_station["addvcd"].notna()].sort_values(["addvcd", "stcd"])
    if known.empty:
        return pd.DataFrame(columns=_columns(DistrictRainfall))
    grouped = known.groupby("addvcd", sort=True)
    means = grouped[[*WINDOWS, "rain_24h"]].mean().round(1)
    wettest = known.loc[grouped["rain_24h"].idxmax()].set_index("addvcd")
    frame = means.assign(
        as_of=as_of,
        stations=grouped.size(),
        max_rain_24h=wettest["rain_24h"],
        max_rain_24h_stcd=wettest["stcd"],
    ).reset_index()
    return frame[_columns(DistrictRainfall)]


def _gone(inputs: DerivationInputs, contract: type[StationRainfall | DistrictRainfall], rows: pd.DataFrame) -> Any:
    """Stored keys the recomputation no longer has (a station with no rain period in the last day): deleted."""
    table = dataset_table(contract)
    (key,) = contract.meta.primary_key
    stored = read_frame(inputs.conn, select(table.c[key]))
    return stored.loc[~stored[key].isin(set(rows[key]))].reset_index(drop=True)


def _water_regime(inputs: DerivationInputs) -> DerivedRows:
    import pandas as pd

    changed = {str(code) for contract, *_ in _OBSERVATIONS for code in inputs.changes[contract.meta.key]["stcd"]}
    changed |= {str(code) for contract in _REGIME_SETTINGS for code in inputs.changes[contract.meta.key]["stcd"]}
    if not changed:
        return _empty(WaterRegime)
    stations = sorted(changed)
    thresholds = station_thresholds(inputs, stations)
    names = station_names(inputs, stations)
    rows = []
    for contract, kind, level, trend in _OBSERVATIONS:
        for stcd, readings in _recent_levels(inputs, contract, level, trend, stations).groupby("stcd", sort=True):
            latest = readings.iloc[-1]
            reported = _REPORTED.get(latest["trend"]) if isinstance(latest["trend"], str) else None
            older = readings.loc[readings["tm"] <= latest["tm"] - timedelta(hours=1), "level"]
            computed = level_trend(float(latest["level"]), None if older.empty else float(older.iloc[-1]))
            warning = _warning(thresholds.get(str(stcd)), kind, latest["tm"].to_pydatetime())
            rows.append(
                {
                    "stcd": stcd,
                    "station_kind": kind,
                    "stnm": names.get(stcd),
                    "tm": latest["tm"],
                    "level": float(latest["level"]),
                    "trend": reported or computed,
                    "trend_source": "reported" if reported else "computed" if computed else None,
                    "warning_kind": None if warning is None else ("wrz" if kind == "river" else "fsltdz"),
                    "warning_level": warning,
                    "margin_m": None if warning is None else round(warning - float(latest["level"]), 3),
                }
            )
    found = pd.DataFrame(rows, columns=_columns(WaterRegime))
    gone = pd.DataFrame({"stcd": sorted(changed - set(found["stcd"]))})
    return DerivedRows(changed_only(inputs.conn, WaterRegime, found), gone)


def _recent_levels(
    inputs: DerivationInputs, contract: type[RiverRecord | ReservoirRecord], level: str, trend: str, stations: list[str]
) -> pd.DataFrame:
    """Each station's levels from ``TREND_LOOKBACK`` before its latest level on, oldest first."""
    table = dataset_table(contract)
    has_level = table.c[level].is_not(None)
    latest_query = select(table.c.stcd, func.max(table.c.tm).label("latest")).where(
        table.c.stcd.in_(stations), has_level
    )
    latest = read_frame(inputs.conn, latest_query.group_by(table.c.stcd), ("latest",))
    if latest.empty:
        return latest.assign(tm=latest["latest"], level=None, trend=None)
    query = select(table.c.stcd, table.c.tm, table.c[level].label("level"), table.c[trend].label("trend")).where(
        table.c.stcd.in_(sorted(latest["stcd"])),
        has_level,
        table.c.tm >= (latest["latest"].min() - TREND_LOOKBACK).to_pydatetime(),
    )
    frame = read_frame(inputs.conn, query, ("tm",)).merge(latest, on="stcd")
    recent = (frame["tm"] >= frame["latest"] - TREND_LOOKBACK) & (frame["tm"] <= frame["latest"])
    return frame.loc[recent].sort_values(["stcd", "tm"], ignore_index=True)


def level_trend(level: float, hour_before: float | None) -> Literal["rising", "falling", "steady"] | None:
    """Rising or falling by more than ``STEADY_BAND`` since the level an hour before, else steady; None: no level
    to compare with."""
    if hour_before is None:
        return None
    change = round(level - hour_before, 3)
    return "rising" if change > STEADY_BAND else "falling" if change < -STEADY_BAND else "steady"


def _warning(thresholds: StationThresholds | None, kind: str, tm: datetime) -> float | None:
    """WRZ for a river; the FSLTDZ of the period ``tm`` falls in for a reservoir; None: no threshold."""
    if thresholds is None:
        return None
    return thresholds.at(tm).get("wrz" if kind == "river" else "fsltdz")
