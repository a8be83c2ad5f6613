"""The quality suite of a contract: checks derived from its fields, key and references, plus its domain rules.

A ``Check`` is a neutral description (reason code, kind, column, parameters) that traces back to one contract
field, key or reference; ``to_expectation`` is the one place that names Great Expectations classes, so the checks
can be listed and tested without importing GX. Checks that need a value a column does not hold (whether a row is
the latest of its key, whether a value is a known key, the end of a sampling hour) read a ``DerivedColumn``
computed on the typed batch first.

Reason codes are stable and go into quarantine: ``<field>_missing``, ``<field>_out_of_range``,
``<field>_not_allowed``, ``<field>_bad_format``, ``<field>_bad_length``, ``<field>_wrong_unit``,
``<field>_implausible`` (a time before the field's floor or after the run's ``not_after``), ``duplicate_key``, and a
reference's own reason (``unknown_station``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from contracts import Contract, FieldSpec
from quality.coercion import EncodedBatch, EncodedColumn, encode_values
from quality.errors import MissingReferenceKeysError
from quality.gx import load_great_expectations
from quality.units import UNIT_SUFFIX

if TYPE_CHECKING:
    from great_expectations.expectations.expectation import ColumnMapExpectation

__all__ = ["UNIT_SUFFIX", "Check", "CheckKind", "DerivedColumn", "Suite", "build_suite", "to_expectation"]

CheckKind = Literal["not_null", "between", "in_set", "regex", "length"]
"""Every kind judges one value at a time, which lets the runner check each distinct value once."""

DUPLICATE_KEY = "duplicate_key"
_LATEST = "_latest_of_its_key"


@dataclass(frozen=True)
class Check:
    """One expectation as data. ``field`` is the contract field (or key) it derives from; ``note`` says why."""

    reason: str
    kind: CheckKind
    column: str
    params: Mapping[str, Any] = field(default_factory=dict)
    field: str | None = None
    note: str = ""

    @property
    def rule(self) -> str:
        """What the check demands, whatever the column: checks with one rule can run as one expectation."""
        return f"{self.kind}:{json.dumps(self.params, sort_keys=True, default=str)}"


@dataclass(frozen=True)
class DerivedColumn:
    """A helper column a check reads, computed from the typed batch (never published)."""

    name: str
    compute: Callable[[EncodedBatch], EncodedColumn]


@dataclass(frozen=True)
class Suite:
    """Everything one validation of one contract runs."""

    contract: type[Contract]
    checks: tuple[Check, ...]
    derived: tuple[DerivedColumn, ...] = ()

    def by_reason(self) -> dict[str, Check]:
        """Reason codes are unique within a suite (a test holds them so), so a reason names its check."""
        return {check.reason: check for check in self.checks}


def build_suite(
    contract: type[Contract],
    columns: Collection[str],
    known_references: Mapping[str, Collection[str]] | None = None,
    *,
    not_after: datetime | None = None,
) -> Suite:
    """The suite for a batch with ``columns``: field checks, unit checks for the unit columns the batch carries,
    the key's uniqueness, references (checked against ``known_references[dataset]``) and the domain rules.
    ``not_after`` is the latest time any datetime field may hold (a run's interval end plus a tolerance)."""
    from quality.domain import domain_rules_for

    checks: list[Check] = []
    for spec in contract.field_specs():
        if spec.derived:  # filled in by quality itself, never read from a source
            continue
        checks.extend(_field_checks(contract, spec))
        if spec.unit is not None and f"{spec.name}{UNIT_SUFFIX}" in columns:
            checks.append(
                Check(
                    f"{spec.name}_wrong_unit",
                    "in_set",
                    f"{spec.name}{UNIT_SUFFIX}",
                    {"value_set": [spec.unit]},
                    spec.name,
                    f"the contract stores {spec.name} in {spec.unit}; a unit that does not convert to it would publish "
                    "a wrong number",
                )
            )
    reference_checks, derived = _references(contract, known_references or {})
    checks.extend(reference_checks)
    for spec in contract.field_specs():
        if spec.type == "datetime":
            check, column = _plausible_time(spec, not_after)
            checks.append(check)
            derived.append(column)
    derived.append(_latest_of_its_key(contract.meta.primary_key, contract.meta.version_field))
    kept = f"the latest by {contract.meta.version_field} (then feed order)"
    checks.append(
        Check(
            DUPLICATE_KEY,
            "in_set",
            _LATEST,
            {"value_set": [True]},
            None,
            f"primary key {contract.meta.primary_key}: of records sharing a key, {kept} is kept",
        )
    )
    for rule in domain_rules_for(contract.meta.key):
        derived.extend(rule.derived)
        checks.extend(rule.checks)
    return Suite(contract, tuple(checks), tuple(derived))


def _field_checks(contract: type[Contract], spec: FieldSpec) -> list[Check]:
    name = spec.name
    checks: list[Check] = []
    if not spec.nullable or name in contract.meta.primary_key:
        checks.append(Check(f"{name}_missing", "not_null", name, {}, name, "required by the contract"))
    if spec.is_bounded:
        bounds = {
            "min_value": spec.minimum if spec.exclusive_minimum is None else spec.exclusive_minimum,
            "max_value": spec.maximum if spec.exclusive_maximum is None else spec.exclusive_maximum,
            "strict_min": spec.exclusive_minimum is not None,
            "strict_max": spec.exclusive_maximum is not None,
        }
        unit = f" {spec.unit}" if spec.unit else ""
        checks.append(Check(f"{name}_out_of_range", "between", name, bounds, name, f"contract bounds{unit}"))
    if spec.allowed is not None:
        checks.append(Check(f"{name}_not_allowed", "in_set", name, {"value_set": list(spec.allowed)}, name))
    if spec.pattern is not None:
        checks.append(Check(f"{name}_bad_format", "regex", name, {"regex": spec.pattern}, name))
    if spec.min_length is not None or spec.max_length is not None:
        lengths = {"min_value": spec.min_length, "max_value": spec.max_length}
        checks.append(Check(f"{name}_bad_length", "length", name, lengths, name))
    return checks


def _plausible_time(spec: FieldSpec, not_after: datetime | None) -> tuple[Check, DerivedColumn]:
    """A time that cannot be true: before the field's floor, or after ``not_after``; without either, outside the
    years 1-9999 in UTC, where the contract's model ends (a time whose offset takes it before year 1 is typed all
    the same, and refused here). Judged on a derived column: report times are mostly distinct, and a bound on the
    time column itself would put every one of them in the checks' value table."""
    floor = spec.earliest or datetime.min.replace(tzinfo=UTC)
    ceiling = not_after or datetime.max.replace(tzinfo=UTC)
    column = f"_{spec.name}_is_plausible"
    note = f"from {floor.isoformat()} to {ceiling.isoformat()}: else a clock that was reset, or runs ahead of the run"

    def compute(batch: EncodedBatch) -> EncodedColumn:
        return batch.columns[spec.name].mapped(lambda times: (times >= floor) & (times <= ceiling))

    check = Check(f"{spec.name}_implausible", "in_set", column, {"value_set": [True]}, spec.name, note)
    return check, DerivedColumn(column, compute)


def _references(
    contract: type[Contract], known: Mapping[str, Collection[str]]
) -> tuple[list[Check], list[DerivedColumn]]:
    """A reference is checked on a derived column saying whether each value is a known key. The keys stay out of
    the expectation: they change with every run while the suite stays the contract's, and GX copies an
    expectation's parameters dozens of times per validation (500 station codes cost 0.1 s a batch, and the cost
    grows with the keys: a city has 9,092 river segments)."""
    checks, derived = [], []
    for reference in contract.meta.references:
        if reference.dataset not in known:
            raise MissingReferenceKeysError(
                f"{contract.meta.key}: {reference.field} must exist in {reference.dataset}, but no keys of "
                f"{reference.dataset} were passed; pass known_references={{{reference.dataset!r}: keys}}"
            )
        column = f"_{reference.field}_is_a_key_of_{reference.dataset}"
        note = f"{reference.field} must be a key of {reference.dataset}"
        checks.append(Check(reference.reason, "in_set", column, {"value_set": [True]}, reference.field, note))
        derived.append(_is_known(column, reference.field, {str(key) for key in known[reference.dataset]}))
    return checks, derived


def _is_known(name: str, field: str, keys: set[str]) -> DerivedColumn:
    """Per row, whether its value is among ``keys``; null where it has none (judged as missing, if at all).

    The keys are hashed once, into an index of Python objects that Arrow text and object columns alike look up in
    C: ``Series.isin`` on Arrow text turns every key into an Arrow scalar in Python at each call (measured with
    26,508 keys and 3,000 values: 90 ms that way, 1.3 ms this way)."""
    import pandas as pd

    index = pd.Index(list(keys), dtype=object)

    def compute(batch: EncodedBatch) -> EncodedColumn:
        return batch.columns[field].mapped(lambda values: pd.Series(index.get_indexer(values) >= 0, index=values.index))

    return DerivedColumn(name, compute)


def _latest_of_its_key(primary_key: Sequence[str], version_field: str) -> DerivedColumn:
    """Whether no later record of the batch has the same key: later by the contract's version field (a correction
    carries a later ``updated_at``), then by feed order. The latest is kept, as publish's newer-data-wins rule would
    keep it had the two arrived in separate runs.

    A row with a part of its key missing has no key to share: it is quarantined as missing, and only as that.
    """

    def compute(batch: EncodedBatch) -> EncodedColumn:
        import pandas as pd

        keyed = np.flatnonzero(np.logical_and.reduce([batch.columns[name].codes >= 0 for name in primary_key]))
        codes = [batch.columns[name].codes[keyed] for name in primary_key]
        radices = [len(batch.columns[name].values) for name in primary_key]
        if float(np.prod(radices, dtype=np.float64)) < 2.0**62:
            key = np.zeros(len(keyed), dtype=np.int64)
            for part, radix in zip(codes, radices, strict=True):  # one integer per key: codes in mixed radix
                key = key * radix + part
        else:
            groups = pd.DataFrame(dict(zip(primary_key, codes, strict=True))).groupby(list(primary_key)).ngroup()
            key = groups.to_numpy(dtype=np.int64)
        # Keys rarely repeat: a counting pass finds the rows that share theirs, and only those are sorted.
        if len(key) and key.max() < 4 * batch.rows:
            shared = np.bincount(key)[key] > 1
        else:
            shared = pd.Series(key).duplicated(keep=False).to_numpy()
        keyed, key = keyed[shared], key[shared]
        version = np.zeros(len(keyed), dtype=np.float64)
        if version_field in batch.columns:  # a missing version sorts first: that row is quarantined for it anyway
            values = batch.columns[version_field].rows(keyed)
            stamps = values.array.asi8 if values.dtype.kind == "M" else values.to_numpy(np.float64, na_value=np.nan)
            version = np.where(values.isna().to_numpy(), -np.inf, stamps.astype(np.float64))
        order = np.lexsort((keyed, version, key))  # by key, then version, then feed position
        latest = np.ones(batch.rows, dtype=bool)
        latest[keyed[order[:-1]]] = key[order[:-1]] != key[order[1:]]
        return encode_values(latest)

    return DerivedColumn(_LATEST, compute)


def to_expectation(checks: Sequence[Check], column: str | None = None) -> ColumnMapExpectation:
    """The Great Expectations expectation of one check, or of checks sharing one rule whose values are stacked in
    ``column``; its ``meta`` lists the reason codes (and contract fields) it decides."""
    if len({check.rule for check in checks}) != 1:
        raise ValueError(f"one expectation runs one rule: {[check.reason for check in checks]}")
    load_great_expectations()
    from great_expectations.expectations.core import (
        expect_column_value_lengths_to_be_between as lengths,
    )
    from great_expectations.expectations.core import (
        expect_column_values_to_be_between as between,
    )
    from great_expectations.expectations.core import (
        expect_column_values_to_be_in_set as in_set,
    )
    from great_expectations.expectations.core import (
        expect_column_values_to_match_regex as regex,
    )
    from great_expectations.expectations.core import (
        expect_column_values_to_not_be_null as not_null,
    )

    kinds: dict[CheckKind, type[ColumnMapExpectation]] = {
        "not_null": not_null.ExpectColumnValuesToNotBeNull,
        "between": between.ExpectColumnValuesToBeBetween,
        "in_set": in_set.ExpectColumnValuesToBeInSet,
        "regex": regex.ExpectColumnValuesToMatchRegex,
        "length": lengths.ExpectColumnValueLengthsToBeBetween,
    }
    rule = checks[0]
    notes = "; ".join(dict.fromkeys(check.note for check in checks if check.note))
    return kinds[rule.kind](
        column=column or rule.column,
        **rule.params,
        meta={"reasons": [check.reason for check in checks], "fields": [check.field for check in checks]},
        notes=notes or None,
    )
