"""`waterhub contracts`: the JSON a consumer scripts against equals the contract's own export."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from contracts import all_contracts
from contracts.water_quality import WaterQualitySample
from waterhub.cli.main import app

runner = CliRunner()


def test_contracts_list_json_names_every_registered_contract() -> None:
    result = runner.invoke(app, ["contracts", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = [(row["key"], row["version"], row["fields"]) for row in json.loads(result.stdout)]
    assert listed == [(c.meta.key, c.meta.version, len(c.field_specs())) for c in all_contracts()]


def test_contracts_schema_prints_the_exported_json_schema() -> None:
    result = runner.invoke(app, ["contracts", "schema", "water_quality.samples"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(json.dumps(WaterQualitySample.json_schema()))


def test_an_unknown_contract_exits_non_zero_with_a_hint() -> None:
    result = runner.invoke(app, ["contracts", "show", "hydrology.groundwater"])
    assert result.exit_code == 1
    assert "no contract hydrology.groundwater" in result.output
    assert "waterhub contracts list" in result.output
