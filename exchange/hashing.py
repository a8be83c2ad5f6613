"""Canonical form of a published frame: the content hash of each row and the JSON form of each primary key.

Publish skips a row whose hash did not change, so the hash must depend on the *values* only, never on how a frame
happened to be typed: ``object`` and ``str`` strings, ``None``/``NaN``/``NA``, microsecond and nanosecond times,
``-0.0`` and ``0.0`` all hash alike. It must also be stable across processes and releases, since stored hashes are
compared with new ones on every run: no Python ``hash()`` (salted per process) and no pandas hashing (an
implementation detail). Instead each value is reduced to 64 bits by a rule written here (BLAKE2b for strings, the
IEEE or integer bits otherwise), mixed with its field's name, and the fields are summed. A null field adds
nothing, so a minor contract version that adds a nullable field leaves the hashes of existing rows unchanged and
does not rewrite the whole table.

Two forms apply the rule: per column over a frame (``canonical_frame``, ``canonical_row_hashes``, ``key_json``) for
large publishes, and per row in plain Python (``canonical_records``, ``record_hash``, ``record_key_json``) for small
ones, where pandas' fixed cost per column outweighs the work (the device gateway's micro-batches). Both give the
same values, hashes and keys; a property test holds them to it.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from contracts import Contract, FieldSpec
from exchange.errors import InvalidFrameError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Record",
    "canonical_columns",
    "canonical_frame",
    "canonical_records",
    "canonical_row_hashes",
    "canonical_value",
    "key_json",
    "record_hash",
    "record_key_json",
    "row_hashes",
]

_U64 = npt.NDArray[np.uint64]
_MASK64 = (1 << 64) - 1
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
Record = dict[str, object]
"""One row in canonical form: every contract field in order, as an aware UTC datetime (whole microseconds),
float, int, bool, str or None."""


def canonical_frame(contract: type[Contract], frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in contract field order with one dtype per field type; what publish hashes and stores.

    Times become ``datetime64[us, UTC]`` (the precision both databases keep; finer digits are floored), numbers
    ``float64``, integers ``Int64``, booleans ``boolean`` and strings ``str``. Refuses what would silently change
    meaning: missing or unexpected columns, naive times, nulls in a non-nullable field.
    """
    import pandas as pd

    specs = contract.field_specs()
    _check_columns(contract, [str(column) for column in frame.columns])
    columns = {spec.name: _canonical_column(contract, spec, frame[spec.name]) for spec in specs}
    canonical = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))
    for spec in specs:
        if (not spec.nullable or spec.name in contract.meta.primary_key) and canonical[spec.name].isna().any():
            raise InvalidFrameError(
                f"{contract.meta.key}: field {spec.name} is not nullable but has "
                f"{int(canonical[spec.name].isna().sum())} null values; quality should have quarantined them"
            )
    return canonical


def canonical_records(
    contract: type[Contract], rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None
) -> list[Record]:
    """``canonical_frame`` row by row in plain Python: the same values, checks and errors, without pandas.

    The fields are ``columns`` (a frame's), else the union of the rows' keys (a field a row lacks is null in it),
    as a frame built from the rows would have; each value takes the type ``canonical_frame`` gives its column
    (``canonical_value``). No rows and no columns: nothing to check.
    """
    specs = contract.field_specs()
    fields = list(dict.fromkeys(name for row in rows for name in row)) if columns is None else list(columns)
    if rows or columns is not None:
        _check_columns(contract, fields)
    records = [{spec.name: canonical_value(contract, spec, row.get(spec.name)) for spec in specs} for row in rows]
    for spec in specs:
        if not spec.nullable or spec.name in contract.meta.primary_key:
            nulls = sum(1 for record in records if record[spec.name] is None)
            if nulls:
                raise InvalidFrameError(
                    f"{contract.meta.key}: field {spec.name} is not nullable but has {nulls} null values; "
                    "quality should have quarantined them"
                )
    return records


def _check_columns(contract: type[Contract], columns: Sequence[str]) -> None:
    names = [spec.name for spec in contract.field_specs()]
    given, known = set(columns), set(names)
    missing = [name for name in names if name not in given]
    unexpected = [column for column in columns if column not in known]
    if missing or unexpected:
        raise InvalidFrameError(
            f"{contract.meta.key}: frame columns do not match contract {contract.meta.version} "
            f"(missing {missing or 'none'}, unexpected {unexpected or 'none'}); publish takes the valid frame "
            "exactly as the quality runner produced it"
        )


def canonical_value(contract: type[Contract], spec: FieldSpec, value: object) -> object:
    """One value as ``canonical_frame`` types its column: None for every kind of missing, times in UTC floored
    to the microsecond (a naive time is refused), floats, ints, bools and str."""
    if _is_missing(value):
        return None
    if spec.type == "datetime":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise InvalidFrameError(
                f"{contract.meta.key}: field {spec.name} holds naive or non-datetime values; "
                "publish stores instants, so attach a zone upstream"
            )
        return _UNIX_EPOCH + _MICROSECOND * _micros(value)
    if spec.type == "number":
        return float(value)  # type: ignore[arg-type]
    if spec.type == "integer":
        number = float(value) if not isinstance(value, int | np.integer) else value  # type: ignore[arg-type]
        if isinstance(number, float) and not number.is_integer():
            raise InvalidFrameError(f"{contract.meta.key}: field {spec.name} holds {value!r}, not an integer")
        return int(number)
    if spec.type == "boolean":
        return bool(value)
    return str(value)


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    kind = type(value)
    if kind is float:
        return math.isnan(value)  # type: ignore[arg-type]  # a float, by the line above
    if kind is str or kind is int or kind is datetime:  # what most values are: decided without pandas' markers
        return False
    import pandas as pd

    if value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _micros(value: datetime) -> int:
    """Microseconds since the Unix epoch, floored (a pandas ``Timestamp`` may carry nanoseconds)."""
    micros = (value - _UNIX_EPOCH) // _MICROSECOND
    return int(micros)


def record_hash(contract: type[Contract], record: Record) -> int:
    """``canonical_row_hashes`` of one canonical record, by the same per-value rule."""
    total = 0
    for spec, field_key in _field_keys(contract):
        value = record[spec.name]
        if value is not None:
            total += _mix_one(_value_bits_one(value) ^ field_key)
    mixed = _mix_one(total & _MASK64)
    return mixed - (1 << 64) if mixed >= 1 << 63 else mixed


@cache
def _field_keys(contract: type[Contract]) -> tuple[tuple[FieldSpec, int], ...]:
    """Each field with its 64-bit key, computed once per contract for both forms of the rule."""
    return tuple((spec, _field_key(contract, spec)) for spec in contract.field_specs())


def _field_key(contract: type[Contract], spec: FieldSpec) -> int:
    return _blake64(f"{contract.meta.key}:{spec.name}:{spec.type}".encode())


def _value_bits_one(value: object) -> int:
    """``_value_bits`` of one canonical value (its Python type is its field's: str, datetime, float, int, bool)."""
    if isinstance(value, str):
        return _blake64(value.encode())
    if isinstance(value, datetime):
        return _micros(value) & _MASK64
    if isinstance(value, float):
        bits: int = struct.unpack("<Q", struct.pack("<d", value + 0.0))[0]
        return bits
    if isinstance(value, int):  # bool too: 1 or 0
        return int(value) & _MASK64
    raise TypeError(f"{value!r} is not a canonical value")


def _mix_one(value: int) -> int:
    """``_mix`` of one 64-bit integer."""
    z = value ^ (value >> 30)
    z = (z * 0xBF58476D1CE4E5B9) & _MASK64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def record_key_json(contract: type[Contract], record: Record) -> str:
    """``key_json`` of one canonical record."""
    return "[" + ",".join(_json_key_value(record[name]) for name in contract.meta.primary_key) + "]"


def _json_key_value(value: object) -> str:
    if isinstance(value, datetime):
        fraction = f".{value.microsecond:06d}" if value.microsecond else ""
        return f'"{value:%Y-%m-%dT%H:%M:%S}{fraction}Z"'
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def canonical_columns(contract: type[Contract], frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Some of a contract's fields (a key and a version: a tombstone's, or keys read back from a table) in the
    dtypes ``canonical_frame`` gives them, so they compare and encode exactly as published rows do."""
    import pandas as pd

    columns = {name: _canonical_column(contract, contract.field_spec(name), frame[name]) for name in names}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame)))


def _canonical_column(contract: type[Contract], spec: FieldSpec, series: pd.Series) -> pd.Series:
    import pandas as pd

    values = series.reset_index(drop=True)
    if spec.type == "datetime":
        return _utc_microseconds(contract, spec, values)
    if spec.type == "number":
        return values.astype("float64")
    if spec.type == "integer":
        return values.astype("Int64")
    if spec.type == "boolean":
        return values.astype("boolean")
    return values.astype(pd.StringDtype(na_value=np.nan))


def _utc_microseconds(contract: type[Contract], spec: FieldSpec, series: pd.Series) -> pd.Series:
    """Aware times in UTC at microsecond precision; a naive value has no defined instant, so it is refused."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        aware = series
    elif dtype.kind == "O" or series.isna().all():
        present = series.dropna()
        if any(not isinstance(value, datetime) or value.tzinfo is None for value in present):
            raise InvalidFrameError(
                f"{contract.meta.key}: field {spec.name} holds naive or non-datetime values; "
                "publish stores instants, so attach a zone upstream"
            )
        aware = pd.to_datetime(series, utc=True)
    else:
        raise InvalidFrameError(
            f"{contract.meta.key}: field {spec.name} has dtype {dtype}, expected an aware datetime64; "
            "a naive time has no defined instant"
        )
    utc = aware.dt.tz_convert("UTC")
    if np.datetime_data(utc.dtype.base)[0] == "ns":
        utc = utc.dt.floor("us")  # both databases keep microseconds; hash what will be stored
    return utc.dt.as_unit("us")


def row_hashes(contract: type[Contract], frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    """One signed 64-bit content hash per row (the ``_hash`` column), over the contract fields only."""
    return canonical_row_hashes(contract, canonical_frame(contract, frame))


def canonical_row_hashes(contract: type[Contract], canonical: pd.DataFrame) -> npt.NDArray[np.int64]:
    """``row_hashes`` of a frame ``canonical_frame`` already made: publish has one and need not make it twice."""
    total = np.zeros(len(canonical), dtype=np.uint64)
    for spec, field_key in _field_keys(contract):
        bits, present = _value_bits(spec, canonical[spec.name])
        total += np.where(present, _mix(bits ^ np.uint64(field_key)), np.uint64(0))
    return _mix(total).view(np.int64)


def _value_bits(spec: FieldSpec, series: pd.Series) -> tuple[_U64, npt.NDArray[np.bool_]]:
    """64 bits per value and a presence mask; the rule per type is part of the stored format, so never change it."""
    import pandas as pd

    present = series.notna().to_numpy(dtype=bool)
    if spec.type == "string":
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        table = np.array([_blake64(str(value).encode()) for value in uniques] + [0], dtype=np.uint64)
        return table[codes], present  # code -1 picks the trailing 0, masked out anyway
    if spec.type == "datetime":
        micros = series.array.asi8
        return micros.view(np.uint64), present
    if spec.type == "number":
        floats = series.to_numpy(dtype=np.float64, na_value=0.0) + 0.0  # -0.0 + 0.0 is 0.0
        return floats.view(np.uint64), present
    if spec.type == "integer":
        return series.to_numpy(dtype=np.int64, na_value=0).view(np.uint64), present
    return series.to_numpy(dtype=np.uint64, na_value=0), present


def _blake64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"waterhub").digest(), "little")


def _mix(values: _U64) -> _U64:
    """SplitMix64's finaliser: every input bit affects every output bit, so summed fields do not cancel out."""
    z = values ^ (values >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    result: _U64 = z ^ (z >> np.uint64(31))
    return result


def key_json(contract: type[Contract], frame: pd.DataFrame) -> pd.Series:
    """The change log's ``key``: a compact JSON array of the primary-key values, one string per row.

    Timestamps are ISO 8601 in UTC with ``Z`` (fractional seconds only when non-zero), the form Python's
    ``isoformat`` gives, so a consumer can rebuild the key of any row it holds. Each distinct value is encoded
    once and the rows are assembled by Arrow, because a publish may log a million keys.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    parts: list[object] = ["["]
    for position, name in enumerate(contract.meta.primary_key):
        spec = contract.field_spec(name)
        codes, fragments = _json_fragments(spec, _canonical_column(contract, spec, frame[name]))
        parts.extend([","] if position else [])
        parts.append(pa.array(fragments, pa.string()).take(pa.array(codes)))
    joined = pc.binary_join_element_wise(*parts, "]", "")
    return pd.Series(joined, dtype=pd.StringDtype(na_value=np.nan), index=frame.index)


def _json_fragments(spec: FieldSpec, series: pd.Series) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Codes into a list of distinct JSON fragments: keys repeat a lot (stations, hours), so encode each once."""
    import pandas as pd

    if series.isna().any():
        raise InvalidFrameError(f"primary-key field {spec.name} has null values")
    if spec.type == "datetime":
        codes, uniques = pd.factorize(series.array.asi8)
        stamps = np.asarray(uniques, dtype=np.int64).astype("datetime64[us]")
        whole = np.datetime_as_string(stamps, unit="s", timezone="UTC")
        fine = np.datetime_as_string(stamps, unit="us", timezone="UTC")
        texts = np.where(np.asarray(uniques) % 1_000_000 == 0, whole, fine)
        return codes, [f'"{text}"' for text in texts.tolist()]
    codes, uniques = pd.factorize(series)
    return codes, [_json_scalar(value) for value in uniques]


def _json_scalar(value: object) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
