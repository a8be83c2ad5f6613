"""Validate a batch as one DataFrame and split it: valid rows to publish, quarantined rows with all their reasons.

The bulk path runs no per-row pydantic loop (STYLE rule 8). The batch is reduced to distinct values per column and
typed (``quality.coercion``); the contract-derived suite then runs in Great Expectations, once, on a *value table*
whose column ``c`` lists the distinct values of ``c`` (padded by repeating its first value). Every check judges one
value at a time, so the ``COMPLETE`` result's unexpected index lists name the failing values, and a row fails a
check when its value does. Each expectation's ``meta["reason"]`` is the reason code its rows get. GX runs in one
ephemeral context per process with progress bars and analytics off, and writes nothing to disk.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from contracts import Contract
from quality.coercion import EncodedColumn, encode_batch, encode_values
from quality.errors import SuiteEvaluationError
from quality.gx import batch_definition
from quality.suite import Check, Suite, build_suite

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

__all__ = ["ValidationOutcome", "validate_frame"]

_Mask = npt.NDArray[np.bool_]
_Codes = npt.NDArray[np.intp]


@dataclass(frozen=True)
class ValidationOutcome:
    """``valid`` holds the contract's columns in contract types (RangeIndex; text as a categorical of ``str``,
    times as UTC microseconds); ``quarantined`` maps a row's position in the input frame to its sorted reason
    codes; ``results`` counts the rows each check rejected (zeros too)."""

    rows: int
    valid: pd.DataFrame
    quarantined: dict[int, list[str]]
    results: dict[str, int]

    @property
    def valid_count(self) -> int:
        return len(self.valid)

    @property
    def quarantined_count(self) -> int:
        return len(self.quarantined)


def validate_frame(
    contract: type[Contract], frame: pd.DataFrame, *, known_references: Mapping[str, Collection[str]] | None = None
) -> ValidationOutcome:
    """Check every row of ``frame`` (raw values, one column per contract field, extra columns such as units allowed).

    ``known_references`` gives, per referenced dataset, the keys a reference may point at.
    """
    batch = encode_batch(contract, frame)
    suite = build_suite(contract, batch.columns.keys(), known_references)
    columns = dict(batch.columns) | {derived.name: encode_values(derived.compute(batch)) for derived in suite.derived}
    rejected: dict[str, _Mask] = {
        reason: mask for name in batch.columns for reason, mask in batch.columns[name].failed.items()
    }
    checks = suite.by_reason()
    for reason, rows in _run_suite(suite, columns, batch.rows).items():
        check = checks[reason]
        if check.kind == "not_null" and check.field is not None:
            # The value was sent but could not be typed: that reason is recorded already, not "missing" as well.
            rows = rows & ~columns[check.field].failed_rows()
        rejected[reason] = rejected[reason] | rows if reason in rejected else rows
    reasons_by_row: dict[int, list[str]] = {}
    bad = np.zeros(batch.rows, dtype=bool)
    for reason in sorted(rejected):
        bad |= rejected[reason]
        for position in np.flatnonzero(rejected[reason]).tolist():
            reasons_by_row.setdefault(position, []).append(reason)
    names = [spec.name for spec in contract.field_specs()]
    valid = batch.frame(names, np.flatnonzero(~bad))
    results = {check.reason: 0 for check in suite.checks} | {
        reason: int(rows.sum()) for reason, rows in rejected.items()
    }
    return ValidationOutcome(batch.rows, valid, dict(sorted(reasons_by_row.items())), dict(sorted(results.items())))


@dataclass(frozen=True)
class _TableColumn:
    """One column of the value table: its distinct values, then a null if some row has none; ``row_entry`` gives
    each row's entry, where -1 (no value) picks that trailing null."""

    entries: pd.Series
    row_entry: _Codes


def _table_column(column: EncodedColumn, presence_only: bool) -> _TableColumn:
    """``presence_only``: every check of the column is not-null, so one value stands for all present ones."""
    import pandas as pd

    values = column.values.iloc[:1] if presence_only else column.values
    has_null = bool((column.codes < 0).any())
    take = np.r_[np.arange(len(values)), [-1] if has_null else []].astype(np.intp, copy=False)
    row_entry = np.minimum(column.codes, 0) if presence_only else column.codes
    return _TableColumn(pd.Series(values.array.take(take, allow_fill=True)), row_entry)


def _run_suite(suite: Suite, columns: Mapping[str, EncodedColumn], rows: int) -> dict[str, _Mask]:
    """Rows each check rejected, by reason (checks that rejected nothing are left out); every check runs once, on
    the distinct values of its column."""
    import pandas as pd

    if rows == 0:
        return {}
    checked = {check.column for check in suite.checks}
    table = {
        name: _table_column(columns[name], all(c.kind == "not_null" for c in suite.checks if c.column == name))
        for name in sorted(checked)
    }
    length = max(len(column.entries) for column in table.values())
    padded = {name: _padded(column.entries, length) for name, column in table.items()}
    frame = pd.DataFrame(padded, index=pd.RangeIndex(length))
    batch = batch_definition().get_batch(batch_parameters={"dataframe": frame})
    # A quick gate first: most checks pass, and only a failed one needs GX to list the values it rejected.
    gate = _outcomes(suite, batch.validate(suite.expectation_suite(), result_format="BOOLEAN_ONLY"))
    failed = {check.reason for check, outcome in gate if not outcome.success}
    if not failed:
        return {}
    detail = batch.validate(suite.expectation_suite(failed), result_format={"result_format": "COMPLETE"})
    rejected: dict[str, _Mask] = {}
    for check, outcome in _outcomes(suite, detail):
        column = table[check.column]
        failing = np.zeros(len(column.entries), dtype=bool)
        positions = np.asarray(outcome.result.get("unexpected_index_list") or [], dtype=np.intp)
        failing[positions[positions < len(column.entries)]] = True  # the padding repeats entry 0
        if failing.any():
            rejected[check.reason] = failing[column.row_entry]
    return rejected


def _outcomes(suite: Suite, result: ExpectationSuiteValidationResult) -> list[tuple[Check, Any]]:
    """Each expectation's result with the check it came from; an expectation GX could not evaluate is a bug."""
    by_reason = suite.by_reason()
    outcomes = []
    for outcome in result.results:
        config = outcome.expectation_config
        if config is None:  # pragma: no cover - GX always echoes the configuration it ran
            raise SuiteEvaluationError(f"{suite.contract.meta.key}: a validation result carries no expectation")
        check = by_reason[str(config.meta["reason"])]
        info: dict[str, Any] = outcome.exception_info or {}
        if info.get("raised_exception"):
            raise SuiteEvaluationError(
                f"{suite.contract.meta.key}: check {check.reason} could not be evaluated "
                f"({info.get('exception_message')}); nothing was quarantined or published for this batch"
            )
        outcomes.append((check, outcome))
    return outcomes


def _padded(entries: pd.Series, length: int) -> pd.Series:
    import pandas as pd

    if len(entries) == length:
        return entries
    filler = 0 if len(entries) else -1
    take = np.r_[np.arange(len(entries)), np.full(length - len(entries), filler)].astype(np.intp, copy=False)
    return pd.Series(entries.array.take(take, allow_fill=True))
