"""Contracts of the city's two drainage inspection systems: drainage facilities (排水设施巡检) and drainage
households (排水户巡检), REFERENCE 6.4.

Facilities are pipes, manholes, outfalls (排水口) and pumping stations; their defects are structural (cracks,
collapse) or functional (deposits, blockage), graded 1-4 as CJJ 181 grades pipe defects [U], and followed until
closed. Households are registered dischargers (catering, car washes, construction sites, industry, markets) with
their drainage permit (排水许可); inspections find violations with a rectification deadline. The shapes the
systems share come from ``contracts.inspection``.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from contracts.base import ContractMeta, Reference
from contracts.inspection import CalendarDate, FindingRecord, InspectionRecord, RecordId, RegisteredPlace, platform_meta

__all__ = [
    "DEFECT_TYPES",
    "DrainageDefect",
    "DrainageFacility",
    "DrainageHousehold",
    "FacilityInspection",
    "HouseholdInspection",
    "HouseholdViolation",
]

_meta = partial(platform_meta, owner="water-affairs-bureau-drainage")


_FACILITY = Reference("facility_id", "drainage.facilities", reason="unknown_facility")
_HOUSEHOLD = Reference("household_id", "drainage.households", reason="unknown_household")

DEFECT_TYPES: dict[str, tuple[str, ...]] = {
    "structural": ("crack", "deformation", "corrosion", "misalignment", "disjoint", "collapse", "leakage"),
    "functional": ("deposit", "scaling", "obstacle", "root_intrusion", "blockage", "residual_wall"),
}
"""Defect types per class, after CJJ 181's pipe-defect tables [U]: a type belongs to exactly one class."""


class DrainageFacility(RegisteredPlace):
    """A facility of the drainage network register: a pipe, manhole, outfall or pumping station."""

    meta: ClassVar[ContractMeta] = _meta("drainage.facilities", "Drainage network facilities", ("facility_id",))

    facility_id: RecordId
    facility_type: Annotated[
        Literal["pipe", "manhole", "outfall", "pumping_station"],
        Field(description="pipe, manhole, outfall (排水口) or pumping_station"),
    ]
    system: Annotated[
        Literal["storm", "sewage", "combined"], Field(description="Which water it carries: storm, sewage, combined")
    ]
    size_mm: Annotated[
        float | None,
        Field(None, ge=50, le=6000, description="Pipe diameter or culvert width", json_schema_extra={"unit": "mm"}),
    ]
    material: Annotated[str | None, Field(None, max_length=20, description="Pipe material (concrete, PE, ...)")]
    owner: Annotated[str | None, Field(None, max_length=60, description="Who maintains it")]


class FacilityInspection(InspectionRecord):
    """One inspection of a drainage facility."""

    meta: ClassVar[ContractMeta] = _meta(
        "drainage.facility_inspections", "Drainage facility inspections", ("inspection_id",), references=(_FACILITY,)
    )

    facility_id: RecordId


class DrainageDefect(FindingRecord):
    """A defect found on a drainage facility and its handling, from report to closure."""

    meta: ClassVar[ContractMeta] = _meta(
        "drainage.defects", "Drainage facility defects and their handling", ("defect_id",), references=(_FACILITY,)
    )

    defect_id: RecordId
    facility_id: RecordId
    defect_class: Annotated[Literal["structural", "functional"], Field(description="structural or functional")]
    defect_type: Annotated[
        Literal[
            "crack",
            "deformation",
            "corrosion",
            "misalignment",
            "disjoint",
            "collapse",
            "leakage",
            "deposit",
            "scaling",
            "obstacle",
            "root_intrusion",
            "blockage",
            "residual_wall",
        ],
        Field(description="Defect type; each belongs to one class (DEFECT_TYPES)"),
    ]
    grade: Annotated[int, Field(ge=1, le=4, description="Severity grade 1 (slight) to 4 (severe), after CJJ 181 [U]")]
    handling_status: Annotated[
        Literal["reported", "assigned", "handling", "handled", "verified", "closed"],
        Field(description="reported → assigned → handling → handled → verified → closed"),
    ]


class DrainageHousehold(RegisteredPlace):
    """A registered discharger (排水户) and its drainage permit."""

    meta: ClassVar[ContractMeta] = _meta("drainage.households", "Registered drainage households", ("household_id",))

    household_id: RecordId
    category: Annotated[
        Literal["catering", "car_wash", "construction_site", "industry", "market", "other"],
        Field(description="What it discharges as: catering (grease), car_wash (sediment), construction_site, ..."),
    ]
    key_household: Annotated[bool, Field(description="A key household (重点排水户), inspected more often")]
    permit_number: Annotated[
        str | None,
        Field(None, pattern=r"^[0-9A-Z\-]{6,40}$", max_length=40, description="Drainage permit (排水许可) number"),
    ]
    permit_valid_until: Annotated[CalendarDate | None, Field(None, description="Last day the permit is valid")]


class HouseholdInspection(InspectionRecord):
    """One inspection of a drainage household."""

    meta: ClassVar[ContractMeta] = _meta(
        "drainage.household_inspections", "Drainage household inspections", ("inspection_id",), references=(_HOUSEHOLD,)
    )

    household_id: RecordId


class HouseholdViolation(FindingRecord):
    """A violation found at a drainage household, with its rectification deadline and any penalty."""

    meta: ClassVar[ContractMeta] = _meta(
        "drainage.violations", "Drainage household violations", ("violation_id",), references=(_HOUSEHOLD,)
    )

    violation_id: RecordId
    household_id: RecordId
    violation_type: Annotated[
        Literal["no_permit", "expired_permit", "no_pretreatment", "illicit_connection", "over_limit_discharge"],
        Field(description="no_permit, expired_permit, no_pretreatment, illicit_connection, over_limit_discharge"),
    ]
    rectify_by: Annotated[CalendarDate | None, Field(None, description="Rectification deadline (last day)")]
    status: Annotated[
        Literal["open", "rectifying", "rectified", "penalised", "closed"],
        Field(description="open → rectifying → rectified (or penalised) → closed"),
    ]
    penalty_yuan: Annotated[
        float | None, Field(None, ge=0, le=10_000_000, description="Fine imposed", json_schema_extra={"unit": "yuan"})
    ]
