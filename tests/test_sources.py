"""The source declarations (`waterhub/sources.toml`) agree with the code they name, and build what they declare."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from contracts import get_contract
from waterhub.settings import Settings
from waterhub.sources import build_source, declared_sources, source_declaration

DECLARED = sorted(declared_sources())


def test_the_water_quality_source_is_declared_with_its_two_datasets() -> None:
    declaration = source_declaration("water_quality")
    assert dict(declaration.streams) == {"stations": "water_quality.stations", "samples": "water_quality.samples"}
    assert declaration.schedule == "@hourly"


@pytest.mark.parametrize("name", DECLARED)
def test_a_declared_source_builds_a_connector_reading_exactly_its_declared_streams(name: str) -> None:
    declaration = source_declaration(name)
    source = build_source(name, Settings())
    assert source.name == name
    assert source.title == declaration.title
    assert [(stream.name, stream.contract.meta.key) for stream in source.streams] == list(declaration.streams.items())
    for dataset in declaration.datasets:
        assert get_contract(dataset).meta.key == dataset


@pytest.mark.parametrize("name", DECLARED)
def test_a_declared_source_gets_its_settings_block_from_the_environment(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    block_class = source_declaration(name).settings_class()
    field = next(iter(block_class.model_fields))
    default = block_class.model_fields[field].get_default(call_default_factory=True)
    if not isinstance(default, int | str) or isinstance(default, bool):
        pytest.skip(f"{name}: first setting {field} is not a plain value")
    changed = default + 1 if isinstance(default, int) else f"{default}/changed"
    monkeypatch.setenv(f"WATERHUB_{name.upper()}__{field.upper()}", str(changed))
    block = Settings().source_settings(name, BaseModel)
    assert isinstance(block, block_class)
    assert getattr(block, field) == changed


def test_an_unknown_source_names_the_declared_ones() -> None:
    with pytest.raises(KeyError, match="known sources: water_quality"):
        build_source("groundwater", Settings())
