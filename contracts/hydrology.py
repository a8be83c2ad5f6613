"""Real-time rain and water regime (SL 323-2011): rainfall, river stage and flow, reservoir level and storage.

Field names are the SL 323 column names in lower case (``stcd``, ``tm``, ``drp``...), so a consumer who knows the
national tables reads these datasets without a glossary. Each table keeps its SL 323 key (``stcd``, ``tm``) and adds
two columns of the hub's: ``updated_at`` (when the writing system last changed the row; the newer row wins when a
device reading and a correction from another system meet) and ``source`` (which system wrote it, such as
``device:sl651`` or ``http:hydrology``).

Devices (SL 651) and the hydrology bureau's HTTP source feed the same observation tables: whichever lands first,
the row means the same thing. Bounds are the SL 323 column widths (``NUMERIC(7,3)`` and so on), not plausibility
limits: those are per station (``ST_STCHKVAL_B``) and belong to domain rules.

The station table and the three threshold tables come from the bureau's HTTP source only. The thresholds refer to
the stations (an unknown station is quarantined); the observation tables do not, because devices write them too
and a device's station need not be in the bureau's station list (the gateway checks its own device registry).
Levels, thresholds included, are relative to the station's datum (``dtmnm``): never compare them across stations.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from contracts.base import Classification, Contract, ContractMeta, Reference
from contracts.types import BeijingTime

__all__ = [
    "RainfallRecord",
    "ReservoirFloodCharacteristics",
    "ReservoirFloodSeasonLimit",
    "ReservoirRecord",
    "RiverRecord",
    "RiverThresholds",
    "Station",
]

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


def _level(description: str) -> object:
    return _number(description, "m", ge=-_LEVEL, le=_LEVEL)


def _flow(description: str) -> object:
    return _number(description, "m³/s", ge=-_FLOW, le=_FLOW)


def _storage(description: str) -> object:
    # SL 323 storage is 10⁶ m³; local systems often keep 万m³ (10⁴ m³), a factor of 100 (REFERENCE trap 11).
    return _number(description, "10⁶ m³", ge=0, le=_FLOW)


def _text(description: str, max_length: int) -> object:
    return Field(None, max_length=max_length, description=description)


def _when(description: str) -> object:
    return Field(None, description=f"{description} (Beijing time), stored in UTC")


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


def _meta(key: str, title: str, primary_key: tuple[str, ...] = ("stcd",)) -> ContractMeta:
    """A table of the bureau's HTTP source: its key, and (but for the stations themselves) its station reference."""
    references = () if key == "hydrology.stations" else (Reference("stcd", "hydrology.stations", "unknown_station"),)
    return ContractMeta(
        key=key,
        version="1.0.0",
        owner=_OWNER,
        classification=Classification.PUBLIC,
        primary_key=primary_key,
        version_field="updated_at",
        title=title,
        cursor_field="updated_at",
        references=references,
    )


_AUTHORITY = 20  # VARCHAR(20)
_NAME = 30  # VARCHAR(30)
_MONTH_DAY = r"^(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])$"
_YEAR_MONTH = r"^[12][0-9]{3}(?:0[1-9]|1[0-2])$"
OptionalTime = Annotated[BeijingTime | None, _when("Time of the value")]


class Station(Contract):
    """ST_STBPRP_B: a station's basic attributes. Its datum (``dtmnm``) is what its levels are relative to."""

    meta: ClassVar[ContractMeta] = _meta("hydrology.stations", "Hydrological stations (SL 323 ST_STBPRP_B)")

    stcd: Stcd
    stnm: Annotated[str, Field(min_length=1, max_length=_NAME, description="Station name (STNM)")]
    rvnm: Annotated[str | None, _text("River name (RVNM)", _NAME)]
    hnnm: Annotated[str | None, _text("Water system, 水系 (HNNM)", _NAME)]
    bsnm: Annotated[str | None, _text("Basin, 流域 (BSNM)", _NAME)]
    lgtd: Annotated[float | None, _number("Longitude (LGTD)", "degree", ge=-180, le=180)]
    lttd: Annotated[float | None, _number("Latitude (LTTD)", "degree", ge=-90, le=90)]
    stlc: Annotated[str | None, _text("Location (STLC)", 50)]
    addvcd: Annotated[
        str | None,
        Field(None, pattern=r"^[0-9]{6}$", max_length=6, description="Administrative division code (ADDVCD)"),
    ]
    dtmnm: Annotated[str | None, _text("Name of the station's datum, e.g. 珠基 (DTMNM)", 16)]
    dtmel: Annotated[float | None, _level("Datum elevation (DTMEL)")]
    dtpr: Annotated[float | None, _level("Datum correction (DTPR)")]
    sttp: Annotated[
        str | None,
        # The SL 323 codes (PP ZZ ZQ RR DD TT DP ZG SS BB MM ZB) and vendors' own (WQ...): two capitals.
        Field(None, pattern=r"^[A-Z]{2}$", max_length=2, description="Station type: PP rain, ZQ river, RR reservoir"),
    ]
    frgrd: Annotated[str | None, Field(None, pattern=r"^[0-9]$", max_length=1, description="Flood-reporting grade")]
    esstym: Annotated[
        str | None, Field(None, pattern=_YEAR_MONTH, max_length=6, description="Year and month established (YYYYMM)")
    ]
    bgfrym: Annotated[
        str | None, Field(None, pattern=_YEAR_MONTH, max_length=6, description="Year and month reporting began")
    ]
    atcunit: Annotated[str | None, _text("Owning unit (ATCUNIT)", _AUTHORITY)]
    admauth: Annotated[str | None, _text("Managing authority (ADMAUTH)", _AUTHORITY)]
    locality: Annotated[str | None, _text("Exchange unit (LOCALITY)", _AUTHORITY)]
    stbk: Annotated[str | None, Field(None, pattern=r"^[0-9]$", max_length=1, description="Bank (STBK)")]
    stazt: Annotated[int | None, _number("Azimuth (STAZT)", "degree", ge=0, le=360)]
    dstrvm: Annotated[float | None, _number("Distance to the river mouth (DSTRVM)", "km", ge=0, le=99999.9)]
    drna: Annotated[int | None, _number("Drainage area (DRNA)", "km²", ge=0, le=9_999_999)]
    phcd: Annotated[str | None, _text("Pinyin code (PHCD)", 6)]
    updated_at: UpdatedAt
    source: Source


class RiverThresholds(Contract):
    """ST_RVFCCH_B: a river station's flood-control thresholds and historical extremes.

    A null threshold means "no check", never 0 (REFERENCE trap 13): many stations have no guaranteed level."""

    meta: ClassVar[ContractMeta] = _meta(
        "hydrology.river_thresholds", "River flood-control thresholds (SL 323 ST_RVFCCH_B)"
    )

    stcd: Stcd
    ldkel: Annotated[float | None, _level("Left levee crest elevation (LDKEL)")]
    rdkel: Annotated[float | None, _level("Right levee crest elevation (RDKEL)")]
    wrz: Annotated[float | None, _level("Warning level, 警戒水位 (WRZ)")]
    wrq: Annotated[float | None, _flow("Warning flow (WRQ)")]
    grz: Annotated[float | None, _level("Guaranteed (safe) level, 保证水位 (GRZ)")]
    grq: Annotated[float | None, _flow("Guaranteed flow (GRQ)")]
    flpq: Annotated[float | None, _flow("Bankfull flow (FLPQ)")]
    obhtz: Annotated[float | None, _level("Highest observed level (OBHTZ)")]
    obhtztm: OptionalTime
    ivhz: Annotated[float | None, _level("Highest surveyed level (IVHZ)")]
    ivhztm: OptionalTime
    obmxq: Annotated[float | None, _flow("Largest observed flow (OBMXQ)")]
    obmxqtm: OptionalTime
    ivmxq: Annotated[float | None, _flow("Largest surveyed flow (IVMXQ)")]
    ivmxqtm: OptionalTime
    hmxs: Annotated[float | None, _number("Highest sediment concentration (HMXS)", "kg/m³", ge=0, le=9999.999)]
    hmxstm: OptionalTime
    hmxavv: Annotated[float | None, _number("Highest section mean velocity (HMXAVV)", "m/s", ge=0, le=99.999)]
    hmxavvtm: OptionalTime
    hlz: Annotated[float | None, _level("Lowest level (HLZ)")]
    hlztm: OptionalTime
    hmnq: Annotated[float | None, _flow("Smallest flow (HMNQ)")]
    hmnqtm: OptionalTime
    taz: Annotated[float | None, _level("High-level alarm (TAZ)")]
    taq: Annotated[float | None, _flow("High-flow alarm (TAQ)")]
    laz: Annotated[float | None, _level("Low-level alarm (LAZ)")]
    laq: Annotated[float | None, _flow("Low-flow alarm (LAQ)")]
    sfz: Annotated[float | None, _level("Level at which forecasting starts (SFZ)")]
    sfq: Annotated[float | None, _flow("Flow at which forecasting starts (SFQ)")]
    updated_at: UpdatedAt
    source: Source


class ReservoirFloodCharacteristics(Contract):
    """ST_RSVRFCCH_B: a reservoir's flood-control characteristics. Capacities are in 10⁶ m³ (trap 11); the
    flood-season limit level is not here but in ``hydrology.reservoir_flood_season_limits``."""

    meta: ClassVar[ContractMeta] = _meta(
        "hydrology.reservoir_flood_characteristics", "Reservoir flood-control characteristics (SL 323 ST_RSVRFCCH_B)"
    )

    stcd: Stcd
    rsvrtp: Annotated[
        str | None, Field(None, pattern=r"^[0-9A-Z]{1,2}$", max_length=2, description="Reservoir size class (RSVRTP)")
    ]
    damel: Annotated[float | None, _level("Dam crest elevation (DAMEL)")]
    ckflz: Annotated[float | None, _level("Check flood level, 校核洪水位 (CKFLZ)")]
    dsflz: Annotated[float | None, _level("Design flood level, 设计洪水位 (DSFLZ)")]
    normz: Annotated[float | None, _level("Normal pool level, 正常高水位 (NORMZ)")]
    ddz: Annotated[float | None, _level("Dead level, 死水位 (DDZ)")]
    actz: Annotated[float | None, _level("Active-storage level, 兴利水位 (ACTZ)")]
    ttcp: Annotated[float | None, _storage("Total capacity (TTCP)")]
    fldcp: Annotated[float | None, _storage("Flood-control capacity (FLDCP)")]
    actcp: Annotated[float | None, _storage("Active capacity (ACTCP)")]
    ddcp: Annotated[float | None, _storage("Dead capacity (DDCP)")]
    hhrz: Annotated[float | None, _level("Highest level on record (HHRZ)")]
    hhrztm: OptionalTime
    hmxw: Annotated[float | None, _storage("Largest storage on record (HMXW)")]
    hmxinq: Annotated[float | None, _flow("Largest inflow on record (HMXINQ)")]
    rstdr: Annotated[float | None, _number("Period the largest inflow is averaged over (RSTDR)", "h", ge=0, le=999.99)]
    hmxinqtm: OptionalTime
    hmxotq: Annotated[float | None, _flow("Largest outflow on record (HMXOTQ)")]
    hmxotqtm: OptionalTime
    hlrz: Annotated[float | None, _level("Lowest level on record (HLRZ)")]
    hlrztm: OptionalTime
    hmninq: Annotated[float | None, _flow("Smallest daily inflow on record (HMNINQ)")]
    hmninqtm: OptionalTime
    laz: Annotated[float | None, _level("Low-level alarm (LAZ)")]
    sfq: Annotated[float | None, _flow("Flow at which forecasting starts (SFQ)")]
    updated_at: UpdatedAt
    source: Source


class ReservoirFloodSeasonLimit(Contract):
    """ST_RSVRFSR_B: a reservoir's flood-season limit level (汛限水位) for the period from ``bgmd`` to ``edmd``.

    Periods are month-days of Beijing time; a period with ``bgmd`` after ``edmd`` crosses the new year, and a null
    ``edmd`` runs to the end of the season."""

    meta: ClassVar[ContractMeta] = _meta(
        "hydrology.reservoir_flood_season_limits",
        "Reservoir flood-season limit levels (SL 323 ST_RSVRFSR_B)",
        ("stcd", "bgmd"),
    )

    stcd: Stcd
    bgmd: Annotated[str, Field(pattern=_MONTH_DAY, max_length=4, description="First month-day of the period (MMDD)")]
    edmd: Annotated[
        str | None, Field(None, pattern=_MONTH_DAY, max_length=4, description="Last month-day of the period (MMDD)")
    ]
    fsltdz: Annotated[float | None, _level("Flood-season limit level, 汛限水位 (FSLTDZ)")]
    fsltdw: Annotated[float | None, _storage("Storage at the flood-season limit level (FSLTDW)")]
    fstp: Annotated[
        str | None,
        Field(None, pattern=r"^[1-4]$", max_length=1, description="Season: 1 main, 2 late, 3 transition, 4 other"),
    ]
    updated_at: UpdatedAt
    source: Source
