"""Contracts of the rain and water regime (雨水情) summary, derived from the SL 323 readings and thresholds.

Derived datasets: computed by the hub (``waterhub/derived.toml``), never sent by a source; the summary flood-control
duty officers open first. Rainfall windows end at ``as_of``, the latest rainfall observation time published (not
the clock: see ``waterhub.derivations.rain_water_regime``). Version field ``input_seq``, set by the runner.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field

from contracts.base import Classification, Contract, ContractMeta

__all__ = ["DistrictRainfall", "StationRainfall", "WaterRegime"]

_STCD = Field(pattern=r"^[0-9A-Z]{8}$", max_length=8, description="SL 323 station code (STCD)")
_AS_OF = Field(description="End of the rainfall windows: the latest rainfall observation time published, UTC")
_INPUT_SEQ = Field(description="Sum of the inputs' change-log sequences this row was derived at: orders versions")


def _rain(description: str) -> object:
    return Field(ge=0, description=description, json_schema_extra={"unit": "mm"})


def _meta(key: str, primary_key: tuple[str, ...], title: str) -> ContractMeta:
    return ContractMeta(
        key=key,
        version="1.0.0",
        owner="data-platform",
        classification=Classification.PUBLIC,
        primary_key=primary_key,
        version_field="input_seq",
        title=title,
    )


class StationRainfall(Contract):
    """Rainfall of one station accumulated over the last 1, 3, 6 and 24 hours before ``as_of``: the sum of DRP of
    its periods ending in ``(as_of - window, as_of]``. Missing periods add nothing (``readings_24h`` shows them)."""

    meta: ClassVar[ContractMeta] = _meta(
        "hydrology.station_rainfall", ("stcd",), "Rainfall of each station over the last 1, 3, 6 and 24 hours"
    )

    stcd: Annotated[str, _STCD]
    addvcd: Annotated[
        str | None, Field(None, max_length=6, description="Administrative division (ADDVCD); null: unknown station")
    ]
    as_of: Annotated[AwareDatetime, _AS_OF]
    rain_1h: Annotated[float, _rain("Rainfall in the last hour")]
    rain_3h: Annotated[float, _rain("Rainfall in the last 3 hours")]
    rain_6h: Annotated[float, _rain("Rainfall in the last 6 hours")]
    rain_24h: Annotated[float, _rain("Rainfall in the last 24 hours")]
    readings_24h: Annotated[int, Field(ge=0, description="Rainfall periods of the station in the 24 hours")]
    last_tm: Annotated[AwareDatetime, Field(description="The station's latest rainfall observation time, UTC")]
    input_seq: Annotated[int, _INPUT_SEQ]


class DistrictRainfall(Contract):
    """Rainfall of one administrative division: the mean of its reporting stations' accumulations (arithmetic
    areal mean, the duty summary's rule when no Thiessen weights are kept) and its wettest station."""

    meta: ClassVar[ContractMeta] = _meta(
        "hydrology.district_rainfall", ("addvcd",), "Rainfall of each district over the last 1, 3, 6 and 24 hours"
    )

    addvcd: Annotated[str, Field(max_length=6, description="Administrative division code (ADDVCD)")]
    as_of: Annotated[AwareDatetime, _AS_OF]
    stations: Annotated[int, Field(ge=1, description="Stations of the district with rainfall in the 24 hours")]
    rain_1h: Annotated[float, _rain("Mean rainfall of its stations in the last hour")]
    rain_3h: Annotated[float, _rain("Mean rainfall of its stations in the last 3 hours")]
    rain_6h: Annotated[float, _rain("Mean rainfall of its stations in the last 6 hours")]
    rain_24h: Annotated[float, _rain("Mean rainfall of its stations in the last 24 hours")]
    max_rain_24h: Annotated[float, _rain("Largest 24-hour rainfall of one of its stations")]
    max_rain_24h_stcd: Annotated[str, _STCD]
    input_seq: Annotated[int, _INPUT_SEQ]


class WaterRegime(Contract):
    """Each river or reservoir station's latest level, its trend and its margin to the warning level (WRZ for a
    river, the FSLTDZ of the current period for a reservoir). Levels are relative to the station's datum."""

    meta: ClassVar[ContractMeta] = _meta(
        "hydrology.water_regime", ("stcd",), "Latest level, trend and margin to the warning level of each station"
    )

    stcd: Annotated[str, _STCD]
    station_kind: Annotated[Literal["river", "reservoir"], Field(description="ST_RIVER_R or ST_RSVR_R station")]
    stnm: Annotated[str | None, Field(None, max_length=30, description="Station name (STNM); null: unknown station")]
    tm: Annotated[AwareDatetime, Field(description="Observation time of the latest level, UTC")]
    level: Annotated[float, Field(description="Latest Z (river) or RZ (reservoir)", json_schema_extra={"unit": "m"})]
    trend: Annotated[
        Literal["rising", "falling", "steady"] | None,
        Field(None, description="The reading's own WPTN/RWPTN when sent, else the change over the last hour"),
    ]
    trend_source: Annotated[
        Literal["reported", "computed"] | None,
        Field(None, description="reported: the station's WPTN/RWPTN; computed: from the level an hour before"),
    ]
    warning_kind: Annotated[
        Literal["wrz", "fsltdz"] | None, Field(None, description="The threshold the margin is to; null: none")
    ]
    warning_level: Annotated[
        float | None, Field(None, description="WRZ, or the period's FSLTDZ", json_schema_extra={"unit": "m"})
    ]
    margin_m: Annotated[
        float | None,
        Field(
            None,
            description="Warning level minus level: room left; negative: over by that much; null: no threshold",
            json_schema_extra={"unit": "m"},
        ),
    ]
    input_seq: Annotated[int, _INPUT_SEQ]
