"""The drainage household inspection system (排水户巡检): registered dischargers with their permits, inspections
and violations. Households come first: inspections and violations are checked against this run's register. The
simulator (``connectors.drainage_households.simulator``) loads FastAPI: import it where it runs."""

from __future__ import annotations

from connectors.city_platform import ChangeFeed, Register, StreamDeclaration, platform_settings, platform_source
from contracts.drainage import DrainageHousehold, HouseholdInspection, HouseholdViolation

__all__ = ["DrainageHouseholdsSettings", "DrainageHouseholdsSource"]

DrainageHouseholdsSettings = platform_settings(
    "drainage_households", "the drainage household inspection API", "http://127.0.0.1:8767", module=__name__
)
DrainageHouseholdsSource = platform_source(
    "drainage_households",
    "the drainage household inspection system",
    (
        StreamDeclaration(Register, "households", DrainageHousehold, "/api/households"),
        StreamDeclaration(ChangeFeed, "inspections", HouseholdInspection, "/api/inspections"),
        StreamDeclaration(ChangeFeed, "violations", HouseholdViolation, "/api/violations"),
    ),
    module=__name__,
)
