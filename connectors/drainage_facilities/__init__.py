"""The drainage facility inspection system (排水设施巡检): the facility register, inspections, defects and their
handling. The simulator (``connectors.drainage_facilities.simulator``) loads FastAPI: import it where it runs."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from connectors.city_platform import ChangeFeed, PlatformSource, PlatformSourceSettings, PlatformStream, Register
from contracts.drainage import DrainageDefect, DrainageFacility, FacilityInspection

__all__ = ["DrainageFacilitiesSettings", "DrainageFacilitiesSource"]


class DrainageFacilitiesSettings(PlatformSourceSettings):
    """The drainage facility inspection system's API."""

    source: ClassVar[str] = "drainage_facilities"
    base_url: str = Field("http://127.0.0.1:8766", description="Base URL of the drainage facility inspection API")


class _Facilities(Register):
    name = "facilities"
    contract = DrainageFacility
    path = "/api/facilities"


class _Inspections(ChangeFeed):
    name = "inspections"
    contract = FacilityInspection
    path = "/api/inspections"


class _Defects(ChangeFeed):
    name = "defects"
    contract = DrainageDefect
    path = "/api/defects"


class DrainageFacilitiesSource(PlatformSource):
    """Facilities first: inspections and defects are checked against this run's register."""

    name = "drainage_facilities"
    title = "the drainage facility inspection system"
    stream_types: ClassVar[tuple[type[PlatformStream], ...]] = (_Facilities, _Inspections, _Defects)
