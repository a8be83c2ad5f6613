"""Field types shared by contracts.

Sources in this domain send Beijing time without an offset (SL 651, HJ 212, SL 323 and the bureau's API all do);
``BeijingTime`` attaches +08:00 to a naive value and stores UTC, so nothing downstream guesses a zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

__all__ = ["BEIJING", "BeijingTime", "Concentration", "as_utc", "source_zone"]

BEIJING = timezone(timedelta(hours=8), name="Asia/Shanghai")
"""Beijing time as the standards mean it: UTC+8 all year. Not the tz database's Asia/Shanghai, which has daylight
saving in 1986-1991 and local mean time before 1901; a backfilled 1988 reading must not move by an hour."""

_SOURCE_ZONES = {BEIJING.tzname(None): BEIJING}


def source_zone(name: str) -> timezone:
    """The zone a field's ``x-source-zone`` names: the one rule every deriver applies to a time without offset."""
    try:
        return _SOURCE_ZONES[name]
    except KeyError:
        raise ValueError(f"unknown source zone {name!r}; known: {', '.join(sorted(_SOURCE_ZONES))}") from None


def as_utc(value: datetime) -> datetime:
    """A naive value is Beijing time; an aware one keeps its offset. Either way the result is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=BEIJING)
    return value.astimezone(UTC)


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
    Field(json_schema_extra={"x-source-zone": BEIJING.tzname(None), "x-stored-zone": "UTC"}),
]
"""A timestamp the source sends in Beijing time (with or without offset), stored in UTC."""

Concentration = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""A measured concentration: finite and never negative."""
