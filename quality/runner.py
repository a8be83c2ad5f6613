"""Validate a batch as one DataFrame and split it: valid rows to publish, quarantined rows with all their reasons.

The bulk path runs no per-row pydantic loop (STYLE rule 8). The batch is reduced to distinct values per column and
typed (``quality.coercion``); the contract-derived suite then runs in Great Expectations, once, on a *value table*
that holds the distinct values each check judges (padded by repeating its first value). Every check judges one
value at a time, so the ``COMPLETE`` result's unexpected index lists name the failing values, and a row fails a
check when its value does. Checks that differ only in their column (nine flags against one code list) share one
column of the table and one expectation, whose ``meta["reasons"]`` lists the reason codes it decides: GX spends
milliseconds per expectation whatever the number of values. GX runs in one ephemeral context per process with
progress bars and analytics off, and writes nothing to disk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from contracts import Contract
from quality.coercion import EncodedColumn, encode_batch
from quality.errors import SuiteEvaluationError
from quality.factors import FactorVerdicts, apply_verdicts, below_detection_reason, judge_factors
from quality.gx import batch_definition, load_great_expectations
from quality.suite import DUPLICATE_KEY, Check, Suite, build_suite, to_expectation
from quality.units import in_contract_units

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

__all__ = ["ChunkedOutcome", "ValidationOutcome", "VerdictMemo", "validate_frame"]

_Mask = npt.NDArray[np.bool_]
_Codes = npt.NDArray[np.signedinteger[Any]]


@dataclass(frozen=True)
class ValidationOutcome:
    """``valid`` holds the contract's columns in contract types (RangeIndex; text as a categorical of ``str``,
    times as UTC microseconds), withheld factor values null and every factor's status filled in; ``quarantined``
    maps a row's position in the input frame to its sorted reason codes; ``positions`` gives each valid row's
    position in the input frame; ``withheld`` maps the input position of a published row to the factors withheld
    from it and their reasons; ``results`` counts the rows each check rejected (zeros too)."""

    rows: int
    valid: pd.DataFrame
    positions: npt.NDArray[np.intp]
    quarantined: dict[int, list[str]]
    withheld: dict[int, dict[str, list[str]]]
    results: dict[str, int]

    @property
    def valid_count(self) -> int:
        return len(self.valid)

    @property
    def quarantined_count(self) -> int:
        return len(self.quarantined)


def validate_frame(
    contract: type[Contract],
    frame: pd.DataFrame,
    *,
    known_references: Mapping[str, Collection[str]] | None = None,
    not_after: datetime | None = None,
    memo: VerdictMemo | None = None,
) -> ValidationOutcome:
    """Check every row of ``frame`` (raw values, one column per contract field, extra columns such as units allowed).

    ``known_references`` gives, per referenced dataset, the keys a reference may point at. ``not_after`` is the
    latest plausible time (the run's interval end plus ``contracts.types.CLOCK_TOLERANCE``): a later one in any
    datetime field is ``<field>_implausible``, as the contract's model refuses it given ``context={"not_after": ...}``.
    ``memo`` carries Great Expectations' verdicts from one chunk of a stream to the next (``VerdictMemo``).
    """
    batch = encode_batch(contract, in_contract_units(contract, frame))
    suite = build_suite(contract, batch.columns.keys(), known_references, not_after=not_after)
    columns = dict(batch.columns) | {derived.name: derived.compute(batch) for derived in suite.derived}
    rejected: dict[str, _Mask] = {}
    reason_fields: dict[str, str | None] = {}
    for name in batch.columns:
        for reason, mask in batch.columns[name].failed.items():
            rejected[reason], reason_fields[reason] = mask, name
    checks = suite.by_reason()
    for reason, rows in _run_suite(suite, columns, batch.rows, memo or VerdictMemo()).items():
        check = checks[reason]
        if check.kind == "not_null" and check.field is not None:
            # The value was sent but could not be typed: that reason is recorded already, not "missing" as well.
            rows = rows & ~columns[check.field].failed_rows()
        rejected[reason] = rejected[reason] | rows if reason in rejected else rows
        reason_fields[reason] = check.field
    verdicts = judge_factors(contract, columns, rejected, reason_fields)
    bad = np.zeros(batch.rows, dtype=bool)
    for rows in verdicts.record_reasons.values():
        bad |= rows
    counted = verdicts.record_reasons | {r: m for reasons in verdicts.withheld.values() for r, m in reasons.items()}
    positions = np.flatnonzero(~bad)
    names = [spec.name for spec in contract.field_specs() if not spec.derived]
    valid = apply_verdicts(contract, batch.frame(names, positions), positions, columns, verdicts)
    valid = valid[[spec.name for spec in contract.field_specs()]]
    results = {check.reason: 0 for check in suite.checks} | {
        reason: int(rows.sum()) for reason, rows in counted.items()
    }
    return ValidationOutcome(
        batch.rows,
        valid,
        positions,
        _reasons_by_row(counted, bad),
        _withheld_by_row(verdicts, ~bad),
        dict(sorted(results.items())),
    )


class ChunkedOutcome:
    """One stream's verdicts, validated in consecutive chunks so that memory holds one chunk's frame, not the
    stream's. Positions run on across chunks; of valid rows of different chunks that share a key only the latest
    (by the version field, then feed order) stays valid, the others quarantined as ``duplicate_key``.

    Within a chunk the suite keeps the latest of any records sharing a key; across chunks only valid rows are
    compared, as publish's newer-data-wins rule compares records that arrived in separate runs. The valid rows
    themselves are not kept here (the caller stages each chunk's as it comes): per valid row only a 64-bit hash of
    its key and its position, so that ``doubtful`` names the few rows whose key another chunk's row may share, and
    ``supersede`` decides them on their real keys read back (two keys may share a hash).
    """

    def __init__(self, contract: type[Contract]) -> None:
        self.contract = contract
        self.rows = 0
        self.quarantined: dict[int, list[str]] = {}
        self.withheld: dict[int, int] = {}
        """Factors withheld from each published row, by its position in the stream."""
        self.results = Counter[str]()
        self._hashes: list[npt.NDArray[np.uint64]] = []
        self._positions: list[npt.NDArray[np.intp]] = []

    def add(self, outcome: ValidationOutcome) -> None:
        """Take the next chunk's outcome (positions within the chunk); its valid rows are the chunk's part."""
        offset = self.rows
        self.rows += outcome.rows
        self._hashes.append(_key_hashes(self.contract, outcome.valid))
        self._positions.append((outcome.positions + offset).astype(np.intp))
        self.quarantined.update((position + offset, reasons) for position, reasons in outcome.quarantined.items())
        self.withheld.update((position + offset, len(factors)) for position, factors in outcome.withheld.items())
        self.results.update(outcome.results)

    def positions(self, part: int) -> npt.NDArray[np.intp]:
        """Stream positions of the valid rows of chunk ``part``, in its valid frame's order."""
        return self._positions[part]

    @property
    def valid_count(self) -> int:
        return sum(len(positions) for positions in self._positions)

    @property
    def quarantined_count(self) -> int:
        return len(self.quarantined)

    def doubtful(self) -> dict[int, npt.NDArray[np.intp]]:
        """Per chunk, the rows of its valid frame whose key hash a valid row elsewhere in the stream shares: the only
        rows one may supersede (chunks without any are left out)."""
        if len(self._hashes) < 2:
            return {}
        ordered = np.sort(np.concatenate(self._hashes))
        shared = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
        found = {part: np.flatnonzero(np.isin(hashes, shared)) for part, hashes in enumerate(self._hashes)}
        return {part: rows for part, rows in found.items() if rows.size}

    def supersede(self, doubtful: Mapping[int, pd.DataFrame]) -> dict[int, npt.NDArray[np.intp]]:
        """Given per chunk its doubtful rows' key and version columns (indexed by row of the chunk's valid frame),
        quarantine those a later valid row of the same key supersedes; returns them per chunk, for the caller to
        drop from the chunks' staged frames."""
        import pandas as pd

        if not doubtful:
            return {}
        key, version = list(self.contract.meta.primary_key), self.contract.meta.version_field
        rows = pd.concat(
            [
                frame[[*key, version]].assign(
                    _part=part, _row=frame.index.to_numpy(), _position=self._positions[part][frame.index]
                )
                for part, frame in doubtful.items()
            ],
            ignore_index=True,
        ).sort_values([version, "_position"], kind="stable")
        dropped = rows[rows.duplicated(subset=key, keep="last")]
        superseded: dict[int, npt.NDArray[np.intp]] = {}
        for part, rows_of_part in dropped.groupby("_part"):
            at = np.sort(rows_of_part["_row"].to_numpy(dtype=np.intp))
            superseded[int(part)] = at
            for position in self._positions[int(part)][at].tolist():
                self.quarantined[position] = [DUPLICATE_KEY]
                self.withheld.pop(position, None)
            self._positions[int(part)] = np.delete(self._positions[int(part)], at)
            self._hashes[int(part)] = np.delete(self._hashes[int(part)], at)
        self.results[DUPLICATE_KEY] += len(dropped)
        self.quarantined = dict(sorted(self.quarantined.items()))
        return superseded


def _key_hashes(contract: type[Contract], valid: pd.DataFrame) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each valid row's key; the same key hashes alike in any chunk (a categorical hashes by its
    values, not its codes)."""
    import pandas as pd

    hashes: npt.NDArray[np.uint64] = pd.util.hash_pandas_object(
        valid[list(contract.meta.primary_key)], index=False
    ).to_numpy(dtype=np.uint64)
    return hashes


def _reasons_by_row(rejected: Mapping[str, _Mask], rows: _Mask) -> dict[int, list[str]]:
    """Each chosen row's reasons (all of them: a quarantined record is reviewed whole), sorted, by row position."""
    by_row: dict[int, list[str]] = {}
    for reason in sorted(rejected):
        for position in np.flatnonzero(rejected[reason] & rows).tolist():
            by_row.setdefault(position, []).append(reason)
    return dict(sorted(by_row.items()))


def _withheld_by_row(verdicts: FactorVerdicts, published: _Mask) -> dict[int, dict[str, list[str]]]:
    by_row: dict[int, dict[str, list[str]]] = {}
    reasons = {
        factor: verdicts.withheld.get(factor, {})
        | ({below_detection_reason(factor): band} if (band := verdicts.below_detection.get(factor)) is not None else {})
        for factor in {*verdicts.withheld, *verdicts.below_detection}
    }
    for factor, masks in reasons.items():
        for position, factor_reasons in _reasons_by_row(masks, published).items():
            by_row.setdefault(position, {})[factor.name] = factor_reasons
    return {position: dict(sorted(factors.items())) for position, factors in sorted(by_row.items())}


@dataclass(frozen=True)
class _Entries:
    """A check's share of the value table: the distinct values of its column, then a null if some row has none;
    ``row_entry`` gives each row's entry, where -1 (no value) picks that trailing null."""

    values: pd.Series
    row_entry: _Codes


def _entries(column: EncodedColumn, presence_only: bool) -> _Entries:
    """``presence_only``: a not-null check needs one value to stand for all present ones."""
    import pandas as pd

    values = column.values.iloc[:1] if presence_only else column.values
    has_null = bool((column.codes < 0).any())
    take = np.r_[np.arange(len(values)), [-1] if has_null else []].astype(np.intp, copy=False)
    row_entry = np.minimum(column.codes, 0) if presence_only else column.codes
    # The values' own dtype: text a source sent as Python objects may hold what no Arrow string column can.
    return _Entries(pd.Series(values.array.take(take, allow_fill=True), dtype=values.dtype), row_entry)


@dataclass(frozen=True)
class _Stack:
    """Checks that differ only in their column (every flag against one code list, say), run as one expectation on
    their entries stacked end to end: GX's cost is per expectation, whatever the number of values."""

    checks: tuple[Check, ...]
    parts: tuple[_Entries, ...]

    @property
    def rule(self) -> str:
        """What its checks demand (one rule for all of them)."""
        return self.checks[0].rule

    @property
    def presence(self) -> bool:
        """Whether its rule asks only that a value be there (not null)."""
        return self.checks[0].kind == "not_null"

    @property
    def column(self) -> str:
        """Its column of the value table, named after the reasons it decides (unique within a suite)."""
        return "|".join(check.reason for check in self.checks)

    def entries(self) -> pd.Series:
        import pandas as pd

        return pd.concat([part.values for part in self.parts], ignore_index=True)

    def rejected(self, failing: _Mask) -> dict[str, _Mask]:
        """The rows each of its checks rejected, given which of the stacked entries failed."""
        rejected = {}
        start = 0
        for check, part in zip(self.checks, self.parts, strict=True):
            own = failing[start : start + len(part.values)]
            start += len(part.values)
            if own.any():
                rejected[check.reason] = own[part.row_entry]
        return rejected


class VerdictMemo:
    """What Great Expectations decided of each value under each rule, kept from one chunk of a run to the next.

    GX costs a fixed time per expectation whatever the number of values, and the next chunk of a stream mostly
    repeats the last one's stations, flags and units (streams of one source share rules too: presence, lengths,
    code formats, and a link table's keys are the ids its parent streams had judged): a stack whose values were all
    judged before is decided here and left out of GX's suite. A verdict depends only on the rule (its parameters
    included) and the value, so nothing is judged twice differently; under the not-null rule it depends only on
    whether the value is a gap (GX asks pandas' ``isnull``, the test ``_memo_keys`` makes too), so every present
    value shares one key. Stacks of more than ``limit`` distinct values (measurements, times: new values with every
    chunk) are not remembered, nor anything once ``capacity`` values are: a year of new ids must not fill memory.
    """

    def __init__(self, limit: int = 20_000, capacity: int = 100_000) -> None:
        self.limit = limit
        self.capacity = capacity
        self._remembered = 0
        self._failed: dict[str, dict[object, bool]] = {}

    def failing(self, stack: _Stack, entries: pd.Series) -> _Mask | None:
        """Which of ``entries`` fail the stack's rule, or None if some value was never judged."""
        known = self._failed.get(stack.rule)
        if known is None or len(entries) > self.limit:
            return None
        verdicts = [known.get(key) for key in _memo_keys(entries, presence=stack.presence)]
        if any(verdict is None for verdict in verdicts):
            return None
        return np.asarray(verdicts, dtype=bool)

    def remember(self, stack: _Stack, entries: pd.Series, failing: _Mask) -> None:
        if len(entries) <= self.limit and self._remembered < self.capacity:
            known = self._failed.setdefault(stack.rule, {})
            before = len(known)
            known.update(zip(_memo_keys(entries, presence=stack.presence), failing.tolist(), strict=True))
            self._remembered += len(known) - before


_PRESENT = object()
"""The memo key of every present value under the not-null rule."""


def _memo_keys(entries: pd.Series, *, presence: bool) -> list[object]:
    """A key per value that tells apart what only compares equal (``1``, ``1.0`` and ``True``); every kind of gap
    is one key, as GX takes every kind of gap for a missing value; with ``presence`` (the not-null rule) every value
    that is no gap is one key as well."""

    missing = entries.isna().to_numpy(dtype=bool)
    if presence:
        return [None if gap else _PRESENT for gap in missing.tolist()]
    return [None if gap else (type(value), value) for value, gap in zip(entries.tolist(), missing, strict=True)]


def _stacks(suite: Suite, columns: Mapping[str, EncodedColumn]) -> list[_Stack]:
    rules: dict[str, list[Check]] = {}
    for check in suite.checks:
        rules.setdefault(check.rule, []).append(check)
    return [
        _Stack(tuple(checks), tuple(_entries(columns[c.column], c.kind == "not_null") for c in checks))
        for checks in rules.values()
    ]


def _run_suite(suite: Suite, columns: Mapping[str, EncodedColumn], rows: int, memo: VerdictMemo) -> dict[str, _Mask]:
    """Rows each check rejected, by reason (checks that rejected nothing are left out); every check runs once, on
    the distinct values of its column, in GX unless ``memo`` already knows all of them."""
    if rows == 0:
        return {}
    stacks = {stack.column: stack for stack in _stacks(suite, columns)}
    table = {name: stack.entries() for name, stack in stacks.items()}
    failing = {name: memo.failing(stacks[name], entries) for name, entries in table.items()}
    judged = _judge_in_gx(suite, {name: stacks[name] for name, known in failing.items() if known is None}, table)
    for name, verdicts in judged.items():
        memo.remember(stacks[name], table[name], verdicts)
    decided = {name: verdicts for name, verdicts in failing.items() if verdicts is not None} | judged
    rejected: dict[str, _Mask] = {}
    for name, verdicts in decided.items():
        if verdicts.any():
            rejected |= stacks[name].rejected(verdicts)
    return rejected


def _judge_in_gx(suite: Suite, stacks: Mapping[str, _Stack], table: Mapping[str, pd.Series]) -> dict[str, _Mask]:
    """Which entries of each stack's column of the value table fail its rule, by one GX validation."""
    import pandas as pd

    if not stacks:
        return {}
    length = max(len(table[name]) for name in stacks)
    frame = pd.DataFrame({name: _padded(table[name], length) for name in stacks})
    batch = batch_definition().get_batch(batch_parameters={"dataframe": frame})
    failing = {name: np.zeros(len(table[name]), dtype=bool) for name in stacks}
    # A quick gate first: most checks pass, and only a failed one needs GX to list the values it rejected.
    gate = batch.validate(_expectation_suite(suite, stacks.values()), result_format="BOOLEAN_ONLY")
    failed = [stacks[name] for name, outcome in _outcomes(suite, gate) if not outcome.success]
    if not failed:
        return failing
    detail = batch.validate(_expectation_suite(suite, failed), result_format={"result_format": "COMPLETE"})
    for name, outcome in _outcomes(suite, detail):
        positions = np.asarray(outcome.result.get("unexpected_index_list") or [], dtype=np.intp)
        failing[name][positions[positions < len(failing[name])]] = True  # the padding repeats entry 0
    return failing


def _expectation_suite(suite: Suite, stacks: Iterable[_Stack]) -> ExpectationSuite:
    """One expectation per stack: its rule, on its column of the value table, carrying the reasons it decides."""
    load_great_expectations()
    from great_expectations.core.expectation_suite import ExpectationSuite

    meta = suite.contract.meta
    expectations = [to_expectation(stack.checks, stack.column) for stack in stacks]
    return ExpectationSuite(name=f"{meta.key}:{meta.version}", expectations=expectations)


def _outcomes(suite: Suite, result: ExpectationSuiteValidationResult) -> list[tuple[str, Any]]:
    """Each expectation's result with its column of the value table; an expectation GX could not evaluate is a bug."""
    outcomes = []
    for outcome in result.results:
        config = outcome.expectation_config
        if config is None:  # pragma: no cover - GX always echoes the configuration it ran
            raise SuiteEvaluationError(f"{suite.contract.meta.key}: a validation result carries no expectation")
        name = str(config.kwargs["column"])
        info: dict[str, Any] = outcome.exception_info or {}
        if info.get("raised_exception"):
            raise SuiteEvaluationError(
                f"{suite.contract.meta.key}: check {name} could not be evaluated "
                f"({info.get('exception_message')}); nothing was quarantined or published for this batch"
            )
        outcomes.append((name, outcome))
    return outcomes


def _padded(entries: pd.Series, length: int) -> pd.Series:
    import pandas as pd

    if len(entries) == length:
        return entries
    filler = 0 if len(entries) else -1
    take = np.r_[np.arange(len(entries)), np.full(length - len(entries), filler)].astype(np.intp, copy=False)
    return pd.Series(entries.array.take(take, allow_fill=True), dtype=entries.dtype)
