"""The provincial smart river-chief platform as a source, its simulator, and the city's reports back up.

The simulator (FastAPI, uvicorn) is imported on first use, so a DAG task that only reads the source never loads a
web server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.river_chief.source import RiverChiefSource

if TYPE_CHECKING:
    from connectors.river_chief.simulator import RiverChiefSimulator

__all__ = ["RiverChiefSimulator", "RiverChiefSource"]


def __getattr__(name: str) -> object:
    if name == "RiverChiefSimulator":
        from connectors.river_chief.simulator import RiverChiefSimulator

        return RiverChiefSimulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
