"""GB 3838-2002 classes of the bureau's samples: each hourly sample, and each station-day from its daily means.

Only what the inputs changed is recomputed: the hours whose sample changed, and every day holding one of them (a
corrected hour moves its day's means); a station whose record changed (its water body or target class) has all its
hours and days recomputed. Values take part only with status ``valid`` (flag N or S): the published samples'
one predicate. A day averages one value per measurement cycle: the nutrient analysers measure every few hours and
the hourly rows between repeat the last result, so a run of equal consecutive values is one result (REFERENCE 4.2).
Two cycles that truly read the same value count once too; that bias is small beside over-weighting every cycle by
the hours it was repeated.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from contracts.types import BEIJING
from contracts.water_quality import FACTOR_CODES, WaterQualitySample, WaterQualityStation
from contracts.water_quality_class import DailyWaterClass, HourlyWaterClass
from exchange.tables import dataset_table
from quality.gb3838 import WaterBody, classify, meets_target
from waterhub.derived import DerivationInputs, DerivedRows

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ASSESSED", "CYCLE_FACTORS", "daily_means", "derive"]

ASSESSED = ("ph", "dissolved_oxygen", "permanganate_index", "ammonia_nitrogen", "total_phosphorus")
"""Sample fields that take part (REFERENCE 4.2: what real-time dashboards class); TN is left out by default."""
CYCLE_FACTORS = frozenset({"permanganate_index", "ammonia_nitrogen", "total_phosphorus"})
"""Factors of the nutrient analysers, whose hourly rows repeat one result per measurement cycle."""
MEAN_DECIMALS = 4
"""Daily means are rounded so float noise cannot push a mean on a limit (0.1 + 0.1 + 0.1) / 3 into a worse class;
four decimals resolve every limit of GB 3838 Table 1 (TP 0.025 needs three)."""

_CODES = {name: code for code, name in FACTOR_CODES.items()}
_SAMPLES, _STATIONS = WaterQualitySample.meta.key, WaterQualityStation.meta.key
_DAY = timedelta(days=1)


def derive(inputs: DerivationInputs) -> dict[str, DerivedRows]:
    """Hourly and daily classes of every hour and station-day the inputs' changes touched."""
    import pandas as pd

    changed_hours = inputs.changes[_SAMPLES]
    changed_stations = set(inputs.changes[_STATIONS]["station_code"])
    samples = _samples(inputs, changed_hours, changed_stations)
    hours = pd.concat(
        [changed_hours[["station_code", "sampled_at"]], samples.loc[samples["station_code"].isin(changed_stations)]]
    )[["station_code", "sampled_at"]].drop_duplicates(ignore_index=True)
    hours["day"] = _beijing_day(hours["sampled_at"])
    days = hours[["station_code", "day"]].drop_duplicates(ignore_index=True)
    stations = _stations(inputs, set(hours["station_code"]))
    samples = samples.merge(stations, on="station_code")  # a sample of no known station gets no class
    samples["day"] = _beijing_day(samples["sampled_at"])
    samples = samples.merge(days, on=["station_code", "day"])

    hourly = samples.merge(hours[["station_code", "sampled_at"]], on=["station_code", "sampled_at"])
    hourly_rows = _classed(
        hourly[["station_code", "sampled_at", "water_body_type", "target_class"]],
        [_hour_values(row) for row in hourly.to_dict("records")],
        hourly["water_body_type"].tolist(),
    )
    daily_rows = _daily_rows(samples)
    return {
        HourlyWaterClass.meta.key: DerivedRows(
            hourly_rows, _missing(hours, hourly_rows, ["station_code", "sampled_at"])
        ),
        DailyWaterClass.meta.key: DerivedRows(daily_rows, _missing(days, daily_rows, ["station_code", "day"])),
    }


def _samples(inputs: DerivationInputs, changed_hours: pd.DataFrame, changed_stations: set[str]) -> pd.DataFrame:
    """The published samples of every station-day a changed hour lies in, and every sample of a changed station."""
    import pandas as pd

    table = dataset_table(WaterQualitySample)
    columns = [table.c.station_code, table.c.sampled_at] + [
        table.c[field] for name in ASSESSED for field in (name, f"{name}_status")
    ]
    frames = []
    if changed_stations:
        frames.append(_read(inputs, select(*columns).where(table.c.station_code.in_(sorted(changed_stations)))))
    if not changed_hours.empty:
        day_starts = _day_start(_beijing_day(changed_hours["sampled_at"]))
        query = select(*columns).where(
            table.c.station_code.in_(sorted(set(changed_hours["station_code"]))),
            table.c.sampled_at >= day_starts.min().to_pydatetime(),
            table.c.sampled_at < (day_starts.max() + _DAY).to_pydatetime(),
        )
        frames.append(_read(inputs, query))
    if not frames:
        return _read(inputs, select(*columns).where(table.c.station_code.is_(None)))
    return pd.concat(frames, ignore_index=True).drop_duplicates(["station_code", "sampled_at"], ignore_index=True)


def _stations(inputs: DerivationInputs, codes: set[str]) -> pd.DataFrame:
    table = dataset_table(WaterQualityStation)
    query = select(table.c.station_code, table.c.water_body_type, table.c.target_class)
    return _read(inputs, query.where(table.c.station_code.in_(sorted(codes))))


def _read(inputs: DerivationInputs, query: Any) -> pd.DataFrame:
    import pandas as pd

    result = inputs.conn.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()), dtype=object)
    if "sampled_at" in frame.columns:
        frame["sampled_at"] = pd.to_datetime(frame["sampled_at"], utc=True)
    return frame


def _beijing_day(times: pd.Series) -> pd.Series:
    """The Beijing calendar date of each UTC time, as ``YYYY-MM-DD``: the day agencies report by."""
    import pandas as pd

    return pd.to_datetime(times, utc=True).dt.tz_convert(BEIJING).dt.strftime("%Y-%m-%d")


def _day_start(days: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(days).dt.tz_localize(BEIJING).dt.tz_convert("UTC")


def _hour_values(row: Mapping[str, Any]) -> dict[str, float | None]:
    """One sample's valid values by HJ 212 code: a factor with any other status does not take part."""
    return {_CODES[name]: row[name] for name in ASSESSED if row[f"{name}_status"] == "valid" and row[name] is not None}


def daily_means(day: pd.DataFrame) -> dict[str, float | None]:
    """One station-day's mean of each assessed factor over its valid values, one value per measurement cycle for
    the nutrient factors (a run of equal consecutive hourly values is one result); None when none is valid."""
    ordered = day.sort_values("sampled_at")
    means: dict[str, float | None] = {}
    for name in ASSESSED:
        values = ordered.loc[ordered[f"{name}_status"] == "valid", name].dropna().astype(float)
        if name in CYCLE_FACTORS:
            values = values[values != values.shift()]
        means[name] = round(float(values.mean()), MEAN_DECIMALS) if len(values) else None
    return means


def _daily_rows(samples: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for (station_code, day), group in samples.groupby(["station_code", "day"], sort=True):
        first = group.iloc[0]
        rows.append(
            {
                "station_code": station_code,
                "day": day,
                "water_body_type": first["water_body_type"],
                "target_class": first["target_class"],
                "samples": len(group),
                **daily_means(group),
            }
        )
    frame = pd.DataFrame(rows, columns=["station_code", "day", "water_body_type", "target_class", "samples", *ASSESSED])
    means = [{_CODES[name]: row[name] for name in ASSESSED} for row in frame.to_dict("records")]
    return _classed(frame, means, frame["water_body_type"].tolist())


def _classed(frame: pd.DataFrame, values: list[dict[str, float | None]], bodies: list[WaterBody]) -> pd.DataFrame:
    """``frame`` with each row's class, deciding factors and whether it meets its station's target."""
    import pandas as pd

    results = [classify(row, body) for row, body in zip(values, bodies, strict=True)]
    targets = [None if pd.isna(target) else target for target in frame["target_class"]]
    return frame.assign(
        target_class=targets,
        water_class=[result.water_class for result in results],
        deciding_factors=[",".join(result.deciding_factors) or None for result in results],
        meets_target=[meets_target(r.water_class, t) for r, t in zip(results, targets, strict=True)],
    ).reset_index(drop=True)


def _missing(wanted: pd.DataFrame, found: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """Keys to recompute that no longer derive from anything (their sample, or their station, is gone)."""
    merged = wanted[key].merge(found[key], on=key, how="left", indicator=True)
    return merged.loc[merged["_merge"] == "left_only", key].reset_index(drop=True)
