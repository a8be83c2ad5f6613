"""Contracts of the public-security standard address base (四标四实): standard addresses and standard buildings,
with their basic grid and coordinates (REFERENCE 6.4, details [U]), and the linkage of inspection records to them.

Inspection records carry the standard address code they were recorded at; ``AddressLink`` is the derived dataset
that says, for every such record, which standard address it links to, or why it links to none (for review).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from contracts.base import Classification, Contract, ContractMeta, Reference
from contracts.inspection import AddressCode, GridCode, Latitude, Longitude, UpdatedAt, platform_meta
from contracts.types import BeijingTime

__all__ = ["AddressLink", "AddressMatchRate", "StandardAddress", "StandardBuilding"]

_meta = partial(platform_meta, owner="public-security-bureau", classification=Classification.RESTRICTED)

BuildingCode = Annotated[
    str,
    Field(
        pattern=r"^[0-9A-Z]{16,32}$",
        min_length=16,
        max_length=32,
        description="Standard building code (标准建筑物编码)",
    ),
]


class StandardAddress(Contract):
    """A standard address (标准地址): the reference every inspection record's address links to."""

    meta: ClassVar[ContractMeta] = _meta(
        "addresses.standard_addresses",
        "Public-security standard addresses",
        ("address_code",),
        cursor_field="updated_at",
    )

    address_code: AddressCode
    full_address: Annotated[str, Field(min_length=2, max_length=200, description="The address as written in full")]
    district: Annotated[str, Field(min_length=1, max_length=20, description="District (区)")]
    street: Annotated[str, Field(min_length=1, max_length=40, description="Sub-district or town (街道/镇)")]
    community: Annotated[str | None, Field(None, max_length=40, description="Community or village (社区/村)")]
    grid_code: GridCode
    building_code: Annotated[BuildingCode | None, Field(None, description="The building at the address, if any")]
    longitude: Longitude
    latitude: Latitude
    updated_at: UpdatedAt


class StandardBuilding(Contract):
    """A standard building (标准建筑物) with its grid and position."""

    meta: ClassVar[ContractMeta] = _meta(
        "addresses.buildings",
        "Public-security standard buildings",
        ("building_code",),
        references=(Reference("address_code", "addresses.standard_addresses", reason="unknown_address"),),
    )

    building_code: BuildingCode
    address_code: AddressCode
    name: Annotated[str | None, Field(None, max_length=100, description="Building name, if it has one")]
    grid_code: GridCode
    floors: Annotated[int | None, Field(None, ge=1, le=200, description="Floors above ground")]
    longitude: Longitude
    latitude: Latitude
    updated_at: UpdatedAt


def _derived_meta(key: str, title: str, primary_key: tuple[str, ...]) -> ContractMeta:
    """A linkage dataset: computed by the hub (``waterhub/derived.toml``), versioned by the runner's ``input_seq``."""
    return ContractMeta(
        key=key,
        version="1.0.0",
        owner="data-platform",
        classification=Classification.RESTRICTED,
        primary_key=primary_key,
        version_field="input_seq",
        title=title,
    )


_INPUT_SEQ = Field(description="Sum of the inputs' change-log sequences this row was derived at: orders versions")
_DATASET = Field(min_length=1, max_length=80, description="The linked records' dataset")


class AddressLink(Contract):
    """Which standard address an inspection-system record links to, or why none (such a record is for review).

    Derived from the inspection datasets and the standard addresses, never read from a source. An unmatched record
    is a row here with its ``review_reason``, not a quarantined record: it was valid and is published; what needs a
    reviewer is its address, and the review queue is ``status = 'unmatched'`` of this dataset."""

    meta: ClassVar[ContractMeta] = _derived_meta(
        "addresses.record_links", "Inspection records linked to standard addresses", ("dataset", "record_key")
    )

    dataset: Annotated[str, _DATASET]
    record_key: Annotated[
        str, Field(min_length=1, max_length=200, description="The linked record's primary key as compact JSON")
    ]
    recorded_address_code: Annotated[
        AddressCode | None, Field(None, description="The address code the record carries, if any")
    ]
    address_code: Annotated[AddressCode | None, Field(None, description="The standard address it links to")]
    grid_code: Annotated[GridCode | None, Field(None, description="The linked address's grid")]
    status: Annotated[Literal["matched", "unmatched"], Field(description="matched, or unmatched (goes to review)")]
    match_method: Annotated[
        Literal["address_code"] | None,
        Field(None, description="How it matched: address_code, the record's code is a standard address's; null: none"),
    ]
    review_reason: Annotated[
        Literal["no_address", "unknown_address"] | None,
        Field(None, description="Why unmatched: no address recorded, or a code the address base does not hold"),
    ]
    updated_at: Annotated[BeijingTime, Field(description="The linked record's own updated_at (UTC)")]
    input_seq: Annotated[int, _INPUT_SEQ]


class AddressMatchRate(Contract):
    """The match rate of one linked dataset: its published records now, and how many link to a standard address.

    One row per dataset, rewritten by every run that changes its links (the change log keeps each run's figure)."""

    meta: ClassVar[ContractMeta] = _derived_meta(
        "addresses.match_rates", "Match rate of each inspection dataset to the standard addresses", ("dataset",)
    )

    dataset: Annotated[str, _DATASET]
    records: Annotated[int, Field(ge=0, description="The dataset's published records")]
    matched: Annotated[int, Field(ge=0, description="Records linked to a standard address")]
    no_address: Annotated[int, Field(ge=0, description="Unmatched: no address code recorded")]
    unknown_address: Annotated[int, Field(ge=0, description="Unmatched: a code the address base does not hold")]
    match_rate: Annotated[
        float | None,
        Field(
            None,
            ge=0,
            le=1,
            description="matched / records; null when there are no records",
            json_schema_extra={"unit": "dimensionless"},
        ),
    ]
    input_seq: Annotated[int, _INPUT_SEQ]
