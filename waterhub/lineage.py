"""Where each dataset comes from, read off the source declarations (``waterhub/sources.toml``): the consumer API's
lineage answer."""

from __future__ import annotations

from exchange.api.deps import Lineage
from waterhub.sources import declared_sources

__all__ = ["dataset_lineage"]


def dataset_lineage() -> dict[str, Lineage]:
    """Dataset key → the sources whose streams publish it; each source's DAG carries the source's name."""
    found: dict[str, list[str]] = {}
    for name, declaration in declared_sources().items():
        for dataset in declaration.streams.values():
            found.setdefault(dataset, []).append(name)
    return {key: Lineage(sources=tuple(names), dags=tuple(names)) for key, names in found.items()}
