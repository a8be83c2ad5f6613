"""The bureau's water-quality source and its simulator.

The simulator (FastAPI, uvicorn) is imported on first use, so a DAG task that only reads the source never loads a
web server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.water_quality.source import WaterQualitySource
from connectors.water_quality.streams import WaterQualitySamplesStream, WaterQualityStationsStream

if TYPE_CHECKING:
    from connectors.water_quality.simulator import WaterQualitySimulator

__all__ = ["WaterQualitySamplesStream", "WaterQualitySimulator", "WaterQualitySource", "WaterQualityStationsStream"]


def __getattr__(name: str) -> object:
    if name == "WaterQualitySimulator":
        from connectors.water_quality.simulator import WaterQualitySimulator

        return WaterQualitySimulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
