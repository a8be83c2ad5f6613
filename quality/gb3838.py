"""The GB 3838-2002 water-quality class of one set of readings: a pure function anyone can call and test.

Single-factor method (REFERENCE 4.2): each assessed factor gets the best class whose limit it meets, a value on a
limit belongs to that (better) class, and the readings' class is the worst factor's. Readings are keyed by HJ 212
factor code, in mg/L (pH dimensionless): convert units before calling, as the quality runner does for published
samples (REFERENCE trap 11 and 17).

Only values that measure the water take part: a factor with a status other than ``valid`` (flag N or S, see
``contracts.types.FactorStatus``) is left out, and so is a value that is null or not finite. An ``over_range`` value
is the analyser's cap, a lower bound: it cannot place the factor in a class, so it is left out too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ASSESSED_FACTORS",
    "CLASSES",
    "TOTAL_NITROGEN",
    "WaterBody",
    "WaterClass",
    "WaterClassResult",
    "classify",
    "factor_class",
    "meets_target",
]

WaterClass = Literal["I", "II", "III", "IV", "V", "劣V"]
WaterBody = Literal["river", "lake"]
"""``lake`` stands for lakes and reservoirs (湖、库), whose total-phosphorus limits are stricter."""

CLASSES: tuple[WaterClass, ...] = ("I", "II", "III", "IV", "V", "劣V")
"""Best to worst; ``劣V`` (worse than V) is what a factor meeting no limit gets."""

PH = "w01001"
DISSOLVED_OXYGEN = "w01009"
TOTAL_PHOSPHORUS = "w21011"
TOTAL_NITROGEN = "w21001"

_PH_RANGE = (6.0, 9.0)  # GB 3838-2002 Table 1: 6-9 for classes I to V alike
_DO_AT_LEAST = (7.5, 6.0, 5.0, 3.0, 2.0)  # GB 3838-2002 Table 1: DO is the one limit a value must reach
_AT_MOST: dict[str, tuple[float, float, float, float, float]] = {
    "w01019": (2, 4, 6, 10, 15),  # permanganate index (CODMn); never substitute COD for it
    "w01018": (15, 15, 20, 30, 40),  # COD
    "w01017": (3, 3, 4, 6, 10),  # BOD5
    "w21003": (0.15, 0.5, 1.0, 1.5, 2.0),  # ammonia nitrogen
    "w22001": (0.05, 0.05, 0.05, 0.5, 1.0),  # petroleum
    "w23002": (0.002, 0.002, 0.005, 0.01, 0.1),  # volatile phenol
}
# GB 3838-2002 Table 1: lakes and reservoirs use the stricter TP limits.
_TP_AT_MOST: dict[WaterBody, tuple[float, float, float, float, float]] = {
    "river": (0.02, 0.1, 0.2, 0.3, 0.4),
    "lake": (0.01, 0.025, 0.05, 0.1, 0.2),
}
_TN_AT_MOST = (0.2, 0.5, 1.0, 1.5, 2.0)  # GB 3838-2002 Table 1, lakes and reservoirs only

ASSESSED_FACTORS: frozenset[str] = frozenset({PH, DISSOLVED_OXYGEN, TOTAL_PHOSPHORUS, *_AT_MOST})
"""Codes that take part by default. Total nitrogen is left out for every water body (REFERENCE 4.2: the national
method reports it apart); water temperature, conductivity and turbidity have no class limit."""


@dataclass(frozen=True)
class WaterClassResult:
    """The class of one set of readings and why: ``deciding_factors`` are the codes whose class is the result."""

    water_class: WaterClass | None
    """None when no assessed factor had a valid value: nothing to class."""
    deciding_factors: tuple[str, ...]
    factor_classes: Mapping[str, WaterClass] = field(default_factory=dict)
    """The class of every factor that took part."""


def classify(
    values: Mapping[str, float | None],
    waterbody: WaterBody,
    *,
    statuses: Mapping[str, str | None] | None = None,
    include_total_nitrogen: bool = False,
) -> WaterClassResult:
    """The GB 3838-2002 class of ``values`` (HJ 212 code → value) at a ``waterbody``.

    ``statuses`` (code → ``FactorStatus``) says which values measure the water: when given, only codes whose status
    is ``valid`` take part. ``include_total_nitrogen`` gives the extra, labelled lake result with TN assessed; it
    makes lake classes worse than the official ones, and GB 3838 sets no TN class for rivers.
    """
    if waterbody not in _TP_AT_MOST:
        raise ValueError(f"waterbody must be 'river' or 'lake', not {waterbody!r}")
    if include_total_nitrogen and waterbody != "lake":
        raise ValueError("GB 3838-2002 sets total-nitrogen limits for lakes and reservoirs only, not for rivers")
    assessed = ASSESSED_FACTORS | {TOTAL_NITROGEN} if include_total_nitrogen else ASSESSED_FACTORS
    classes: dict[str, WaterClass] = {}
    for code in sorted(assessed & set(values)):
        value = values[code]
        if value is None or not math.isfinite(value):
            continue
        if statuses is not None and statuses.get(code) != "valid":
            continue
        classes[code] = factor_class(code, value, waterbody)
    if not classes:
        return WaterClassResult(None, ())
    result = max(classes.values(), key=CLASSES.index)
    deciding = tuple(code for code, found in classes.items() if found == result)
    return WaterClassResult(result, deciding, classes)


def factor_class(code: str, value: float, waterbody: WaterBody) -> WaterClass:
    """The best class whose limit ``value`` meets; a value exactly on a limit meets it."""
    if code == PH:
        low, high = _PH_RANGE
        return "I" if low <= value <= high else "劣V"
    if code == DISSOLVED_OXYGEN:
        return _first(value >= limit for limit in _DO_AT_LEAST)
    limits = _TP_AT_MOST[waterbody] if code == TOTAL_PHOSPHORUS else _TN_AT_MOST if code == TOTAL_NITROGEN else None
    limits = limits or _AT_MOST[code]
    return _first(value <= limit for limit in limits)


def _first(meets: Iterable[bool]) -> WaterClass:
    """The first class (best first) whose limit is met; 劣V when none is."""
    for water_class, met in zip(CLASSES, meets, strict=False):
        if met:
            return water_class
    return "劣V"


def meets_target(water_class: WaterClass | None, target: WaterClass | None) -> bool | None:
    """Whether water of ``water_class`` meets a station's target class (达标: as good or better); None when either
    is unknown."""
    if water_class is None or target is None:
        return None
    return CLASSES.index(water_class) <= CLASSES.index(target)
