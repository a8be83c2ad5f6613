"""The source systems, declared once in ``sources.toml`` next to this module, and the connector each one builds.

The declaration is data, not Python, because the DAG files read it too while Airflow parses them, when importing
our packages is not allowed (``dags/_source_dag.py`` reads the same file by path). Here it is read once per process;
``waterhub.settings`` composes a settings block per source from it and ``Pipeline`` builds a source's connector.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel

if TYPE_CHECKING:
    from connectors.http import Source
    from connectors.http.settings import HttpClientSettings
    from connectors.simulation import HttpSimulator
    from waterhub.pipeline import Pipeline
    from waterhub.settings import Settings

__all__ = [
    "SOURCES_FILE",
    "SourceDeclaration",
    "build_source",
    "declaration_tables",
    "declared_sources",
    "imported",
    "source_declaration",
]

SOURCES_FILE = Path(__file__).with_name("sources.toml")
"""Shipped inside the ``waterhub`` package, so an installed hub and the DAG folder read the same file."""

_KEYS = frozenset({"title", "connector", "settings", "schedule", "owner", "streams"})
_OPTIONAL_KEYS = frozenset({"after_publish"})


@dataclass(frozen=True)
class SourceDeclaration:
    """One source as ``sources.toml`` declares it; ``connector`` and ``settings`` are ``module:Class`` paths."""

    name: str
    title: str
    connector: str
    settings: str
    schedule: str
    owner: str
    streams: Mapping[str, str]
    """Stream name → the dataset key it publishes, in reading order."""
    after_publish: Mapping[str, str] = field(default_factory=dict)
    """Task id → ``module:function`` of a step the DAG runs after publish, beside notify and snapshot (the
    river-chief platform's reports back up); the function takes the run's ``Pipeline`` and returns counts."""

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(self.streams.values())

    def settings_class(self) -> type[BaseModel]:
        """The source's settings block, composed on ``Settings`` under the source's name."""
        block = imported(self.settings)
        if not (isinstance(block, type) and issubclass(block, BaseModel)):
            raise TypeError(f"{SOURCES_FILE.name}: {self.name}.settings = {self.settings!r} is not a pydantic model")
        return block

    def after_publish_step(self, task_id: str) -> Callable[[Pipeline], dict[str, int]]:
        """The function of after-publish task ``task_id``."""
        if task_id not in self.after_publish:
            raise KeyError(f"{SOURCES_FILE.name}: [{self.name}.after_publish] has no task {task_id!r}")
        step = imported(self.after_publish[task_id])
        if not callable(step):
            raise TypeError(f"{SOURCES_FILE.name}: {self.name}.after_publish.{task_id} is not a function")
        return cast("Callable[[Pipeline], dict[str, int]]", step)

    def connector_class(self) -> Callable[[BaseModel, HttpClientSettings], Source]:
        """The source's connector class: built from its settings block and the shared HTTP settings."""
        from connectors.http import Source

        connector = imported(self.connector)
        if not (isinstance(connector, type) and issubclass(connector, Source)):
            raise TypeError(f"{SOURCES_FILE.name}: {self.name}.connector = {self.connector!r} is not a Source")
        return cast("Callable[[BaseModel, HttpClientSettings], Source]", connector)

    def demo_simulator(self, block: BaseModel, seed: int) -> HttpSimulator:
        """The simulator ``make demo`` serves for this source: ``demo_simulator(block, seed)`` of the ``simulator``
        module beside its connector (``connectors.<source>.simulator``), given the source's settings block."""
        from connectors.simulation import HttpSimulator

        package = self.connector.partition(":")[0]
        factory = imported(f"{package}.simulator:demo_simulator")
        simulator = factory(block, seed) if callable(factory) else None
        if not isinstance(simulator, HttpSimulator):
            raise TypeError(f"{package}.simulator.demo_simulator must return an HttpSimulator for the demo")
        return simulator


def imported(path: str) -> object:
    """The object a ``module:attribute`` path of a declaration names."""
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def declaration_tables(
    path: Path, keys: frozenset[str], *, optional: frozenset[str] = frozenset()
) -> dict[str, dict[str, Any]]:
    """Each top-level table of a declaration file by name, in file order; an entry without every one of ``keys``
    (and nothing but those and ``optional``) fails here, naming the file and the entry."""
    tables = tomllib.loads(path.read_text(encoding="utf-8"))
    for name, entry in tables.items():
        if not isinstance(entry, dict) or not keys <= set(entry) <= keys | optional:
            found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            maybe = f" (and maybe {sorted(optional)})" if optional else ""
            raise ValueError(f"{path}: [{name}] must have exactly {sorted(keys)}{maybe}, not {found}")
    return tables


@cache
def declared_sources() -> dict[str, SourceDeclaration]:
    """Every declared source by name, in file order."""
    tables = declaration_tables(SOURCES_FILE, _KEYS, optional=_OPTIONAL_KEYS)
    return {name: SourceDeclaration(name=name, **entry) for name, entry in tables.items()}


def source_declaration(name: str) -> SourceDeclaration:
    try:
        return declared_sources()[name]
    except KeyError:
        known = ", ".join(declared_sources())
        raise KeyError(f"no source {name!r} in {SOURCES_FILE.name}; known sources: {known}") from None


def build_source(name: str, settings: Settings) -> Source:
    """The connector of source ``name``, configured from its settings block and the shared HTTP settings."""
    connector = source_declaration(name).connector_class()
    return connector(settings.source_settings(name, BaseModel), settings.http)
