"""Rows and frames the exchange tests publish: typed the way the quality runner hands frames over."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from contracts import Contract
from exchange.publish import PublishResult, publish_frame

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def typed_frame(contract: type[Contract], rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """µs UTC times, float64, Int64, boolean, str; NA for gaps."""
    specs = contract.field_specs()
    frame = pd.DataFrame([{spec.name: row.get(spec.name) for spec in specs} for row in rows])
    frame = frame.reindex(columns=[spec.name for spec in specs])
    for spec in specs:
        column = frame[spec.name]
        if spec.type == "datetime":
            frame[spec.name] = pd.to_datetime(column, utc=True).dt.as_unit("us")
        elif spec.type == "number":
            frame[spec.name] = column.astype("float64")
        elif spec.type == "integer":
            frame[spec.name] = column.astype("Int64")
        elif spec.type == "boolean":
            frame[spec.name] = column.astype("boolean")
        else:
            frame[spec.name] = column.astype("str")
    return frame


def sample(station: str, hour: int, **values: object) -> dict[str, Any]:
    sampled_at = T0 + timedelta(hours=hour)
    return {
        "station_code": station,
        "sampled_at": sampled_at,
        "updated_at": sampled_at + timedelta(minutes=20),
        "ph": 7.1 + hour / 100,
        "ph_flag": "N",
        "ammonia_nitrogen": 0.25,
        "ammonia_nitrogen_flag": "N",
        **values,
    }


def station(code: str, name: str = "Xiaoguan bridge") -> dict[str, object]:
    return {
        "station_code": code,
        "name": name,
        "river": "Liangma river",
        "district": "Chaoyang",
        "water_body_type": "river",
        "longitude": 116.45,
        "latitude": 39.95,
        "updated_at": T0,
        "target_class": None,
    }


def publish(
    engine: Engine, contract: type[Contract], rows: Sequence[Mapping[str, object]], run_id: str, now: datetime = NOW
) -> PublishResult:
    """One publish in its own transaction, as a DAG's publish task does it."""
    with engine.begin() as conn:
        return publish_frame(conn, contract, typed_frame(contract, rows), run_id=run_id, now=now)
