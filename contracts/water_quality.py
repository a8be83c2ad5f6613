"""Contracts of the Ecology and Environment Bureau's automatic surface-water quality stations.

Factor aliases are the HJ 212-2017 pollutant codes (HJ 525), so a device payload keyed by code validates as is.
Each factor carries its HJ 212 data flag; only N (and S) values take part in GB 3838 classing downstream.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from contracts.base import Classification, Contract, ContractMeta, Reference
from contracts.types import BeijingTime, Concentration

__all__ = ["FACTOR_CODES", "DataFlag", "WaterQualitySample", "WaterQualityStation"]

DataFlag = Literal["N", "F", "M", "S", "D", "C", "T", "B"]
"""HJ 212-2017 data flags: N normal, F stopped, M maintenance, S manual, D fault, C calibration, T over range,
B communication abnormal."""

StationCode = Annotated[str, Field(pattern=r"^\d{8}$", description="Bureau station code (8 digits)", max_length=8)]


def _flag(code: str) -> object:
    return Field(None, alias=f"{code}-Flag", description=f"HJ 212 data flag of {code}")


class WaterQualityStation(Contract):
    """An automatic water-quality station: where it is and what kind of water body it watches."""

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="water_quality.stations",
        version="1.0.0",
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


class WaterQualitySample(Contract):
    """One hourly sample of an automatic surface-water station; aliases are HJ 212 factor codes."""

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="water_quality.samples",
        version="1.0.0",
        owner="ecology-environment-bureau",
        classification=Classification.PUBLIC,
        primary_key=("station_code", "sampled_at"),
        version_field="updated_at",
        title="Hourly automatic surface-water quality samples",
        cursor_field="updated_at",
        references=(Reference("station_code", "water_quality.stations", reason="unknown_station"),),
    )

    station_code: StationCode
    sampled_at: Annotated[BeijingTime, Field(description="Start of the sampling hour (HJ 212 interval start), UTC")]
    updated_at: Annotated[BeijingTime, Field(description="When the bureau last changed the sample (UTC)")]
    ph: Annotated[
        float | None,
        Field(None, alias="w01001", ge=0, le=14, description="pH", json_schema_extra={"unit": "dimensionless"}),
    ]
    ph_flag: Annotated[DataFlag | None, _flag("w01001")]
    dissolved_oxygen: Annotated[
        Concentration | None,
        Field(None, alias="w01009", le=25, description="Dissolved oxygen", json_schema_extra={"unit": "mg/L"}),
    ]
    dissolved_oxygen_flag: Annotated[DataFlag | None, _flag("w01009")]
    water_temperature: Annotated[
        float | None,
        Field(None, alias="w01010", ge=-5, le=45, description="Water temperature", json_schema_extra={"unit": "°C"}),
    ]
    water_temperature_flag: Annotated[DataFlag | None, _flag("w01010")]
    conductivity: Annotated[
        Concentration | None,
        Field(None, alias="w01014", le=50_000, description="Conductivity", json_schema_extra={"unit": "µS/cm"}),
    ]
    conductivity_flag: Annotated[DataFlag | None, _flag("w01014")]
    permanganate_index: Annotated[
        Concentration | None,
        Field(
            None, alias="w01019", le=100, description="Permanganate index (CODMn)", json_schema_extra={"unit": "mg/L"}
        ),
    ]
    permanganate_index_flag: Annotated[DataFlag | None, _flag("w01019")]
    ammonia_nitrogen: Annotated[
        Concentration | None,
        Field(None, alias="w21003", le=100, description="Ammonia nitrogen (NH3-N)", json_schema_extra={"unit": "mg/L"}),
    ]
    ammonia_nitrogen_flag: Annotated[DataFlag | None, _flag("w21003")]
    total_phosphorus: Annotated[
        Concentration | None,
        Field(None, alias="w21011", le=50, description="Total phosphorus (TP)", json_schema_extra={"unit": "mg/L"}),
    ]
    total_phosphorus_flag: Annotated[DataFlag | None, _flag("w21011")]
    total_nitrogen: Annotated[
        Concentration | None,
        Field(None, alias="w21001", le=100, description="Total nitrogen (TN)", json_schema_extra={"unit": "mg/L"}),
    ]
    total_nitrogen_flag: Annotated[DataFlag | None, _flag("w21001")]
    turbidity: Annotated[
        Concentration | None,
        Field(None, alias="w01003", le=4000, description="Turbidity", json_schema_extra={"unit": "NTU"}),
    ]
    turbidity_flag: Annotated[DataFlag | None, _flag("w01003")]


FACTOR_CODES: dict[str, str] = {
    spec.alias: spec.name
    for spec in WaterQualitySample.field_specs()
    if spec.alias is not None and not spec.alias.endswith("-Flag")
}
"""HJ 212 factor code → contract field, for sources and devices that key readings by code."""
