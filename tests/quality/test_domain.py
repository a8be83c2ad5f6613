"""Domain rules: every registered rule belongs to a contract and loads, and a rule module is found by itself."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import quality.domain
import quality.rules
from contracts import all_contracts
from quality.domain import domain_rules_for, rule_datasets


@pytest.fixture
def fresh_rule_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """An empty rule registry that has not looked for rule modules yet, with ``tmp_path`` as one more folder of
    the ``quality.rules`` package; everything is put back afterwards."""
    monkeypatch.setattr(quality.domain, "_RULES", {})
    monkeypatch.setattr(quality.domain, "_loaded", False)
    monkeypatch.setattr(quality.rules, "__path__", [*quality.rules.__path__, str(tmp_path)])
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_every_rule_is_filed_under_a_registered_dataset_and_builds() -> None:
    keys = {contract.meta.key for contract in all_contracts()}
    assert rule_datasets() - keys == set()
    for contract in all_contracts():
        fields = set(contract.model_fields)
        for rule in domain_rules_for(contract.meta.key):
            derived = {column.name for column in rule.derived}
            assert rule.checks, rule.name
            for check in rule.checks:
                assert check.column in fields | derived, (rule.name, check.reason)


def test_the_hourly_rule_of_water_quality_samples_is_registered() -> None:
    """README, "How quality decides": hourly HJ 212 samples are stamped on the hour and reported after it ends."""
    reasons = {check.reason for rule in domain_rules_for("water_quality.samples") for check in rule.checks}
    assert reasons == {"sampled_at_not_on_the_hour", "updated_before_sample_ended"}


def test_a_rule_module_nobody_imports_is_found_and_registered(fresh_rule_registry: Path) -> None:
    (fresh_rule_registry / "probe_rules.py").write_text(
        "from quality.domain import DomainRule, domain_rule\n"
        "from quality.suite import Check\n"
        "@domain_rule('probe.dataset')\n"
        "def _probe() -> DomainRule:\n"
        "    return DomainRule('probe', checks=(Check('probe_missing', 'not_null', 'x', {}, 'x', 'probe'),))\n"
    )
    assert [rule.name for rule in domain_rules_for("probe.dataset")] == ["probe"]
    assert "quality.rules.probe_rules" in sys.modules
