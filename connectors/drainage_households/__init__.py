"""The drainage household inspection system (排水户巡检): registered dischargers with their permits, inspections
and violations. The simulator (``connectors.drainage_households.simulator``) loads FastAPI: import it where it runs."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from connectors.city_platform import ChangeFeed, PlatformSource, PlatformSourceSettings, PlatformStream, Register
from contracts.drainage import DrainageHousehold, HouseholdInspection, HouseholdViolation

__all__ = ["DrainageHouseholdsSettings", "DrainageHouseholdsSource"]


class DrainageHouseholdsSettings(PlatformSourceSettings):
    """The drainage household inspection system's API."""

    source: ClassVar[str] = "drainage_households"
    base_url: str = Field("http://127.0.0.1:8767", description="Base URL of the drainage household inspection API")


class _Households(Register):
    name = "households"
    contract = DrainageHousehold
    path = "/api/households"


class _Inspections(ChangeFeed):
    name = "inspections"
    contract = HouseholdInspection
    path = "/api/inspections"


class _Violations(ChangeFeed):
    name = "violations"
    contract = HouseholdViolation
    path = "/api/violations"


class DrainageHouseholdsSource(PlatformSource):
    """Households first: inspections and violations are checked against this run's register."""

    name = "drainage_households"
    title = "the drainage household inspection system"
    stream_types: ClassVar[tuple[type[PlatformStream], ...]] = (_Households, _Inspections, _Violations)
