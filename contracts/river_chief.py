"""Contracts of the provincial smart river-chief platform (河长制), REFERENCE 6.1-6.3.

Static data: rivers, their segments (the unit of responsibility), lakes, reservoirs, small water bodies (小微水体),
river-chief offices, their member departments and the chiefs. Dynamic data: patrols, problems and each step of a
problem's handling. Every record carries the platform's ``updated_at``: the newer version of a record wins, and
incremental reads follow it. Codes are ASCII (full-width digits would publish as other keys); divisions are the
12-digit statistical division codes (440100000000 is Guangzhou).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from contracts.base import Classification, Contract, ContractMeta, Reference
from contracts.types import BeijingTime

__all__ = [
    "CHIEF_LEVELS",
    "PROBLEM_STATUSES",
    "Chief",
    "Lake",
    "MemberDepartment",
    "Office",
    "Patrol",
    "Problem",
    "ProblemStep",
    "Reservoir",
    "River",
    "RiverSegment",
    "SegmentChief",
    "SmallWaterBody",
]

_OWNER = "provincial-river-chief-office"

Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$", max_length=40, description="Platform code")]
Name = Annotated[str, Field(min_length=1, max_length=100, description="Name as the platform writes it")]
DivisionCode = Annotated[
    str, Field(pattern=r"^[0-9]{12}$", max_length=12, description="Statistical division code (12 digits)")
]
Level = Literal["province", "city", "county", "town", "village"]
"""The five levels of chiefs and offices (REFERENCE 6.1): province → city → county/district → town → village."""
CHIEF_LEVELS: tuple[str, ...] = ("province", "city", "county", "town", "village")
UpdatedAt = Annotated[BeijingTime, Field(description="When the platform last changed the record (UTC)")]
Kilometres = Annotated[float, Field(gt=0, le=5000, description="Length", json_schema_extra={"unit": "km"})]

PROBLEM_STATUSES: tuple[str, ...] = (
    "reported",
    "accepted",
    "rejected",
    "assigned",
    "handling",
    "handled",
    "verified",
    "closed",
)
"""A problem's lifecycle (REFERENCE 6.3), in order; ``rejected`` ends it early."""
ProblemStatus = Literal["reported", "accepted", "rejected", "assigned", "handling", "handled", "verified", "closed"]


def _meta(key: str, title: str, primary_key: tuple[str, ...], *references: Reference) -> ContractMeta:
    return ContractMeta(
        key=key,
        version="1.0.0",
        owner=_OWNER,
        classification=Classification.INTERNAL,
        primary_key=primary_key,
        version_field="updated_at",
        title=title,
        cursor_field="updated_at",
        references=references,
    )


class River(Contract):
    """A river as the platform registers it, with the level of the chief who answers for it."""

    meta: ClassVar[ContractMeta] = _meta("river_chief.rivers", "Rivers", ("river_code",))

    river_code: Code
    name: Name
    level: Annotated[Level, Field(description="Level of the river's highest chief")]
    length_km: Kilometres
    basin: Annotated[str, Field(min_length=1, max_length=60, description="Basin (流域)")]
    division_code: DivisionCode
    updated_at: UpdatedAt


class RiverSegment(Contract):
    """A river segment (河段): a river cut by an administrative boundary, the unit a chief is responsible for."""

    meta: ClassVar[ContractMeta] = _meta(
        "river_chief.segments",
        "River segments",
        ("segment_code",),
        Reference("river_code", "river_chief.rivers", reason="unknown_river"),
    )

    segment_code: Code
    river_code: Code
    name: Name
    division_code: DivisionCode
    start_point: Annotated[str, Field(min_length=1, max_length=100, description="Where the segment starts")]
    end_point: Annotated[str, Field(min_length=1, max_length=100, description="Where the segment ends")]
    length_km: Kilometres
    updated_at: UpdatedAt


class Lake(Contract):
    """A lake with a lake chief (湖长)."""

    meta: ClassVar[ContractMeta] = _meta("river_chief.lakes", "Lakes", ("lake_code",))

    lake_code: Code
    name: Name
    area_km2: Annotated[float, Field(gt=0, le=5000, description="Surface area", json_schema_extra={"unit": "km2"})]
    division_code: DivisionCode
    updated_at: UpdatedAt


class Reservoir(Contract):
    """A reservoir under the chief system."""

    meta: ClassVar[ContractMeta] = _meta("river_chief.reservoirs", "Reservoirs", ("reservoir_code",))

    reservoir_code: Code
    name: Name
    scale: Annotated[
        Literal["large", "medium", "small_1", "small_2"],
        Field(description="Scale class: large, medium, small (I), small (II)"),
    ]
    capacity: Annotated[
        float, Field(gt=0, le=10_000_000, description="Total capacity", json_schema_extra={"unit": "10^4 m3"})
    ]
    division_code: DivisionCode
    updated_at: UpdatedAt


class SmallWaterBody(Contract):
    """A small water body (小微水体): a pond, ditch, creek or pit a village or town chief answers for."""

    meta: ClassVar[ContractMeta] = _meta("river_chief.small_water_bodies", "Small water bodies", ("water_body_code",))

    water_body_code: Code
    name: Name
    kind: Annotated[Literal["pond", "ditch", "creek", "pit", "other"], Field(description="Kind of water body")]
    division_code: DivisionCode
    updated_at: UpdatedAt


class Office(Contract):
    """A river-chief office (河长办) at one level, coordinating its member departments."""

    meta: ClassVar[ContractMeta] = _meta("river_chief.offices", "River-chief offices", ("office_code",))

    office_code: Code
    name: Name
    level: Annotated[Level, Field(description="Level of the office")]
    division_code: DivisionCode
    updated_at: UpdatedAt


class MemberDepartment(Contract):
    """A member department (成员单位) of an office: water, ecology and environment, housing, public security..."""

    meta: ClassVar[ContractMeta] = _meta(
        "river_chief.departments",
        "Member departments of the offices",
        ("department_code",),
        Reference("office_code", "river_chief.offices", reason="unknown_office"),
    )

    department_code: Code
    office_code: Code
    name: Name
    updated_at: UpdatedAt


class Chief(Contract):
    """A river or lake chief: post, level and the office that supports them."""

    meta: ClassVar[ContractMeta] = _meta(
        "river_chief.chiefs",
        "River and lake chiefs",
        ("chief_id",),
        Reference("office_code", "river_chief.offices", reason="unknown_office"),
    )

    chief_id: Code
    name: Annotated[str, Field(min_length=1, max_length=40, description="Chief's name")]
    post: Annotated[str, Field(min_length=1, max_length=100, description="Post held (职务)")]
    level: Annotated[Level, Field(description="Level of the chief")]
    office_code: Code
    updated_at: UpdatedAt


class SegmentChief(Contract):
    """That a chief answers for a segment (河长责任河段): one chief per level per segment, a chief for several
    segments (REFERENCE 6.1). A reassignment is a tombstone of the old pair and a new pair."""

    meta: ClassVar[ContractMeta] = _meta(
        "river_chief.segment_chiefs",
        "Chiefs responsible for each river segment",
        ("segment_code", "chief_id"),
        Reference("segment_code", "river_chief.segments", reason="unknown_segment"),
        Reference("chief_id", "river_chief.chiefs", reason="unknown_chief"),
    )

    segment_code: Code
    chief_id: Code
    updated_at: UpdatedAt


class Patrol(Contract):
    """One patrol (巡河) of a water body by a chief. Offline drafts are uploaded days after the patrol: its
    ``updated_at`` is the upload, ``started_at`` the patrol (REFERENCE 6.2)."""

    meta: ClassVar[ContractMeta] = _meta(
        "river_chief.patrols",
        "Patrols",
        ("patrol_id",),
        Reference("chief_id", "river_chief.chiefs", reason="unknown_chief"),
    )

    patrol_id: Code
    chief_id: Code
    water_body_code: Code
    started_at: Annotated[BeijingTime, Field(description="Start of the patrol (UTC)")]
    ended_at: Annotated[BeijingTime, Field(description="End of the patrol (UTC)")]
    distance_km: Annotated[
        float, Field(ge=0, le=200, description="Distance of the track", json_schema_extra={"unit": "km"})
    ]
    track_points: Annotated[int, Field(ge=0, le=1_000_000, description="GPS points in the track")]
    channel: Annotated[Literal["app", "offline_draft", "paper"], Field(description="How the patrol was recorded")]
    problems_found: Annotated[int, Field(ge=0, le=1000, description="Problems reported during the patrol")]
    updated_at: UpdatedAt


class Problem(Contract):
    """A problem (问题) found on a water body, at its current status."""

    meta: ClassVar[ContractMeta] = _meta("river_chief.problems", "Problems", ("problem_id",))

    problem_id: Code
    water_body_code: Code
    division_code: DivisionCode
    source: Annotated[
        Literal["patrol", "hotline", "mini_program", "inspection"], Field(description="How the problem was found")
    ]
    category: Annotated[
        Literal["sewage", "rubbish", "illegal_building", "outfall", "sand_mining", "encroachment", "other"],
        Field(description="Kind of problem"),
    ]
    status: Annotated[ProblemStatus, Field(description="Where the problem is in its lifecycle")]
    reported_at: Annotated[BeijingTime, Field(description="When the problem was reported (UTC)")]
    deadline: Annotated[BeijingTime | None, Field(None, description="When handling is due (UTC)")]
    longitude: Annotated[
        float, Field(ge=73, le=136, description="Longitude, WGS 84", json_schema_extra={"unit": "degree"})
    ]
    latitude: Annotated[float, Field(ge=3, le=54, description="Latitude, WGS 84", json_schema_extra={"unit": "degree"})]
    address: Annotated[str | None, Field(None, max_length=200, description="Address as reported")]
    patrol_id: Annotated[str | None, Field(None, max_length=40, description="The patrol that found it, if any")]
    updated_at: UpdatedAt


class ProblemStep(Contract):
    """One step of a problem's handling: who did what, when; read per problem."""

    meta: ClassVar[ContractMeta] = _meta(
        "river_chief.problem_steps",
        "Handling steps of problems",
        ("problem_id", "step_no"),
        Reference("problem_id", "river_chief.problems", reason="unknown_problem"),
    )

    problem_id: Code
    step_no: Annotated[int, Field(ge=1, le=1000, description="Position of the step in the problem's history")]
    action: Annotated[ProblemStatus, Field(description="The status this step moved the problem to")]
    actor: Annotated[str, Field(min_length=1, max_length=100, description="Who acted: a chief, an office")]
    department_code: Annotated[str | None, Field(None, max_length=40, description="Department assigned, if any")]
    acted_at: Annotated[BeijingTime, Field(description="When the step was taken (UTC)")]
    note: Annotated[str | None, Field(None, max_length=500, description="Remark")]
    updated_at: UpdatedAt
