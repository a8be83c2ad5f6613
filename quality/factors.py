"""Per-factor judgement: a sample is many analysers' readings, and station engineers judge each analyser alone.

Only what makes a record unusable (its key, station or time, or a newer copy of it in the batch) quarantines the
whole record. A reason on a factor's own fields (its value or its data flag) withholds that factor: its value is
published as null, its status says ``rejected``, and the reasons and the raw value are kept for review. Readings in
``[-detection limit, 0)`` are below detection: withheld too, but marked as such, not as out of range (REFERENCE
trap 19). The status of every other factor follows its HJ 212 data flag (trap 18): N or S (or none) is ``valid``,
T is ``over_range`` (the value is the range cap), and F, M, D, C, B or any other letter is ``invalid``.

Everything is decided per distinct value and looked up by code, as the rest of the runner does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

import numpy as np
import numpy.typing as npt

from contracts import Contract, Factor
from contracts.types import LOWER_BOUND_FLAGS, VALID_FLAGS, FactorStatus
from quality.coercion import EncodedColumn

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "STATUSES",
    "FactorVerdicts",
    "apply_verdicts",
    "below_detection_reason",
    "factor_status",
    "flag_status",
    "is_below_detection",
    "judge_factors",
]

_Mask = npt.NDArray[np.bool_]
STATUSES: tuple[str, ...] = get_args(FactorStatus)


def below_detection_reason(factor: Factor) -> str:
    return f"{factor.value.name}_below_detection"


def flag_status(flag: str | None) -> FactorStatus | None:
    """What an analyser's data flag alone says of its value; None when it sent no flag."""
    if flag is None:
        return None
    return "valid" if flag in VALID_FLAGS else "over_range" if flag in LOWER_BOUND_FLAGS else "invalid"


def is_below_detection(factor: Factor, values: npt.ArrayLike) -> _Mask:
    """Which readings lie in ``[-detection limit, 0)``: the analyser read a small negative near zero (trap 19).
    Takes one value (the gateway) or a column's distinct values (the runner) alike."""
    readings = np.asarray(values, dtype=np.float64)
    limit = factor.value.detection_limit
    if limit is None:
        return np.zeros(readings.shape, dtype=bool)
    below: _Mask = (readings >= -limit) & (readings < 0)
    return below


def factor_status(
    *, rejected: bool, flag: FactorStatus | None, below_detection: bool, has_value: bool
) -> FactorStatus | None:
    """The one statement of the status rules (README "How quality decides"), first match wins: a failed check, then
    a flag that says the value is no measurement, then a reading below detection, then nothing sent, then a flag
    saying the value is a range cap. The batch runner applies it through a lookup table built from it, and the
    device gateway calls it per reading, so both paths decide alike."""
    if rejected:
        return "rejected"
    if flag == "invalid":
        return "invalid"
    if below_detection:
        return "below_detection"
    if not has_value:
        return None
    return "over_range" if flag == "over_range" else "valid"


def _status_table() -> npt.NDArray[np.int8]:
    """``factor_status`` for every combination, indexed [rejected, flag code + 1, below, has value] (-1: null)."""
    table = np.full((2, len(STATUSES) + 1, 2, 2), -1, dtype=np.int8)
    flags: list[FactorStatus | None] = [None, *get_args(FactorStatus)]
    for rejected, flag, below, has_value in np.ndindex(table.shape):
        status = factor_status(
            rejected=bool(rejected), flag=flags[flag], below_detection=bool(below), has_value=bool(has_value)
        )
        table[rejected, flag, below, has_value] = -1 if status is None else STATUSES.index(status)
    return table


_STATUS_TABLE = _status_table()


@dataclass(frozen=True)
class FactorVerdicts:
    """``record_reasons`` are the reasons that quarantine a whole record; ``withheld`` maps each factor to the rows
    whose value is withheld and why (reason → rows), below-detection readings included."""

    record_reasons: dict[str, _Mask]
    withheld: dict[Factor, dict[str, _Mask]]
    below_detection: dict[Factor, _Mask]


def judge_factors(
    contract: type[Contract],
    columns: Mapping[str, EncodedColumn],
    rejected: Mapping[str, _Mask],
    reason_fields: Mapping[str, str | None],
) -> FactorVerdicts:
    """Split the rows each reason rejected into whole-record reasons and per-factor ones."""
    factor_of = {name: factor for factor in contract.factors() for name in factor.fields}
    record_reasons: dict[str, _Mask] = {}
    withheld: dict[Factor, dict[str, _Mask]] = {factor: {} for factor in contract.factors()}
    for reason, rows in rejected.items():
        factor = factor_of.get(reason_fields.get(reason) or "")
        if factor is None:
            record_reasons[reason] = rows
        else:
            withheld[factor][reason] = rows
    below: dict[Factor, _Mask] = {}
    for factor in contract.factors():
        band = _below_detection(factor, columns[factor.value.name])
        if band is None:
            continue
        out_of_range = f"{factor.value.name}_out_of_range"
        if out_of_range in withheld[factor]:
            rest = withheld[factor][out_of_range] & ~band
            withheld[factor] = {r: m for r, m in withheld[factor].items() if r != out_of_range}
            if rest.any():
                withheld[factor][out_of_range] = rest
        below[factor] = band
    return FactorVerdicts(record_reasons, {f: r for f, r in withheld.items() if r}, below)


def _below_detection(factor: Factor, values: EncodedColumn) -> _Mask | None:
    """Rows whose value lies in ``[-detection limit, 0)``; None when the factor has no detection limit or none do."""
    limit = factor.value.detection_limit
    if limit is None or not len(values.values):
        return None
    distinct = values.values.to_numpy(dtype=np.float64, na_value=np.nan)
    in_band = np.append(is_below_detection(factor, distinct), False)
    rows: _Mask = in_band[values.codes]
    return rows if rows.any() else None


def apply_verdicts(
    contract: type[Contract],
    valid: pd.DataFrame,
    positions: npt.NDArray[np.intp],
    columns: Mapping[str, EncodedColumn],
    verdicts: FactorVerdicts,
) -> pd.DataFrame:
    """The published rows (``valid``, the input rows at ``positions``) with withheld values nulled and every
    factor's status filled in."""
    import pandas as pd

    for factor in contract.factors():
        reasons = verdicts.withheld.get(factor, {})
        rejected = _any(reasons.values(), len(positions), positions)
        band = verdicts.below_detection.get(factor)
        below = band[positions] if band is not None else np.zeros(len(positions), dtype=bool)
        has_value = columns[factor.value.name].codes[positions] >= 0
        flag = _flag_statuses(columns[factor.flag.name], positions) if factor.flag else np.full(len(positions), -1)
        status = _STATUS_TABLE[rejected.astype(np.intp), flag + 1, below.astype(np.intp), has_value.astype(np.intp)]
        valid[factor.status.name] = pd.Categorical.from_codes(status, categories=pd.Index(STATUSES, dtype="str"))
        valid[factor.value.name] = valid[factor.value.name].mask(rejected | below)
        if factor.flag is not None:
            flag_reasons = [mask for reason, mask in reasons.items() if reason.startswith(f"{factor.flag.name}_")]
            if flag_reasons:
                valid[factor.flag.name] = valid[factor.flag.name].mask(_any(flag_reasons, len(positions), positions))
    return valid


def _flag_statuses(flags: EncodedColumn, positions: npt.NDArray[np.intp]) -> npt.NDArray[np.int8]:
    """Each row's status as its flag says (-1: no flag), looked up per distinct flag."""
    per_flag = [STATUSES.index(flag_status(flag) or "valid") for flag in flags.values.tolist()]
    statuses: npt.NDArray[np.int8] = np.asarray([*per_flag, -1], dtype=np.int8)[flags.codes[positions]]
    return statuses


def _any(masks: Any, rows: int, positions: npt.NDArray[np.intp]) -> _Mask:
    combined = np.zeros(rows, dtype=bool)
    for mask in masks:
        combined |= mask[positions]
    return combined
