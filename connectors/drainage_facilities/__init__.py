"""The drainage facility inspection system (排水设施巡检): the facility register, inspections, defects and their
handling. Facilities come first: inspections and defects are checked against this run's register. The simulator
(``connectors.drainage_facilities.simulator``) loads FastAPI: import it where it runs."""

from __future__ import annotations

from connectors.city_platform import ChangeFeed, Register, StreamDeclaration, platform_settings, platform_source
from contracts.drainage import DrainageDefect, DrainageFacility, FacilityInspection

__all__ = ["DrainageFacilitiesSettings", "DrainageFacilitiesSource"]

DrainageFacilitiesSettings = platform_settings(
    "drainage_facilities", "the drainage facility inspection API", "http://127.0.0.1:8766", module=__name__
)
DrainageFacilitiesSource = platform_source(
    "drainage_facilities",
    "the drainage facility inspection system",
    (
        StreamDeclaration(Register, "facilities", DrainageFacility, "/api/facilities"),
        StreamDeclaration(ChangeFeed, "inspections", FacilityInspection, "/api/inspections"),
        StreamDeclaration(ChangeFeed, "defects", DrainageDefect, "/api/defects"),
    ),
    module=__name__,
)
