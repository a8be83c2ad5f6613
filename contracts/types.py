"""Field types shared by contracts.

Sources in this domain send Beijing time without an offset (SL 651, HJ 212, SL 323 and the bureau's API all do);
``BeijingTime`` attaches +08:00 to a naive value and stores UTC, so nothing downstream guesses a zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

__all__ = [
    "BEIJING",
    "CLOCK_TOLERANCE",
    "EARLIEST_TIME",
    "LOWER_BOUND_FLAGS",
    "VALID_FLAGS",
    "BeijingTime",
    "Concentration",
    "DataFlag",
    "FactorStatus",
    "FlagLetter",
    "HourStart",
    "as_utc",
    "is_storable_text",
    "snap_to_hour",
    "source_zone",
]

BEIJING = timezone(timedelta(hours=8), name="Asia/Shanghai")
"""Beijing time as the standards mean it: UTC+8 all year. Not the tz database's Asia/Shanghai, which has daylight
saving in 1986-1991 and local mean time before 1901; a backfilled 1988 reading must not move by an hour."""

_SOURCE_ZONES = {BEIJING.tzname(None): BEIJING}

EARLIEST_TIME = "1900-01-01T00:00:00Z"
"""The floor of a ``BeijingTime`` unless its field declares its own (``json_schema_extra={"x-earliest": ...}``):
no record a water agency keeps is older, and a stamp like ``0001-01-01 00:00:00`` is a clock that was reset."""

CLOCK_TOLERANCE = timedelta(minutes=5)
"""How far a station's or server's clock may be off before its stamps stop meaning what they say (REFERENCE trap
20): an hourly value stamped ``21:00:01`` is the 21:00 value, a fast clock reports an hour a few minutes "before it
ended", and a time this far past the end of a run's interval is still true. Anything later is a clock gone wrong
(``<field>_implausible``) and must not hold the watermark."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def source_zone(name: str) -> timezone:
    """The zone a field's ``x-source-zone`` names: the one rule every deriver applies to a time without offset."""
    try:
        return _SOURCE_ZONES[name]
    except KeyError:
        raise ValueError(f"unknown source zone {name!r}; known: {', '.join(sorted(_SOURCE_ZONES))}") from None


def as_utc(value: datetime) -> datetime:
    """A naive value is Beijing time; an aware one keeps its offset. Either way the result is UTC.

    Raises ``ValueError`` (which pydantic reports; an ``OverflowError`` would escape it) for a time whose offset
    takes it past year 1 or 9999 (``9999-12-31T23:00:00-12:00``): no UTC time is the one that was sent.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=BEIJING)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} lies outside the years 1-9999 once converted to UTC") from None


def is_storable_text(text: str) -> bool:
    """Whether PostgreSQL and Parquet can store ``text``: neither holds NUL, and a lone surrogate (what
    ``json.loads`` makes of an escape like ``"\\ud800"``) has no UTF-8 form."""
    return _UNSTORABLE.search(text) is None


def _attach_beijing(value: object) -> object:
    """Text or a datetime only: a bare number could be seconds or milliseconds since some epoch, so it is refused
    rather than read the way pydantic would (Unix seconds)."""
    if isinstance(value, int | float):
        raise ValueError("a time must be ISO 8601 text or a datetime, not a number")
    if isinstance(value, str):
        # Not pydantic's own parsing, which would read "00000" as Unix seconds.
        value = datetime.fromisoformat(value.strip())
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=BEIJING)
    return value


BeijingTime = Annotated[
    AwareDatetime,
    BeforeValidator(_attach_beijing),
    AfterValidator(as_utc),
    Field(
        json_schema_extra={"x-source-zone": BEIJING.tzname(None), "x-stored-zone": "UTC", "x-earliest": EARLIEST_TIME}
    ),
]
"""A timestamp the source sends in Beijing time (with or without offset), stored in UTC, not before its floor."""

_HOUR = timedelta(hours=1)


def snap_to_hour(value: datetime) -> datetime:
    """A stamp within ``CLOCK_TOLERANCE`` of a full hour is that hour (UTC and Beijing time share full hours);
    another stays as it is, and the hourly domain rule refuses it."""
    nearest = (value + _HOUR / 2).replace(minute=0, second=0, microsecond=0)
    return nearest if abs(value - nearest) <= CLOCK_TOLERANCE else value


HourStart = Annotated[
    AwareDatetime,
    BeforeValidator(_attach_beijing),
    AfterValidator(as_utc),
    AfterValidator(snap_to_hour),
    Field(
        json_schema_extra={
            "x-source-zone": BEIJING.tzname(None),
            "x-stored-zone": "UTC",
            "x-earliest": EARLIEST_TIME,
            "x-snap": {"every_s": int(_HOUR.total_seconds()), "tolerance_s": int(CLOCK_TOLERANCE.total_seconds())},
        }
    ),
]
"""The start of an hourly interval (HJ 212 stamps interval data at its start), in Beijing time, stored in UTC."""

Concentration = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""A measured concentration: finite and never negative."""

DataFlag = Literal["N", "F", "M", "S", "D", "C", "T", "B"]
"""HJ 212-2017 data flags: N normal, F stopped, M maintenance, S manual, D fault, C calibration, T over range,
B communication abnormal."""
VALID_FLAGS: frozenset[str] = frozenset({"N", "S"})
"""Flags whose value is a measurement of the water (S: entered by hand); only these take part in GB 3838 classing."""
LOWER_BOUND_FLAGS: frozenset[str] = frozenset({"T"})
"""Over the analyser's upper limit: the value is the range cap, a lower bound of the real concentration."""

FlagLetter = Annotated[str, Field(pattern=r"^[A-Z]$")]
"""Any flag letter: loggers on the 2005 protocol send ``P`` and vendors add ``H``. A letter outside the 2017 table
marks the value not valid; it does not make the sample unreadable (REFERENCE trap 18)."""

FactorStatus = Literal["valid", "over_range", "invalid", "below_detection", "rejected"]
"""What a consumer may do with a factor's published value:

- ``valid``: flag N or S (or none) and every check passed: a measurement of the water;
- ``over_range``: flag T; the value is the analyser's range cap, a lower bound;
- ``invalid``: flag F, M, D, C, B or a letter outside the 2017 table; the value (if any) is not a measurement of the
  water (a C value is the calibration standard's concentration);
- ``below_detection``: the analyser read a small negative near zero; the value is withheld;
- ``rejected``: the value failed a check (range, unit, not a number); it is withheld and kept for review.

Null: nothing was measured for the factor."""
