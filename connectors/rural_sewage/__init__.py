"""The rural sewage facility inspection system (农污巡检): the facility register, inspections with the running
status found, and effluent samples. Facilities come first: inspections and samples are checked against this run's
register. The simulator (``connectors.rural_sewage.simulator``) loads FastAPI: import it where it runs."""

from __future__ import annotations

from connectors.city_platform import ChangeFeed, Register, StreamDeclaration, platform_settings, platform_source
from contracts.rural_sewage import EffluentSample, RuralSewageFacility, RuralSewageInspection

__all__ = ["RuralSewageSettings", "RuralSewageSource"]

RuralSewageSettings = platform_settings(
    "rural_sewage", "the rural sewage inspection API", "http://127.0.0.1:8768", module=__name__
)
RuralSewageSource = platform_source(
    "rural_sewage",
    "the rural sewage facility inspection system",
    (
        StreamDeclaration(Register, "facilities", RuralSewageFacility, "/api/facilities"),
        StreamDeclaration(ChangeFeed, "inspections", RuralSewageInspection, "/api/inspections"),
        StreamDeclaration(ChangeFeed, "effluent_samples", EffluentSample, "/api/effluent-samples"),
    ),
    module=__name__,
)
