"""Contracts of the GB 3838-2002 water-quality class, derived from the bureau's samples and stations.

Derived datasets: computed by the hub (``waterhub/derived.toml``), never sent by a source. Their version field
``input_seq`` is the inputs' change-log position a row was computed at, set by the derived-dataset runner.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field

from contracts.base import Classification, Contract, ContractMeta, Reference

__all__ = ["DailyWaterClass", "HourlyWaterClass"]

_Class = Literal["I", "II", "III", "IV", "V", "劣V"]
_Target = Literal["I", "II", "III", "IV", "V"]

_STATION = Field(pattern=r"^[0-9]{8}$", max_length=8, description="Bureau station code (8 digits)")
_WATER_BODY = Field(description="GB 3838 water body of the station: river, or lake (lakes and reservoirs)")
_CLASS = Field(description="GB 3838-2002 class by the single-factor method; null: no valid assessed value")
_DECIDING = Field(
    max_length=200, description="HJ 212 codes of the factors that set the class, comma-separated; null: no class"
)
_TARGET = Field(description="The station's target class (water_quality.stations); null: none set")
_MEETS = Field(description="Whether the class is as good as the target or better; null: no class or no target")
_INPUT_SEQ = Field(description="Sum of the inputs' change-log sequences this row was derived at: orders versions")


def _mean(factor: str, unit: str) -> object:
    return Field(
        None, description=f"Daily mean of {factor}, one value per measurement cycle", json_schema_extra={"unit": unit}
    )


def _meta(key: str, primary_key: tuple[str, ...], title: str) -> ContractMeta:
    """What both class datasets share: owner, classification, the runner-set version, the station reference."""
    return ContractMeta(
        key=key,
        version="1.0.0",
        owner="data-platform",
        classification=Classification.PUBLIC,
        primary_key=primary_key,
        version_field="input_seq",
        title=title,
        references=(Reference("station_code", "water_quality.stations", reason="unknown_station"),),
    )


class HourlyWaterClass(Contract):
    """The class of one hourly sample: its valid values of pH, DO, CODMn, NH3-N and TP under its station's limits."""

    meta: ClassVar[ContractMeta] = _meta(
        "water_quality.hourly_classes",
        ("station_code", "sampled_at"),
        "GB 3838-2002 class of each hourly water-quality sample",
    )

    station_code: Annotated[str, _STATION]
    sampled_at: Annotated[AwareDatetime, Field(description="Start of the sampling hour, UTC")]
    water_body_type: Annotated[Literal["river", "lake"], _WATER_BODY]
    water_class: Annotated[_Class | None, _CLASS]
    deciding_factors: Annotated[str | None, _DECIDING]
    target_class: Annotated[_Target | None, _TARGET]
    meets_target: Annotated[bool | None, _MEETS]
    input_seq: Annotated[int, _INPUT_SEQ]


class DailyWaterClass(Contract):
    """The class of one station-day (Beijing calendar day) from its daily means, each factor averaged over one
    value per measurement cycle: nutrient analysers measure every few hours and their hourly rows repeat the last
    result (REFERENCE 4.2)."""

    meta: ClassVar[ContractMeta] = _meta(
        "water_quality.daily_classes", ("station_code", "day"), "GB 3838-2002 class of each station-day"
    )

    station_code: Annotated[str, _STATION]
    day: Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", max_length=10, description="Beijing date")]
    water_body_type: Annotated[Literal["river", "lake"], _WATER_BODY]
    water_class: Annotated[_Class | None, _CLASS]
    deciding_factors: Annotated[str | None, _DECIDING]
    target_class: Annotated[_Target | None, _TARGET]
    meets_target: Annotated[bool | None, _MEETS]
    samples: Annotated[int, Field(ge=0, description="Hourly samples of the station that day")]
    ph: Annotated[float | None, _mean("pH", "dimensionless")]
    dissolved_oxygen: Annotated[float | None, _mean("dissolved oxygen", "mg/L")]
    permanganate_index: Annotated[float | None, _mean("the permanganate index", "mg/L")]
    ammonia_nitrogen: Annotated[float | None, _mean("ammonia nitrogen", "mg/L")]
    total_phosphorus: Annotated[float | None, _mean("total phosphorus", "mg/L")]
    input_seq: Annotated[int, _INPUT_SEQ]
