"""Every artefact derived from a contract traces back to it (STYLE rule 7): JSON Schema properties, SQL columns and
quality checks name contract fields, and each rule the contract states has its check."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from contracts import Contract, all_contracts
from contracts.water_quality import FACTOR_CODES, WaterQualitySample
from exchange.tables import HASH_COLUMN, RUN_COLUMN, SEQ_COLUMN, dataset_table
from quality.suite import UNIT_SUFFIX, Suite, build_suite, to_expectation

CONTRACTS = list(all_contracts())


def _suite_for(contract: type[Contract]) -> Suite:
    units = [f"{spec.name}{UNIT_SUFFIX}" for spec in contract.field_specs() if spec.unit]
    columns = [spec.name for spec in contract.field_specs()] + units
    return build_suite(contract, columns, {ref.dataset: ["x"] for ref in contract.meta.references})


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: f"{contract.meta.key}@{contract.meta.version}")
def test_schema_table_and_checks_all_trace_back_to_the_contract_fields(contract: type[Contract]) -> None:
    fields = set(contract.model_fields)
    assert set(contract.json_schema()["properties"]) == fields
    assert {column.name for column in dataset_table(contract).columns} == fields | {HASH_COLUMN, SEQ_COLUMN, RUN_COLUMN}
    suite = _suite_for(contract)
    for check in suite.checks:
        assert check.field in fields or check.reason == "duplicate_key", check
    reasons = [check.reason for check in suite.checks]
    assert len(reasons) == len(set(reasons)), "two checks share a reason code"


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: f"{contract.meta.key}@{contract.meta.version}")
def test_every_rule_the_contract_states_has_its_check(contract: type[Contract]) -> None:
    reasons = {check.reason for check in _suite_for(contract).checks}
    for spec in contract.field_specs():
        if spec.derived:  # the hub fills it in: nothing a source sends is checked against it
            assert not {reason for reason in reasons if reason.startswith(f"{spec.name}_")}, spec.name
            continue
        expected = {
            f"{spec.name}_missing": not spec.nullable,
            f"{spec.name}_out_of_range": spec.is_bounded,
            f"{spec.name}_not_allowed": spec.allowed is not None,
            f"{spec.name}_bad_format": spec.pattern is not None,
            f"{spec.name}_bad_length": spec.min_length is not None or spec.max_length is not None,
            f"{spec.name}_wrong_unit": spec.unit is not None,
        }
        assert {reason for reason, stated in expected.items() if stated} <= reasons, spec.name
        assert not {reason for reason, stated in expected.items() if not stated} & reasons, spec.name
    assert {ref.reason for ref in contract.meta.references} <= reasons


def test_each_expectation_carries_its_checks_reason_and_column() -> None:
    for contract in CONTRACTS:
        for check in _suite_for(contract).checks:
            expectation = to_expectation([check])
            assert expectation.meta == {"reasons": [check.reason], "fields": [check.field]}
            assert expectation.column == check.column


def test_checks_of_one_rule_make_one_expectation_and_other_rules_are_refused() -> None:
    checks = _suite_for(WaterQualitySample).checks
    flags = [check for check in checks if check.column.endswith("_flag")]
    assert len(flags) == len(FACTOR_CODES)
    assert len({check.rule for check in flags}) == 1
    expectation = to_expectation(flags, "flags")
    assert expectation.column == "flags"
    assert expectation.meta is not None
    assert expectation.meta["reasons"] == [check.reason for check in flags]
    ranges = [check for check in checks if check.kind == "between" and check.field in ("ph", "turbidity")]
    with pytest.raises(ValueError, match="one rule"):
        to_expectation(ranges)


def test_importing_quality_loads_no_great_expectations() -> None:
    """GX costs seconds to import; a DAG file, the CLI or a connector importing quality must not pay for it."""
    probe = "import json, sys, quality.runner, quality.suite; print(json.dumps('great_expectations' in sys.modules))"
    done = subprocess.run(  # noqa: S603 - our own interpreter running our own probe
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) is False
