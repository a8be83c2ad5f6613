"""Turn a raw batch (JSON values as the connector produced them) into contract types, one distinct value at a time.

Expectations can only judge typed values, and a value that cannot be typed must not quietly become a gap: a pH sent
as ``"NaN"`` or ``"7,3"`` is a bad reading, not a missing one. Each value that was sent but did not survive
conversion is reported with a reason code (``<field>_not_finite``, ``<field>_not_a_number``, ``<field>_not_a_time``,
...), refusing exactly what the contract's pydantic model refuses (a property test holds the two together).

A batch repeats its values a lot (a few hundred stations, a handful of flags and units, readings with one or two
decimals), so each column is first reduced to its distinct values and a code per row: conversion and every check
then run once per distinct value, and a row's verdict is looked up by its code. In an object column (mixed JSON
types) ``True`` and ``1.0`` are equal keys to a hash table but not to the contract, so such values are kept apart.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from contracts import Contract, FieldSpec
from contracts.types import is_storable_text, source_zone

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "EncodedBatch",
    "EncodedColumn",
    "comparable",
    "encode_batch",
    "encode_field",
    "encode_values",
    "raw_frame",
]

_Mask = npt.NDArray[np.bool_]
_Codes = npt.NDArray[np.signedinteger[Any]]
_Converter = Callable[[FieldSpec, "pd.Series"], tuple["pd.Series", dict[str, _Mask]]]
_PLAIN_TIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
"""The form every source in this domain sends (Beijing time, no offset): parsed in bulk, the rest one by one."""
_WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)
"""What the model's ``str_strip_whitespace`` strips: Unicode's White_Space, which Python's ``str.strip()`` exceeds by
the four separators U+001C-U+001F."""
_SAMPLE_ROWS = 10_000
_LAST_TIME = np.datetime64("9999-12-31T23:59:59.999999", "us")
"""The last time a Python datetime (and so the contract's model) holds, in UTC."""
_MOSTLY_DISTINCT = 0.9


@dataclass(frozen=True)
class EncodedColumn:
    """A column as its distinct typed values and, per row, the position of its value among them (-1: no value).

    ``failed`` maps a reason code to the rows whose value was sent but could not be typed (their code is -1).
    """

    codes: _Codes
    values: pd.Series
    failed: dict[str, _Mask]

    def rows(self, positions: _Codes | None = None) -> pd.Series:
        """The typed value of each row (or of the rows at ``positions``), null where there is none."""
        import pandas as pd

        codes = self.codes if positions is None else self.codes[positions]
        if pd.api.types.is_string_dtype(self.values.dtype):
            # Text repeats (stations, flags): a categorical of str costs a code per row, not a copy of each string.
            return pd.Series(
                pd.Categorical.from_codes(codes, categories=pd.Index(self.values, dtype="str"), validate=False)
            )
        return pd.Series(self.values.array.take(codes, allow_fill=True), dtype=self.values.dtype)

    def mapped(self, function: Callable[[pd.Series], pd.Series]) -> EncodedColumn:
        """Each row's value put through ``function``, which sees each distinct value once (never a missing one)."""
        import pandas as pd

        codes, values = pd.factorize(function(self.values), use_na_sentinel=True)
        return EncodedColumn(_recoded(codes, len(values), self.codes), pd.Series(values), {})

    def failed_rows(self) -> _Mask:
        failed = np.zeros(len(self.codes), dtype=bool)
        for mask in self.failed.values():
            failed |= mask
        return failed


@dataclass(frozen=True)
class EncodedBatch:
    """Every contract field in contract types, plus the batch's other columns (units, say) as they came."""

    rows: int
    columns: dict[str, EncodedColumn]

    def frame(self, names: Iterable[str], positions: _Codes | None = None) -> pd.DataFrame:
        """Typed rows of some columns; a RangeIndex over the rows chosen."""
        import pandas as pd

        chosen = {name: self.columns[name].rows(positions) for name in names}
        rows = self.rows if positions is None else len(positions)
        return pd.DataFrame(chosen, index=pd.RangeIndex(rows), copy=False)  # no copy into one block per dtype


def raw_frame(rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """Rows as a connector produced them, one column per key, for ``encode_batch``.

    pandas makes a column of text, and the column names, Arrow strings, which cannot hold a lone surrogate (what
    ``json.loads`` makes of an escape like ``"\\ud800"``): a batch holding one is kept as Python objects instead,
    which ``encode_batch`` types alike and ``<field>_bad_text`` refuses, and a key holding one is left out (no
    contract names such a field; the raw record keeps it).
    """
    import pandas as pd

    try:
        return pd.DataFrame(rows)
    except UnicodeEncodeError:
        named = [{key: value for key, value in row.items() if is_storable_text(key)} for row in rows]
        return pd.DataFrame(named, dtype=object)


def encode_batch(contract: type[Contract], raw: pd.DataFrame) -> EncodedBatch:
    """A field missing from ``raw`` is all null: the not-null checks judge it."""
    import pandas as pd

    raw = raw.reset_index(drop=True)
    specs = {spec.name: spec for spec in contract.field_specs() if not spec.derived}
    sources: dict[str, tuple[pd.Series, FieldSpec | None]] = {
        name: (raw[name] if name in raw.columns else pd.Series([None] * len(raw), dtype=object), spec)
        for name, spec in specs.items()
    }
    sources |= {str(name): (raw[name], None) for name in raw.columns if name not in specs}
    # Hashing and parsing a column mostly runs in Arrow and pandas without the GIL: columns go side by side.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        encoded = pool.map(lambda item: _encode(*item), sources.values())
        return EncodedBatch(len(raw), dict(zip(sources, encoded, strict=True)))


def encode_field(contract: type[Contract], name: str, values: pd.Series) -> EncodedColumn:
    """One column of a batch encoded as ``encode_batch`` encodes it: typed when the contract has such a field."""
    spec = next((spec for spec in contract.field_specs() if spec.name == name and not spec.derived), None)
    return _encode(values.reset_index(drop=True), spec)


def encode_values(values: pd.Series | npt.NDArray[Any]) -> EncodedColumn:
    """A column taken as it is (a unit as sent, a derived value), reduced to distinct values and codes."""
    import pandas as pd

    return _encode(pd.Series(values).reset_index(drop=True), None)


def _encode(series: pd.Series, spec: FieldSpec | None) -> EncodedColumn:
    """Distinct raw values → typed as ``spec`` says (as they are without one) → distinct typed values, so that
    ``" 44010001"`` and ``"44010001"`` become one."""
    import pandas as pd

    raw_codes, distinct = _distinct(series.reset_index(drop=True))
    typed, failures = (_as_sent(distinct), {}) if spec is None else _CONVERTERS[spec.type](spec, distinct)
    if spec is not None and spec.snap_every_s is not None:
        typed = _snapped(spec, typed)
    typed_codes, typed_values = pd.factorize(typed, use_na_sentinel=True)
    # Mostly the typed values are the raw ones, one for one: then the rows keep their codes as they are.
    codes = _recoded(typed_codes, len(typed_values), raw_codes)
    failed = {
        f"{spec.name}_{reason}": np.append(mask, False)[raw_codes]
        for reason, mask in failures.items()
        if spec is not None and mask.any()
    }
    return EncodedColumn(codes, pd.Series(typed_values), failed)


def _snapped(spec: FieldSpec, times: pd.Series) -> pd.Series:
    """Stamps within the field's tolerance of its grid moved onto it (``contracts.types.snap_to_hour``): two stamps of
    one hour then share one typed value, and so one key."""
    import pandas as pd

    every = np.int64(spec.snap_every_s or 1) * 1_000_000
    tolerance = np.int64(spec.snap_tolerance_s or 0) * 1_000_000
    micros = times.array.asi8
    nearest = (micros + every // 2) // every * every
    snapped = np.where(np.abs(micros - nearest) <= tolerance, nearest, micros)
    result = pd.Series(snapped.astype("datetime64[us]"), index=times.index).dt.tz_localize("UTC")
    return result.where(times.notna())


def _as_sent(values: pd.Series) -> pd.Series:
    """A column no field types (a unit, an unknown field), as it came, but comparable: a JSON list or object as its
    JSON text (Great Expectations fails comparing a dict, and hash tables refuse one) and a lone surrogate as its
    escape (the checks' tables are Arrow strings). Neither text equals a unit or code a check compares it with."""
    import pandas as pd

    if values.dtype != object:
        return values
    return pd.Series([comparable(value) for value in values], index=values.index, dtype=object)


def comparable(value: object) -> object:
    """A value hash tables and Arrow strings take: a JSON list or object as its JSON text, a lone surrogate as its
    escape; anything else as it is."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=True, sort_keys=True)
    return value


def _recoded(codes: _Codes, values: int, rows: _Codes) -> _Codes:
    """Each row's code among ``values`` new values, given the new code of each old one (``codes``) and each row's
    old code (``rows``; -1 stays -1). Codes are as narrow as the values allow: a flag's code is a byte, not eight."""
    narrow = np.min_scalar_type(-values - 1)
    if len(codes) == values and bool((codes == np.arange(values)).all()):  # mostly: one for one, as they were
        return rows.astype(narrow)
    recoded: _Codes = np.append(codes, -1).astype(narrow)[rows]
    return recoded


def _distinct(series: pd.Series) -> tuple[_Codes, pd.Series]:
    """Each row's position among the column's distinct raw values (-1: nothing was sent), and those values."""
    import pandas as pd

    try:
        if _mostly_distinct(series):
            return _each_row(series)
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # an object column holding a JSON list or object, which no hash table takes
        return _each_row(series)
    if series.dtype != object:
        return codes, pd.Series(uniques)
    # A hash table takes True, 1 and 1.0 for one key, and a sent NaN for a gap; the contract tells them apart,
    # so a row holding such a value gets an entry of its own.
    ambiguous = np.fromiter((_equals_a_boolean(value) for value in uniques), dtype=bool, count=len(uniques))
    own = np.flatnonzero(np.append(ambiguous, False)[codes] | ((codes < 0) & _present(series)))
    codes[own] = len(uniques) + np.arange(len(own))
    values = np.concatenate([np.asarray(uniques, dtype=object), series.to_numpy()[own]])
    return codes, pd.Series(values, dtype=object)


def _each_row(series: pd.Series) -> tuple[_Codes, pd.Series]:
    return np.where(_present(series), np.arange(len(series)), -1), series


def _equals_a_boolean(value: object) -> bool:
    return isinstance(value, int | float) and value in (0, 1)


def _mostly_distinct(series: pd.Series) -> bool:
    """Whether reducing would save next to nothing (report times to the second, say): a strided sample of the
    column barely repeats. Typing each row then costs less than hashing every row first."""
    step = len(series) // _SAMPLE_ROWS
    if step < 2:
        return False
    sample = series.iloc[::step]
    present = int(sample.notna().sum())
    return present > 0 and sample.nunique(dropna=True) > _MOSTLY_DISTINCT * present


def _value_types(series: pd.Series) -> npt.NDArray[np.object_] | None:
    """The Python type of each value of an object column (mixed JSON values); None for a typed column."""
    if series.dtype != object:
        return None
    types: npt.NDArray[np.object_] = series.map(type).to_numpy()
    return types


def _is_type(types: npt.NDArray[np.object_], kind: type) -> _Mask:
    """Exactly ``kind``, not a subclass: a ``bool`` is no number here, as it is none for the contract."""
    same: _Mask = np.equal(types, np.full(1, kind, dtype=object)).astype(bool, copy=False)
    return same


def _present(series: pd.Series) -> _Mask:
    """Which values were sent. A float NaN inside an object column was *sent* (the JSON token), not left out."""
    missing = series.isna().to_numpy(dtype=bool, copy=True)
    if series.dtype == object and missing.any():
        positions = np.flatnonzero(missing)
        values = series.to_numpy()[positions]
        missing[positions] = np.fromiter((value is None for value in values), dtype=bool, count=len(positions))
    present: _Mask = ~missing
    return present


def _text(series: pd.Series, types: npt.NDArray[np.object_] | None, *, strip: bool) -> tuple[pd.Series, _Mask]:
    """The values that are text, stripped of white space as the model strips them (``strip``); others
    null. Also which values are text no database stores (``contracts.types.is_storable_text``): they are null too."""
    import pandas as pd

    if types is None and not pd.api.types.is_string_dtype(series.dtype):
        return pd.Series(pd.NA, index=series.index, dtype="str"), np.zeros(len(series), dtype=bool)
    texts = series if types is None else series.where(_is_type(types, str))
    stripped = [(value.strip(_WHITE_SPACE) if strip else value) if isinstance(value, str) else None for value in texts]
    unstorable = np.zeros(len(series), dtype=bool)
    try:
        text = pd.Series(stripped, dtype="str")
    except UnicodeEncodeError:  # a lone surrogate, which no Arrow string holds: rare, so looked for only now
        unstorable = np.fromiter((value is not None and not is_storable_text(value) for value in stripped), bool)
        text = pd.Series([None if bad else value for value, bad in zip(stripped, unstorable, strict=True)], dtype="str")
    has_nul = text.str.contains("\x00", regex=False).to_numpy(dtype=bool, na_value=False)
    return text.where(~has_nul), unstorable | has_nul


def _numbers(spec: FieldSpec, series: pd.Series) -> tuple[pd.Series, dict[str, _Mask]]:
    """Numbers and numeric text (pydantic's lax mode takes ``"7.3"``); never booleans, NaN or infinity."""
    import pandas as pd

    if series.dtype.kind in "iuf":
        values = series.astype("float64")
        finite = np.isfinite(values.to_numpy())
        # In a float column NaN is how pandas stores a gap; only an infinity was sent as such.
        not_finite = ~finite & values.notna().to_numpy()
        return _integral(spec, values.where(finite), {"not_finite": not_finite})
    types = _value_types(series)
    present = _present(series)
    is_bool = _is_type(types, bool) if types is not None else np.zeros(len(series), dtype=bool)
    numbers = series.where(~is_bool)
    try:
        parsed = pd.to_numeric(numbers, errors="coerce").astype("float64")
    except OverflowError:  # an integer no float holds (10**400): not finite, as for the contract; rare
        numbers = numbers.where(~np.fromiter((_overflows(value) for value in numbers), bool, count=len(numbers)))
        parsed = pd.to_numeric(numbers, errors="coerce").astype("float64")
    finite = np.isfinite(parsed.to_numpy())
    not_finite = np.zeros(len(series), dtype=bool)
    refused = np.flatnonzero(present & ~finite)  # few: look at each to tell "NaN" from "7,3"
    not_finite[refused] = [_is_not_finite(value) for value in series.to_numpy()[refused]]
    reasons = {"not_finite": not_finite, "not_a_number": present & ~finite & ~not_finite}
    return _integral(spec, parsed.where(finite), reasons)


def _is_not_finite(value: object) -> bool:
    """A number that is no finite number: the NaN/Infinity tokens, a float NaN, or text that overflows (1e400)."""
    if isinstance(value, str):
        try:
            return not math.isfinite(float(value))
        except ValueError:
            return False
    return (isinstance(value, float) and not math.isfinite(value)) or _overflows(value)


def _overflows(value: object) -> bool:
    """An integer beyond the largest float."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    try:
        float(value)
    except OverflowError:
        return True
    return False


_INT64_LIMIT = 2.0**63
"""An integral value at or beyond this magnitude fits no 64-bit integer column: out of range, whatever the
field's own bounds (the contract's model reads ``1e20`` as an integer, and its bounds refuse it the same way)."""


def _integral(spec: FieldSpec, values: pd.Series, reasons: dict[str, _Mask]) -> tuple[pd.Series, dict[str, _Mask]]:
    """An integer field's numbers as integers: a fraction is no integer, and a whole number beyond 64 bits (``1e300``)
    is out of any integer column's range (cast as it is, it would wrap around to some other number)."""
    if spec.type != "integer":
        return values, reasons
    present = values.notna().to_numpy()
    numbers = values.fillna(0).to_numpy()
    fractional = present & (numbers % 1 != 0)
    too_large = present & ~fractional & (np.abs(numbers) >= _INT64_LIMIT)
    kept = values.where(~fractional & ~too_large).astype("Int64")
    return kept, {**reasons, "not_an_integer": fractional, "out_of_range": too_large}


def _strings(spec: FieldSpec, series: pd.Series) -> tuple[pd.Series, dict[str, _Mask]]:
    """Only text is text: pydantic's ``str`` refuses numbers too. A value from a fixed set (a ``Literal``) is taken
    as sent, as the model takes it: ``" lake"`` is no ``"lake"``."""
    text, unstorable = _text(series, _value_types(series), strip=spec.allowed is None)
    return text, {"not_a_string": _present(series) & text.isna().to_numpy() & ~unstorable, "bad_text": unstorable}


def _booleans(spec: FieldSpec, series: pd.Series) -> tuple[pd.Series, dict[str, _Mask]]:
    types = _value_types(series)
    is_bool = _is_type(types, bool) if types is not None else np.full(len(series), series.dtype.kind == "b")
    return series.where(is_bool).astype("boolean"), {"not_a_boolean": _present(series) & ~is_bool}


def _times(spec: FieldSpec, series: pd.Series) -> tuple[pd.Series, dict[str, _Mask]]:
    """ISO 8601 text or datetimes, as ``datetime.fromisoformat`` reads them (so exactly what the contract takes);
    a value without an offset is in the field's source zone, or refused when the field has none."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").dt.as_unit("us"), {}
    zone = source_zone(spec.source_zone) if spec.source_zone is not None else None
    utc = pd.Series(pd.NaT, index=series.index, dtype="datetime64[us, UTC]")
    present = _present(series)
    if series.dtype.kind == "M":
        if zone is not None:
            utc = series.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        return utc.dt.as_unit("us"), {"not_a_time": present & utc.isna().to_numpy(dtype=bool)}
    types = _value_types(series)
    if types is None and not pd.api.types.is_string_dtype(series.dtype):  # numbers (or booleans) only: no text
        texts = pd.Series(None, index=series.index, dtype=object)
    else:
        texts = series if types is None else series.where(_is_type(types, str))
    try:
        text = pa.array(texts, type=pa.string(), from_pandas=True)
    except UnicodeEncodeError:  # a lone surrogate, which no Arrow string holds: no time either, so judged one by one
        storable = [value if isinstance(value, str) and is_storable_text(value) else None for value in texts]
        text = pa.array(storable, type=pa.string())
    stamps, plain = _plain_times(text)
    if zone is not None and plain.any():
        naive = pd.Series(stamps.to_pandas(), index=series.index).where(plain)
        utc = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC").dt.as_unit("us")
    others = np.flatnonzero(present & ~plain)
    if len(others):
        values = series.to_numpy()[others]
        stamps = utc.dt.tz_convert(None).to_numpy(dtype="datetime64[us]", copy=True)
        stamps[others] = [_one_time(value, zone) for value in values]  # None: NaT
        # Set as NumPy values: pandas would route a time before year 1 through Python's datetime, which wraps it.
        utc = pd.Series(stamps, index=series.index).dt.tz_localize("UTC")
    return utc, {"not_a_time": present & utc.isna().to_numpy(dtype=bool)}


def _plain_times(text: pa.Array) -> tuple[pa.Array, _Mask]:
    """Which values have the plain form (``2026-11-20 08:00:00``; the fast way also takes ``T``) and, for those,
    their time (null where the form holds no real time). Arrow's ISO 8601 cast reads a 19-character value in that
    form only, as ``fromisoformat`` reads it, but refuses the whole column for one bad value: then the form is
    matched value by value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    candidates = pc.equal(pc.utf8_length(text), 19)
    try:
        source = text if pc.all(candidates).as_py() is not False else pc.if_else(candidates, text, None)
        return pc.cast(source, pa.timestamp("us")), pc.fill_null(candidates, False).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        pass
    plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN_TIME), False)
    shown = pc.if_else(plain, text, None)
    stamps = pc.strptime(shown, format="%Y-%m-%d %H:%M:%S", unit="us", error_is_null=True)
    # strptime rolls 29 February 2026 over to 1 March and a 60th second over to the next minute: such a value's
    # own day and second digits differ from what it became.
    day = pc.cast(pc.utf8_slice_codeunits(shown, 8, 10), pa.int64())
    second = pc.cast(pc.utf8_slice_codeunits(shown, 17, 19), pa.int64())
    real = pc.and_(pc.equal(pc.day(stamps), day), pc.equal(pc.second(stamps), second))
    return pc.if_else(real, stamps, None), plain.to_numpy(zero_copy_only=False)


def _one_time(value: object, zone: tzinfo | None) -> np.datetime64 | None:
    """The contract's own rule (``contracts.types.BeijingTime``) for one value off the bulk path, as UTC.

    Converted in NumPy: ``0001-01-01T00:00:00+14:00`` underflows a Python datetime on the way to UTC, but it is a
    time, one the suite's ``<field>_implausible`` refuses (as it does ``0001-01-01 00:00:00``, which the bulk path
    takes to year 0). A time past year 9999 in UTC (``9999-12-31T23:00:00-12:00``) is no time at all: nothing
    downstream can print it, and it would sort as the latest update of its key.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    own_zone = value.tzinfo if value.tzinfo is not None else zone
    offset = None if own_zone is None else own_zone.utcoffset(value)
    if offset is None:
        return None
    utc = np.datetime64(value.replace(tzinfo=None), "us") - np.timedelta64(offset // timedelta(microseconds=1), "us")
    return None if utc > _LAST_TIME else utc


_CONVERTERS: dict[str, _Converter] = {
    "number": _numbers,
    "integer": _numbers,
    "string": _strings,
    "boolean": _booleans,
    "datetime": _times,
}
