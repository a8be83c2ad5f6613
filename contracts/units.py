"""Units as stations write them, and the conversions between the ones this domain mixes (REFERENCE traps 11, 17).

Stations write one unit many ways (``℃`` and ``°C``, ``无量纲``, ``毫克/升`` and ``mg/l``, the micro sign and the Greek
mu in ``µS/cm``, ``us/cm``). An exact string match would refuse every reading of such a station, so a unit is
compared by its normal form: Unicode NFKC (which folds ``℃`` to ``°C`` and the micro sign to mu), case folded, without
spaces, then looked up in a table of synonyms. Some HJ 212 codes report in µg/L where the contract keeps mg/L, and
conductivity arrives in mS/cm: those are converted, never refused.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal, InvalidOperation
from fractions import Fraction

__all__ = ["conversion", "convert", "normal_unit"]

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "dimensionless": ("dimensionless", "无量纲", "无", "1", "-", "ph", "ph单位"),
    "mg/L": ("mg/l", "毫克/升", "毫克每升", "mg/dm3"),
    "µg/L": ("µg/l", "ug/l", "微克/升", "微克每升"),
    "°C": ("°c", "摄氏度", "degc", "deg c"),
    "µS/cm": ("µs/cm", "us/cm", "微西门子/厘米", "微西/厘米"),
    "mS/cm": ("ms/cm", "毫西门子/厘米"),
    "NTU": ("ntu", "散射浊度单位"),
}
_CONVERSIONS: dict[tuple[str, str], Fraction] = {
    ("µg/L", "mg/L"): Fraction(1, 1000),
    ("mS/cm", "µS/cm"): Fraction(1000),
}


def _folded(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


_CANONICAL: dict[str, str] = {_folded(synonym): unit for unit, synonyms in _SYNONYMS.items() for synonym in synonyms}


def normal_unit(text: str) -> str:
    """The canonical spelling of a unit (the one contracts use), or the text in normal form if it is not known."""
    folded = _folded(text)
    return _CANONICAL.get(folded, unicodedata.normalize("NFKC", text).strip())


def conversion(sent: str, wanted: str) -> Fraction | None:
    """The factor that turns a value in unit ``sent`` into unit ``wanted``; None when no conversion exists."""
    source, target = normal_unit(sent), normal_unit(wanted)
    if source == target:
        return Fraction(1)
    return _CONVERSIONS.get((source, target))


def convert(value: float, factor: Fraction) -> float:
    """``value`` times ``factor`` as its decimal digits say (0.4123 mS/cm is 412.3 µS/cm, not 412.29999999999995)."""
    if factor == 1:
        return value
    try:
        exact = Decimal(repr(value)) * factor.numerator / factor.denominator
    except InvalidOperation:
        return value * float(factor)
    return float(exact)
