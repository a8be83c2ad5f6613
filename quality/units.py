"""Units a batch was sent in, made the contract's before anything is judged: normalised and, where they convert, the
values converted (``contracts.units``).

A connector that receives units passes them as ``<field>_unit`` beside the value. Units repeat (a station writes
them one way), so each distinct unit is looked up once; only rows sent in a unit that converts (µg/L for mg/L) have
their value touched. A unit that neither matches nor converts is left as sent, and the suite's
``<field>_wrong_unit`` check refuses it.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from contracts import Contract
from contracts.units import conversion, convert
from quality.coercion import comparable

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["UNIT_SUFFIX", "in_contract_units"]

UNIT_SUFFIX = "_unit"
"""A connector that receives units puts them in ``<field>_unit`` beside the value; the suite refuses other units."""


def in_contract_units(contract: type[Contract], frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every unit column in the contract's spelling where it means the contract's unit, and values
    sent in a convertible unit converted; the input frame is left as it is."""
    import pandas as pd

    converted = frame.copy(deep=False)
    for spec in contract.field_specs():
        column = f"{spec.name}{UNIT_SUFFIX}"
        if spec.unit is None or column not in frame.columns:
            continue
        try:
            codes, sent = pd.factorize(frame[column], use_na_sentinel=True)
        except TypeError:  # a JSON list or object sent as a unit, which no hash table takes: rare
            codes, sent = pd.factorize(frame[column].map(comparable), use_na_sentinel=True)
        factors = [conversion(text, spec.unit) if isinstance(text, str) else None for text in sent]
        spelled = [spec.unit if factor is not None else text for text, factor in zip(sent, factors, strict=True)]
        if spelled != list(sent):  # mostly every station writes the contract's spelling: nothing to rewrite
            converted[column] = pd.Series(np.asarray([*spelled, None], dtype=object)[codes], index=frame.index)
        rescaled = [code for code, factor in enumerate(factors) if factor is not None and factor != 1]
        if not rescaled or spec.name not in frame.columns:
            continue
        values = frame[spec.name].to_numpy(dtype=object, copy=True)
        for code in rescaled:
            rows = np.flatnonzero(codes == code)
            values[rows] = [_converted(value, factors[code] or Fraction(1)) for value in values[rows]]
        # An object column stays one: a float NaN in it was sent (the JSON token), not a gap, and must stay apart.
        dtype = "float64" if frame[spec.name].dtype.kind == "f" else object
        converted[spec.name] = pd.Series(values, index=frame.index, dtype=dtype)
    return converted


def _converted(value: object, factor: Fraction) -> object:
    """A finite number (or numeric text) converted; anything else (``"NaN"``, ``true``, ``"7,3"``) left as sent for
    the suite to refuse as it would unconverted."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return value
    return convert(number, factor) if math.isfinite(number) else value
