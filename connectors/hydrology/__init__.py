"""The flood-control hydrology platform's source (SL 323 tables) and its simulator.

The simulator (FastAPI, uvicorn) is imported on first use, so a DAG task that only reads the source never loads a
web server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.hydrology.source import HydrologySource

if TYPE_CHECKING:
    from connectors.hydrology.simulator import HydrologySimulator

__all__ = ["HydrologySimulator", "HydrologySource"]


def __getattr__(name: str) -> object:
    if name == "HydrologySimulator":
        from connectors.hydrology.simulator import HydrologySimulator

        return HydrologySimulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
