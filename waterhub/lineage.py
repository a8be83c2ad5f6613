"""Where each dataset comes from, derived from the source registry: the consumer API's lineage answer."""

from __future__ import annotations

from exchange.api.deps import Lineage
from waterhub.settings import Settings
from waterhub.sources import SOURCES, build_source

__all__ = ["dataset_lineage"]


def dataset_lineage(settings: Settings) -> dict[str, Lineage]:
    """Dataset key → the sources whose streams publish it; each source's DAG carries the source's name."""
    found: dict[str, list[str]] = {}
    for name in SOURCES:
        for stream in build_source(name, settings).streams:
            found.setdefault(stream.contract.meta.key, []).append(name)
    return {key: Lineage(sources=tuple(names), dags=tuple(names)) for key, names in found.items()}
