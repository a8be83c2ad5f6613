"""Contracts of the rural sewage treatment facility inspection system (农污巡检), REFERENCE 6.4.

A facility serves villages and households with a design capacity in t/d and a treatment process; inspections
record its running status (normal, abnormal, stopped); effluent samples carry the readings the provincial rural
sewage discharge standard assesses [U which edition]: bounds here are plausibility, not the standard's limits.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from contracts.base import Contract, ContractMeta, Reference
from contracts.inspection import InspectionRecord, RecordId, RegisteredPlace, UpdatedAt, platform_meta
from contracts.types import BeijingTime, Concentration

__all__ = ["EffluentSample", "RuralSewageFacility", "RuralSewageInspection"]

_meta = partial(platform_meta, owner="agriculture-rural-bureau")
_FACILITY = Reference("facility_id", "rural_sewage.facilities", reason="unknown_facility")


class RuralSewageFacility(RegisteredPlace):
    """A village sewage treatment facility."""

    meta: ClassVar[ContractMeta] = _meta(
        "rural_sewage.facilities", "Rural sewage treatment facilities", ("facility_id",)
    )

    facility_id: RecordId
    villages_served: Annotated[int, Field(ge=1, le=50, description="Villages (自然村) it serves")]
    households_served: Annotated[int, Field(ge=1, le=20_000, description="Households connected")]
    design_capacity_t_d: Annotated[
        float, Field(gt=0, le=10_000, description="Design capacity", json_schema_extra={"unit": "t/d"})
    ]
    process: Annotated[
        Literal["a2o", "ao", "mbr", "biofilm", "constructed_wetland", "oxidation_pond", "other"],
        Field(description="Treatment process"),
    ]


class RuralSewageInspection(InspectionRecord):
    """One inspection of a rural sewage facility, with the running status found."""

    meta: ClassVar[ContractMeta] = _meta(
        "rural_sewage.inspections", "Rural sewage facility inspections", ("inspection_id",), references=(_FACILITY,)
    )

    facility_id: RecordId
    running_status: Annotated[
        Literal["normal", "abnormal", "stopped"], Field(description="normal, abnormal (running badly) or stopped")
    ]


def _reading(description: str, unit: str, le: float) -> object:
    return Field(None, le=le, description=description, json_schema_extra={"unit": unit})


class EffluentSample(Contract):
    """One effluent sample of a facility, taken by the inspector or the operator's lab."""

    meta: ClassVar[ContractMeta] = _meta(
        "rural_sewage.effluent_samples",
        "Rural sewage effluent samples",
        ("facility_id", "sampled_at"),
        references=(_FACILITY,),
    )

    facility_id: RecordId
    sampled_at: Annotated[BeijingTime, Field(description="When the sample was taken (UTC)")]
    ph: Annotated[float | None, Field(None, ge=0, le=14, description="pH", json_schema_extra={"unit": "dimensionless"})]
    cod: Annotated[Concentration | None, _reading("Chemical oxygen demand (CODCr)", "mg/L", 5000)]
    ammonia_nitrogen: Annotated[Concentration | None, _reading("Ammonia nitrogen (NH3-N)", "mg/L", 500)]
    total_phosphorus: Annotated[Concentration | None, _reading("Total phosphorus (TP)", "mg/L", 100)]
    suspended_solids: Annotated[Concentration | None, _reading("Suspended solids (SS)", "mg/L", 5000)]
    updated_at: UpdatedAt
