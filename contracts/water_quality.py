"""Contracts of the Ecology and Environment Bureau's automatic surface-water quality stations.

Factor aliases are the HJ 212-2017 pollutant codes (HJ 525), so a device payload keyed by code validates as is.
Each factor carries its HJ 212 data flag and the status the hub judged; only valid values (flag N or S) take part in
GB 3838 classing downstream.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, JsonValue

from contracts.base import Classification, Contract, ContractMeta, Reference
from contracts.types import BeijingTime, Concentration, FactorStatus, FlagLetter, HourStart

__all__ = ["FACTOR_CODES", "WaterQualitySample", "WaterQualityStation"]

StationCode = Annotated[
    # ASCII digits only: ``\d`` also takes full-width and Arabic-Indic digits, which would publish as other keys.
    str,
    Field(pattern=r"^[0-9]{8}$", description="Bureau station code (8 digits)", max_length=8),
]


def _value(
    code: str,
    factor: str,
    description: str,
    unit: str,
    *,
    ge: float | None = None,
    le: float | None = None,
    detection_limit: float | None = None,
) -> object:
    extra: dict[str, JsonValue] = {"unit": unit, "x-factor": factor}
    if detection_limit is not None:
        extra["x-detection-limit"] = detection_limit
    return Field(None, alias=code, ge=ge, le=le, description=description, json_schema_extra=extra)


def _flag(code: str, factor: str) -> object:
    return Field(
        None, alias=f"{code}-Flag", description=f"HJ 212 data flag of {code}", json_schema_extra={"x-factor": factor}
    )


def _status(factor: str) -> object:
    return Field(
        None,
        description=f"What the hub judged of {factor}: valid, over_range, invalid, below_detection or rejected",
        json_schema_extra={"x-factor": factor, "x-derived": True},
    )


class WaterQualityStation(Contract):
    """An automatic water-quality station: where it is, what kind of water body it watches, and the class its section
    must meet."""

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="water_quality.stations",
        version="1.1.0",  # 1.1: target_class added, optional, so 1.0 rows stay valid and the table gains a column
        owner="ecology-environment-bureau",
        classification=Classification.PUBLIC,
        primary_key=("station_code",),
        version_field="updated_at",
        title="Automatic surface-water quality stations",
        cursor_field="updated_at",
    )

    station_code: StationCode
    name: Annotated[str, Field(min_length=1, max_length=60, description="Station name")]
    river: Annotated[str, Field(min_length=1, max_length=60, description="River or lake the station is on")]
    district: Annotated[str, Field(min_length=1, max_length=30, description="Administrative district")]
    water_body_type: Annotated[
        Literal["river", "lake"],
        Field(description="GB 3838 water body: river, or lake (lakes and reservoirs use stricter TP limits)"),
    ]
    longitude: Annotated[
        float, Field(ge=73, le=136, description="Longitude, WGS 84", json_schema_extra={"unit": "degree"})
    ]
    latitude: Annotated[float, Field(ge=3, le=54, description="Latitude, WGS 84", json_schema_extra={"unit": "degree"})]
    updated_at: Annotated[BeijingTime, Field(description="When the bureau last changed the record (UTC)")]
    target_class: Annotated[
        Literal["I", "II", "III", "IV", "V"] | None,
        Field(description="GB 3838-2002 class the section's water-function zone must meet (水质目标); null: none set"),
    ] = None


class WaterQualitySample(Contract):
    """One hourly sample of an automatic surface-water station; aliases are HJ 212 factor codes.

    Each factor is judged on its own, as station engineers judge each analyser: a value that fails its checks is
    withheld (null, status ``rejected``) and the other factors are still published. ``<factor>_status`` says what a
    consumer may do with the value, so one predicate (``status = 'valid'``) keeps valid values only.
    """

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="water_quality.samples",
        version="2.0.0",
        owner="ecology-environment-bureau",
        classification=Classification.PUBLIC,
        primary_key=("station_code", "sampled_at"),
        version_field="updated_at",
        title="Hourly automatic surface-water quality samples",
        cursor_field="updated_at",
        references=(Reference("station_code", "water_quality.stations", reason="unknown_station"),),
    )

    station_code: StationCode
    sampled_at: Annotated[HourStart, Field(description="Start of the sampling hour (HJ 212 interval start), UTC")]
    updated_at: Annotated[BeijingTime, Field(description="When the bureau last changed the sample (UTC)")]
    ph: Annotated[float | None, _value("w01001", "ph", "pH", "dimensionless", ge=0, le=14)]
    ph_flag: Annotated[FlagLetter | None, _flag("w01001", "ph")]
    ph_status: Annotated[FactorStatus | None, _status("ph")]
    dissolved_oxygen: Annotated[
        Concentration | None,
        _value("w01009", "dissolved_oxygen", "Dissolved oxygen", "mg/L", le=25, detection_limit=0.2),
    ]
    dissolved_oxygen_flag: Annotated[FlagLetter | None, _flag("w01009", "dissolved_oxygen")]
    dissolved_oxygen_status: Annotated[FactorStatus | None, _status("dissolved_oxygen")]
    water_temperature: Annotated[
        float | None, _value("w01010", "water_temperature", "Water temperature", "°C", ge=-5, le=45)
    ]
    water_temperature_flag: Annotated[FlagLetter | None, _flag("w01010", "water_temperature")]
    water_temperature_status: Annotated[FactorStatus | None, _status("water_temperature")]
    conductivity: Annotated[
        Concentration | None,
        # Estuary stations see seawater (about 53,000 µS/cm at salinity 35) in salt-tide season (REFERENCE trap 19).
        _value("w01014", "conductivity", "Conductivity", "µS/cm", le=100_000, detection_limit=1),
    ]
    conductivity_flag: Annotated[FlagLetter | None, _flag("w01014", "conductivity")]
    conductivity_status: Annotated[FactorStatus | None, _status("conductivity")]
    permanganate_index: Annotated[
        Concentration | None,
        _value("w01019", "permanganate_index", "Permanganate index (CODMn)", "mg/L", le=100, detection_limit=0.5),
    ]
    permanganate_index_flag: Annotated[FlagLetter | None, _flag("w01019", "permanganate_index")]
    permanganate_index_status: Annotated[FactorStatus | None, _status("permanganate_index")]
    ammonia_nitrogen: Annotated[
        Concentration | None,
        _value("w21003", "ammonia_nitrogen", "Ammonia nitrogen (NH3-N)", "mg/L", le=100, detection_limit=0.025),
    ]
    ammonia_nitrogen_flag: Annotated[FlagLetter | None, _flag("w21003", "ammonia_nitrogen")]
    ammonia_nitrogen_status: Annotated[FactorStatus | None, _status("ammonia_nitrogen")]
    total_phosphorus: Annotated[
        Concentration | None,
        _value("w21011", "total_phosphorus", "Total phosphorus (TP)", "mg/L", le=50, detection_limit=0.01),
    ]
    total_phosphorus_flag: Annotated[FlagLetter | None, _flag("w21011", "total_phosphorus")]
    total_phosphorus_status: Annotated[FactorStatus | None, _status("total_phosphorus")]
    total_nitrogen: Annotated[
        Concentration | None,
        _value("w21001", "total_nitrogen", "Total nitrogen (TN)", "mg/L", le=100, detection_limit=0.05),
    ]
    total_nitrogen_flag: Annotated[FlagLetter | None, _flag("w21001", "total_nitrogen")]
    total_nitrogen_status: Annotated[FactorStatus | None, _status("total_nitrogen")]
    turbidity: Annotated[
        Concentration | None,
        # Flood turbidity on sediment-laden rivers exceeds 4,000 NTU (REFERENCE trap 19).
        _value("w01003", "turbidity", "Turbidity", "NTU", le=10_000, detection_limit=1),
    ]
    turbidity_flag: Annotated[FlagLetter | None, _flag("w01003", "turbidity")]
    turbidity_status: Annotated[FactorStatus | None, _status("turbidity")]


FACTOR_CODES: dict[str, str] = {
    spec.alias: spec.name
    for spec in WaterQualitySample.field_specs()
    if spec.alias is not None and spec.factor == spec.name
}
"""HJ 212 factor code → contract field, for sources and devices that key readings by code."""
