"""Judge records one at a time, for the device gateway's micro-batches, with the rules the batch runner applies.

``quality.runner.validate_frame`` runs Great Expectations, which spends a fixed tenth of a second or more per call
whatever the batch size: right for an hourly batch, far too slow for a gateway that commits every few tens of
milliseconds. So a device reading is typed and checked by the contract's own pydantic model (the model the
runner's verdicts are held to by a property test), its factors are judged by ``quality.factors`` (the same
functions the runner uses), and the dataset's domain rules run on the micro-batch through their own derived
columns. Nothing here restates a rule: reason codes are the runner's (``<field>_<what>``), named from pydantic's
error types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import numpy as np
from pydantic import ValidationError

from contracts import Contract, Factor
from quality.coercion import EncodedBatch, EncodedColumn, encode_field
from quality.domain import domain_rules_for
from quality.factors import below_detection_reason, factor_status, flag_status, is_below_detection

__all__ = ["RecordVerdict", "domain_reasons", "judge_record"]

_REASON_BY_ERROR: dict[str, str] = {
    "missing": "missing",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "finite_number": "not_finite",
    "literal_error": "not_allowed",
    "enum": "not_allowed",
    "string_pattern_mismatch": "bad_format",
    "string_too_short": "bad_length",
    "string_too_long": "bad_length",
    "string_type": "not_a_string",
    "float_parsing": "not_a_number",
    "float_type": "not_a_number",
    "int_parsing": "not_a_number",
    "int_type": "not_a_number",
    "int_from_float": "not_a_number",
    "int_parsing_size": "out_of_range",
    "datetime_parsing": "not_a_time",
    "datetime_type": "not_a_time",
    "datetime_from_date_parsing": "not_a_time",
    "timezone_aware": "not_a_time",
    "value_error": "not_a_time",
}
"""pydantic error type → the runner's reason suffix; an unlisted type reads ``<field>_invalid``."""


@dataclass(frozen=True)
class RecordVerdict:
    """``row`` (field name → contract-typed value, statuses filled, withheld values null) when the record is
    published, else None and ``reasons`` say why it is quarantined whole; ``withheld`` maps a factor withheld from
    a published row to its reasons, and ``raw`` keeps each withheld factor's fields as sent."""

    row: dict[str, Any] | None
    reasons: tuple[str, ...] = ()
    withheld: dict[str, tuple[str, ...]] = field(default_factory=dict)
    raw: dict[str, dict[str, object]] = field(default_factory=dict)


def judge_record(contract: type[Contract], record: Mapping[str, object]) -> RecordVerdict:
    """One record (by field name, raw values) judged as the runner judges a row of a batch."""
    factors, factor_of = _factors(contract)
    data = {name: _plain(value) for name, value in record.items()}
    below = {factor.name for factor in factors if _below(factor, data.get(factor.value.name))}
    for factor in factors:
        if factor.name in below:
            data[factor.value.name] = None
    withheld: dict[str, list[str]] = {}
    try:
        model = contract.model_validate(data)
    except ValidationError as exc:
        record_reasons: list[str] = []
        for error in exc.errors(include_url=False, include_input=False):
            name = str(error["loc"][0]) if error["loc"] else ""
            reason = f"{name}_{_REASON_BY_ERROR.get(error['type'], 'invalid')}"
            owner = factor_of.get(name)
            if owner is None:
                record_reasons.append(reason)
                continue
            withheld.setdefault(owner.name, []).append(reason)
            data[name] = None
        if record_reasons:
            return RecordVerdict(None, tuple(sorted(set(record_reasons))))
        model = contract.model_validate(data)
    row = model.model_dump()
    for factor in factors:
        sent = record.get(factor.value.name)  # the raw value: "nothing sent" is judged before any withholding
        status = factor_status(
            rejected=factor.name in withheld,
            flag=flag_status(row[factor.flag.name]) if factor.flag is not None else None,
            below_detection=factor.name in below,
            has_value=sent is not None,
        )
        row[factor.status.name] = status
        if factor.name in below:
            withheld.setdefault(factor.name, []).append(below_detection_reason(factor))
    raw = {name: {field: record.get(field) for field in _factor(factors, name).fields} for name in withheld}
    return RecordVerdict(row, (), {name: tuple(sorted(set(r))) for name, r in withheld.items()}, raw)


def domain_reasons(contract: type[Contract], rows: Sequence[Mapping[str, Any]]) -> dict[int, list[str]]:
    """The dataset's domain rules (``quality.domain``) applied to typed rows: position → reasons, failing rows only.

    The rules' own derived columns are computed on the rows as a batch, so a rule is written once for both paths;
    only the columns a rule reads are encoded.
    """
    rules = list(domain_rules_for(contract.meta.key))
    if not rules or not rows:
        return {}
    batch = EncodedBatch(len(rows), _ColumnsOnDemand(contract, rows))
    failed: dict[int, list[str]] = {}
    for rule in rules:
        columns = {derived.name: derived.compute(batch) for derived in rule.derived}
        for check in rule.checks:
            if check.kind != "between":
                raise TypeError(f"domain rule {rule.name}: a {check.kind} check has no per-record form yet")
            values = columns[check.column].rows().to_numpy(dtype=np.float64, na_value=np.nan)
            low = check.params.get("min_value", -np.inf)
            high = check.params.get("max_value", np.inf)
            bad = ~np.isnan(values) & ((values < low) | (values > high))
            for position in np.flatnonzero(bad).tolist():
                failed.setdefault(position, []).append(check.reason)
    return failed


class _ColumnsOnDemand(dict[str, EncodedColumn]):
    """A micro-batch's columns, each encoded when a rule first reads it: a rule reads two or three of a contract's
    thirty-odd fields, and encoding them all cost a small batch more than the rest of its judging."""

    def __init__(self, contract: type[Contract], rows: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        self.contract = contract
        self.records = rows

    def __missing__(self, name: str) -> EncodedColumn:
        import pandas as pd

        # A Series, not a one-column frame's: the same values and dtype at a fifth of the cost.
        column = encode_field(self.contract, name, pd.Series([row.get(name) for row in self.records], name=name))
        self[name] = column
        return column


@cache
def _factors(contract: type[Contract]) -> tuple[tuple[Factor, ...], dict[str, Factor]]:
    """A contract's factors, and the factor each sent field belongs to: read off its JSON Schema once."""
    factors = contract.factors()
    return factors, {name: factor for factor in factors for name in factor.fields}


def _factor(factors: Sequence[Factor], name: str) -> Factor:
    return next(factor for factor in factors if factor.name == name)


def _plain(value: object) -> object:
    """Decoders keep exact ``Decimal`` values; the contracts type readings as floats."""
    return float(value) if isinstance(value, Decimal) else value


def _below(factor: Factor, value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and bool(is_below_detection(factor, float(value)))
    )
