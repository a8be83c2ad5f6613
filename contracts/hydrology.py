"""Real-time rain and water regime (SL 323-2011): rainfall, river stage and flow, reservoir level and storage.

Field names are the SL 323 column names in lower case (``stcd``, ``tm``, ``drp``...), so a consumer who knows the
national tables reads these datasets without a glossary. Each table keeps its SL 323 key (``stcd``, ``tm``) and adds
two columns of the hub's: ``updated_at`` (when the writing system last changed the row; the newer row wins when a
device reading and a correction from another system meet) and ``source`` (which system wrote it, such as
``device:sl651`` or ``http:hydrology``).

Devices (SL 651) and the hydrology bureau's HTTP source feed the same tables: whichever lands first, the row means
the same thing. Bounds are the SL 323 column widths (``NUMERIC(7,3)`` and so on), not plausibility limits: those
are per station (``ST_STCHKVAL_B``) and belong to domain rules.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from contracts.base import Classification, Contract, ContractMeta
from contracts.types import BeijingTime

__all__ = ["RainfallRecord", "ReservoirRecord", "RiverRecord"]

_OWNER = "hydrology-bureau"

Stcd = Annotated[
    # SL 323 STCD is CHAR(8); ASCII only, as full-width digits would publish as other keys.
    str,
    Field(pattern=r"^[0-9A-Z]{8}$", min_length=8, max_length=8, description="SL 323 station code (STCD)"),
]
Tm = Annotated[BeijingTime, Field(description="Observation time (SL 323 TM, Beijing time), stored in UTC")]
UpdatedAt = Annotated[
    BeijingTime,
    Field(
        description="When the writing system last changed the row (a device: its report's send time), UTC; "
        "of two versions of one observation the later one stands"
    ),
]
Source = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9_]+:[a-z0-9_.-]+$",
        max_length=40,
        description="System that wrote the row: device:<protocol> or http:<source>",
    ),
]
Trend = Annotated[
    str | None, Field(None, pattern=r"^[456]$", max_length=1, description="4 falling, 5 rising, 6 steady")
]
MethodCode = Annotated[str | None, Field(None, pattern=r"^[0-9]$", max_length=1, description="SL 323 method code")]


def _number(description: str, unit: str, *, ge: float, le: float) -> object:
    return Field(None, ge=ge, le=le, description=description, json_schema_extra={"unit": unit})


_LEVEL = 9999.999  # NUMERIC(7,3)
_FLOW = 999999.999  # NUMERIC(9,3)
_HOURS_MINUTES = 999.99  # NUMERIC(5,2)
_RAIN = 9999.9  # NUMERIC(5,1)


class RainfallRecord(Contract):
    """ST_PPTN_R: rainfall of one period ending at ``tm`` (a 5-minute step, an hour...) and the day's total."""

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="hydrology.rainfall",
        version="1.0.0",
        owner=_OWNER,
        classification=Classification.PUBLIC,
        primary_key=("stcd", "tm"),
        version_field="updated_at",
        title="Precipitation (SL 323 ST_PPTN_R)",
        cursor_field="updated_at",
    )

    stcd: Stcd
    tm: Tm
    drp: Annotated[float | None, _number("Rainfall in the period ending at tm (DRP)", "mm", ge=0, le=_RAIN)]
    intv: Annotated[
        float | None,
        _number("Period length as hours.minutes: 1.00 one hour, 0.05 five minutes (INTV)", "h.mm", ge=0, le=99.99),
    ]
    pdr: Annotated[float | None, _number("Rainfall duration in the period (PDR)", "h.mm", ge=0, le=99.99)]
    dyp: Annotated[
        float | None, _number("Daily rainfall, hydrological day 08:00-08:00 Beijing time (DYP)", "mm", ge=0, le=_RAIN)
    ]
    wth: Annotated[str | None, Field(None, pattern=r"^[0-9]$", max_length=1, description="Weather code (WTH)")]
    updated_at: UpdatedAt
    source: Source


class RiverRecord(Contract):
    """ST_RIVER_R: stage and discharge of a river station at ``tm``. Stage is relative to the station datum."""

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="hydrology.river",
        version="1.0.0",
        owner=_OWNER,
        classification=Classification.PUBLIC,
        primary_key=("stcd", "tm"),
        version_field="updated_at",
        title="River stage and flow (SL 323 ST_RIVER_R)",
        cursor_field="updated_at",
    )

    stcd: Stcd
    tm: Tm
    z: Annotated[float | None, _number("Stage above the station datum (Z)", "m", ge=-_LEVEL, le=_LEVEL)]
    # Reverse flow (FLWCHRCD 4) is written as a negative discharge by some stations.
    q: Annotated[float | None, _number("Discharge (Q)", "m³/s", ge=-_FLOW, le=_FLOW)]
    xsa: Annotated[float | None, _number("Cross-section area (XSA)", "m²", ge=0, le=_FLOW)]
    xsavv: Annotated[float | None, _number("Section mean velocity (XSAVV)", "m/s", ge=-99.999, le=99.999)]
    xsmxv: Annotated[float | None, _number("Section maximum velocity (XSMXV)", "m/s", ge=-99.999, le=99.999)]
    flwchrcd: Annotated[
        str | None, Field(None, pattern=r"^[0-9P]$", max_length=1, description="River-flow characteristic (FLWCHRCD)")
    ]
    wptn: Trend
    msqmt: MethodCode
    updated_at: UpdatedAt
    source: Source


class ReservoirRecord(Contract):
    """ST_RSVR_R: reservoir level, inflow, storage and outflow at ``tm``. Storage is in 10⁶ m³, not 10⁴ (trap 11)."""

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="hydrology.reservoir",
        version="1.0.0",
        owner=_OWNER,
        classification=Classification.PUBLIC,
        primary_key=("stcd", "tm"),
        version_field="updated_at",
        title="Reservoir regime (SL 323 ST_RSVR_R)",
        cursor_field="updated_at",
    )

    stcd: Stcd
    tm: Tm
    rz: Annotated[float | None, _number("Reservoir (upstream) level (RZ)", "m", ge=-_LEVEL, le=_LEVEL)]
    inq: Annotated[float | None, _number("Inflow (INQ)", "m³/s", ge=-_FLOW, le=_FLOW)]
    w: Annotated[float | None, _number("Storage (W)", "10⁶ m³", ge=0, le=_FLOW)]
    blrz: Annotated[float | None, _number("Level below the dam (BLRZ)", "m", ge=-_LEVEL, le=_LEVEL)]
    otq: Annotated[float | None, _number("Outflow (OTQ)", "m³/s", ge=0, le=_FLOW)]
    rwchrcd: Annotated[
        str | None, Field(None, pattern=r"^[0-9A-Z]$", max_length=1, description="Reservoir-water characteristic")
    ]
    rwptn: Trend
    inqdr: Annotated[float | None, _number("Period the inflow is averaged over (INQDR)", "h", ge=0, le=_HOURS_MINUTES)]
    msqmt: MethodCode
    updated_at: UpdatedAt
    source: Source
