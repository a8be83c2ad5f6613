"""Field types and the record shape the city's inspection systems share (drainage facilities, drainage households,
rural sewage) and the public-security standard-address base they point at.

The three inspection systems were built to one municipal template: a register of what is inspected, inspections of
it, and findings with a lifecycle. What they share is declared here once; each system's contract module adds only
its own fields. Every record that has a place carries the standard address code (四标四实 标准地址) when the
source has one, so records join across systems (REFERENCE 6.4). The code is not a reference checked by quality: a
record whose address is missing or unknown is still published, and goes to review through the address linkage.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from contracts.base import Classification, Contract, ContractMeta, Reference
from contracts.types import BeijingTime

__all__ = [
    "AddressCode",
    "CalendarDate",
    "FindingRecord",
    "GridCode",
    "InspectionRecord",
    "Latitude",
    "Longitude",
    "RecordId",
    "RegisteredPlace",
    "UpdatedAt",
    "platform_meta",
]

AddressCode = Annotated[
    # ASCII only: full-width digits would publish as other keys. The code's inner structure varies by city [U].
    str,
    Field(
        pattern=r"^[0-9A-Z]{16,32}$",
        min_length=16,
        max_length=32,
        description="Public-security standard address code (四标四实 标准地址编码)",
    ),
]
CalendarDate = Annotated[
    # A date, not an instant: deadlines and permit expiry lie in the future, where no observed time may.
    str,
    Field(
        pattern=r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$",
        max_length=10,
        description="A calendar date in Beijing, YYYY-MM-DD",
    ),
]
GridCode = Annotated[
    str,
    Field(pattern=r"^[0-9]{12,20}$", max_length=20, description="Standard basic grid code (标准基础网格编码)"),
]
RecordId = Annotated[
    str,
    Field(pattern=r"^[A-Z]{2,4}[0-9]{6,12}$", max_length=16, description="The source system's record id"),
]
Longitude = Annotated[
    float,
    Field(
        ge=73, le=136, description="Longitude, CGCS2000 (WGS 84 to centimetres)", json_schema_extra={"unit": "degree"}
    ),
]
Latitude = Annotated[
    float,
    Field(ge=3, le=54, description="Latitude, CGCS2000 (WGS 84 to centimetres)", json_schema_extra={"unit": "degree"}),
]
UpdatedAt = Annotated[
    BeijingTime, Field(description="When the source system last changed the record (UTC); the newer version wins")
]


def platform_meta(
    key: str,
    title: str,
    primary_key: tuple[str, ...],
    *,
    owner: str,
    classification: Classification = Classification.INTERNAL,
    references: tuple[Reference, ...] = (),
    cursor_field: str | None = "updated_at",
) -> ContractMeta:
    """The metadata of a platform dataset: version 1.0.0, newer ``updated_at`` wins and is the feed's cursor."""
    return ContractMeta(
        key=key,
        version="1.0.0",
        owner=owner,
        classification=classification,
        primary_key=primary_key,
        version_field="updated_at",
        title=title,
        cursor_field=cursor_field,
        references=references,
    )


class InspectionRecord(Contract):
    """One inspection visit, as every inspection system records it; a system's contract adds what was inspected.

    No ``meta`` here: the registry registers only classes that define their own."""

    inspection_id: RecordId
    inspected_at: Annotated[BeijingTime, Field(description="When the inspector was on site (UTC)")]
    inspector: Annotated[str, Field(min_length=1, max_length=40, description="Inspector's name or staff id")]
    result: Annotated[
        Literal["normal", "problem_found"], Field(description="normal, or problem_found (findings follow)")
    ]
    address_code: Annotated[
        AddressCode | None, Field(None, description="Standard address of the inspected place, when recorded")
    ]
    remarks: Annotated[str | None, Field(None, max_length=500, description="Inspector's notes")]
    updated_at: UpdatedAt


class RegisteredPlace(Contract):
    """What a system's register holds of every facility or household it inspects, besides its own id and kind."""

    name: Annotated[str, Field(min_length=1, max_length=100, description="Name as registered")]
    district: Annotated[str, Field(min_length=1, max_length=20, description="District (区) it lies in")]
    address_code: Annotated[
        AddressCode | None, Field(None, description="Standard address, when the register records one")
    ]
    longitude: Longitude | None = None
    latitude: Latitude | None = None
    updated_at: UpdatedAt


class FindingRecord(Contract):
    """A problem an inspection found, followed until it is closed; a system's contract adds its kind and status."""

    inspection_id: Annotated[RecordId | None, Field(None, description="The inspection that found it, if recorded")]
    found_at: Annotated[BeijingTime, Field(description="When it was found (UTC)")]
    closed_at: Annotated[BeijingTime | None, Field(None, description="When it was closed (UTC); null while open")]
    updated_at: UpdatedAt
