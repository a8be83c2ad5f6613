"""The rural sewage facility inspection system (农污巡检): the facility register, inspections with the running
status found, and effluent samples. The simulator (``connectors.rural_sewage.simulator``) loads FastAPI."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from connectors.city_platform import ChangeFeed, PlatformSource, PlatformSourceSettings, PlatformStream, Register
from contracts.rural_sewage import EffluentSample, RuralSewageFacility, RuralSewageInspection

__all__ = ["RuralSewageSettings", "RuralSewageSource"]


class RuralSewageSettings(PlatformSourceSettings):
    """The rural sewage facility inspection system's API."""

    source: ClassVar[str] = "rural_sewage"
    base_url: str = Field("http://127.0.0.1:8768", description="Base URL of the rural sewage inspection API")


class _Facilities(Register):
    name = "facilities"
    contract = RuralSewageFacility
    path = "/api/facilities"


class _Inspections(ChangeFeed):
    name = "inspections"
    contract = RuralSewageInspection
    path = "/api/inspections"


class _EffluentSamples(ChangeFeed):
    name = "effluent_samples"
    contract = EffluentSample
    path = "/api/effluent-samples"


class RuralSewageSource(PlatformSource):
    """Facilities first: inspections and samples are checked against this run's register."""

    name = "rural_sewage"
    title = "the rural sewage facility inspection system"
    stream_types: ClassVar[tuple[type[PlatformStream], ...]] = (_Facilities, _Inspections, _EffluentSamples)
