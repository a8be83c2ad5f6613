"""Where each dataset comes from, read off the declarations (``waterhub/sources.toml``, ``waterhub/derived.toml``):
the consumer API's lineage answer."""

from __future__ import annotations

from exchange.api.deps import Lineage
from waterhub.derived import declared_derivations
from waterhub.sources import declared_sources

__all__ = ["dataset_lineage"]


def dataset_lineage() -> dict[str, Lineage]:
    """Dataset key → the sources whose streams publish it (each source's DAG carries the source's name), or for a
    derived dataset its derivation's DAG and the input datasets it is derived from."""
    found: dict[str, list[str]] = {}
    for name, declaration in declared_sources().items():
        for dataset in declaration.streams.values():
            found.setdefault(dataset, []).append(name)
    lineage = {key: Lineage(sources=tuple(names), dags=tuple(names)) for key, names in found.items()}
    for name, derivation in declared_derivations().items():
        for dataset in derivation.outputs.values():
            lineage[dataset] = Lineage(dags=(name,), upstream=derivation.inputs)
    return lineage
