"""The one list of source systems: name → connector class, imported on first use.

A source's settings block on ``Settings`` carries the same name (``WATERHUB_WATER_QUALITY__BASE_URL``), so adding a
source is one line here plus its block in ``waterhub.settings``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.http import Source
    from waterhub.settings import Settings

__all__ = ["SOURCES", "build_source"]

SOURCES: dict[str, str] = {
    "water_quality": "connectors.water_quality:WaterQualitySource",
}


def build_source(name: str, settings: Settings) -> Source:
    """The connector of source ``name``, configured from its settings block and the shared HTTP settings."""
    try:
        module_name, class_name = SOURCES[name].split(":")
    except KeyError:
        raise KeyError(f"no source {name!r}; known sources: {', '.join(sorted(SOURCES))}") from None
    source_class = getattr(importlib.import_module(module_name), class_name)
    source: Source = source_class(getattr(settings, name), settings.http)
    return source
