"""Field types shared by contracts.

Sources in this domain send Beijing time without an offset (SL 651, HJ 212, SL 323 and the bureau's API all do);
``BeijingTime`` attaches +08:00 to a naive value and stores UTC, so nothing downstream guesses a zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

__all__ = [
    "BEIJING",
    "CLOCK_TOLERANCE",
    "EARLIEST_TIME",
    "BeijingTime",
    "Concentration",
    "as_utc",
    "is_storable_text",
    "source_zone",
]

BEIJING = timezone(timedelta(hours=8), name="Asia/Shanghai")
"""Beijing time as the standards mean it: UTC+8 all year. Not the tz database's Asia/Shanghai, which has daylight
saving in 1986-1991 and local mean time before 1901; a backfilled 1988 reading must not move by an hour."""

_SOURCE_ZONES = {BEIJING.tzname(None): BEIJING}

EARLIEST_TIME = "1900-01-01T00:00:00Z"
"""The floor of a ``BeijingTime`` unless its field declares its own (``json_schema_extra={"x-earliest": ...}``):
no record a water agency keeps is older, and a stamp like ``0001-01-01 00:00:00`` is a clock that was reset."""

CLOCK_TOLERANCE = timedelta(minutes=10)
"""How far past the end of a run's interval a time may lie and still be true: station and server clocks run a few
minutes fast. Anything later is a clock gone wrong (``<field>_implausible``) and must not hold the watermark."""

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

Concentration = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""A measured concentration: finite and never negative."""
