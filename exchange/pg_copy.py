"""Binary ``COPY … FROM STDIN`` for PostgreSQL, with the rows built column by column in Arrow.

Text COPY spends most of its time in the server parsing floats and timestamps, and a Python loop over rows
(``write_row``) spends it in the client. The binary format has neither cost: every value is a length and its
network-order bytes, so each column can be encoded at once with numpy, and Arrow's element-wise binary join glues
the columns into rows without a Python loop. Rows go out in chunks through psycopg's queued writer, so the next
chunk is encoded while the last one is on the wire. Format: PostgreSQL docs, "COPY", section "Binary Format".
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import BigInteger, Boolean, Float, Integer, SmallInteger, String, Text
from sqlalchemy.types import TypeEngine

from exchange.db import UtcDateTime

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CopyKind", "copy_kind", "copy_rows", "fetch_fixed_columns"]

CopyKind = Literal["int2", "int4", "int8", "float8", "bool", "text", "timestamptz"]

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # no flags, no header extension
_TRAILER = struct.pack(">h", -1)
_NULL = struct.pack(">i", -1)
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z, the zero of PostgreSQL timestamps, in Unix µs
_FIXED: dict[str, str] = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float8": ">f8",
    "bool": "u1",
    "timestamptz": ">i8",
}
CHUNK_ROWS = 65_536


_KINDS: tuple[tuple[type[TypeEngine[Any]] | tuple[type[TypeEngine[Any]], ...], CopyKind], ...] = (
    (UtcDateTime, "timestamptz"),
    (BigInteger, "int8"),  # before Integer and SmallInteger: SQLAlchemy's BigInteger is an Integer
    (SmallInteger, "int2"),
    (Integer, "int4"),
    (Float, "float8"),
    (Boolean, "bool"),
    ((String, Text), "text"),
)
"""First match wins."""


def copy_kind(column_type: TypeEngine[Any]) -> CopyKind:
    """The binary wire type of a column, which must match the column's SQL type exactly (int4 is not int8)."""
    for types, kind in _KINDS:
        if isinstance(column_type, types):
            return kind
    raise TypeError(f"no binary COPY encoding for column type {column_type!r}")


def copy_rows(
    cursor: Any,
    table_sql: str,
    columns: Sequence[tuple[str, CopyKind]],
    values: Mapping[str, object],
    rows: int,
    *,
    quote: Any = None,
) -> None:
    """COPY ``rows`` rows into ``table_sql`` (already quoted); each value is a Series/array of ``rows`` or a constant.

    ``quote`` quotes a column name (the dialect's identifier preparer); constants are encoded once and repeated.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from psycopg.copy import QueuedLibpqWriter

    quote = quote or (lambda name: f'"{name}"')
    names = ", ".join(quote(name) for name, _ in columns)
    statement = f"COPY {table_sql} ({names}) FROM STDIN (FORMAT binary)"
    sources = [_Source(kind, values[name]) for name, kind in columns]
    header = pa.scalar(struct.pack(">h", len(columns)), pa.binary())
    with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
        copy.write(_SIGNATURE)
        for start in range(0, rows, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, rows)
            fields = [source.encode(start, stop) for source in sources]
            if all(isinstance(field, pa.Scalar) for field in fields):
                fields[0] = pa.array([fields[0].as_py()] * (stop - start), pa.binary())  # the join needs one array
            copy.write(_values_buffer(pc.binary_join_element_wise(header, *fields, b"")))
        copy.write(_TRAILER)


def fetch_fixed_columns(cursor: Any, query_sql: str, kinds: Sequence[CopyKind]) -> list[npt.NDArray[Any]]:
    """Run ``COPY (query) TO STDOUT`` for a query of non-null fixed-width columns of ``kinds``; one array per column.

    Every row then has the same size, so the whole answer is read with one structured ``frombuffer``, and values
    come back exactly as stored: ``float8`` as float64, ``timestamptz`` as int64 microseconds since the Unix epoch,
    the integer kinds as int64, ``bool`` as bool.
    """
    variable = [kind for kind in kinds if kind not in _FIXED]
    if variable:
        raise ValueError(f"fetch_fixed_columns reads fixed-width kinds only, not {variable}")
    body = bytearray()
    with cursor.copy(f"COPY ({query_sql}) TO STDOUT (FORMAT binary)") as copy:
        for chunk in copy:
            body += chunk
    if not body.startswith(_SIGNATURE[:11]):
        raise ValueError("binary COPY answer does not start with the PGCOPY signature")
    start = len(_SIGNATURE)  # this server writes no header extension, so the signature length is fixed
    layout = np.dtype(
        [("count", ">i2"), *((f"v{i}", [("length", ">i4"), ("value", _FIXED[kind])]) for i, kind in enumerate(kinds))]
    )
    rows = (len(body) - start - len(_TRAILER)) // layout.itemsize
    records = np.frombuffer(body, dtype=layout, count=rows, offset=start)
    sizes = [np.dtype(_FIXED[kind]).itemsize for kind in kinds]
    if rows and (
        (records["count"] != len(kinds)).any()
        or any((records[f"v{i}"]["length"] != size).any() for i, size in enumerate(sizes))
    ):
        raise ValueError(f"binary COPY answer is not {len(kinds)} non-null columns of {list(kinds)} per row")
    return [_native(kind, records[f"v{i}"]["value"]) for i, kind in enumerate(kinds)]


def _native(kind: CopyKind, values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if kind == "float8":
        return values.astype(np.float64)
    if kind == "bool":
        return values.astype(bool)
    if kind == "timestamptz":
        return values.astype(np.int64) + _PG_EPOCH_US
    return values.astype(np.int64)


class _Source:
    """One column's values, encoded chunk by chunk as binary COPY fields (length then bytes)."""

    def __init__(self, kind: CopyKind, value: object) -> None:
        import pandas as pd
        import pyarrow as pa

        self.kind = kind
        self.constant: pa.Scalar | None = None
        self.array: pa.Array | None = None
        self.numbers: npt.NDArray[Any] | None = None
        self.valid: npt.NDArray[np.bool_] | None = None
        if not isinstance(value, pd.Series | np.ndarray | pa.Array | pa.ChunkedArray):
            self.constant = pa.scalar(_encode_constant(kind, value), pa.binary())
        elif kind == "text":
            array = value if isinstance(value, pa.Array | pa.ChunkedArray) else pa.array(value, from_pandas=True)
            if isinstance(array, pa.ChunkedArray):
                array = array.combine_chunks()
            self.array = array.cast(pa.large_binary())
        else:
            self.numbers, self.valid = _numbers(kind, value)

    def encode(self, start: int, stop: int) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.constant is not None:
            return self.constant
        null = pa.scalar(_NULL, pa.binary())
        if self.array is not None:
            chunk = self.array.slice(start, stop - start)
            lengths = pc.fill_null(pc.binary_length(chunk), 0).to_numpy().astype(">i4")
            return pc.fill_null(pc.binary_join_element_wise(_fixed_binary(lengths), chunk.cast(pa.binary()), b""), null)
        if self.numbers is None:
            raise RuntimeError(f"{self.kind} column has neither a constant, text nor numbers")
        size = np.dtype(_FIXED[self.kind]).itemsize
        records = np.empty(stop - start, dtype=[("length", ">i4"), ("value", _FIXED[self.kind])])
        records["length"] = size
        records["value"] = self.numbers[start:stop]
        fields = _fixed_binary(records)
        if self.valid is None:
            return fields
        valid = self.valid[start:stop]
        return fields if valid.all() else pc.if_else(pa.array(valid), fields, null)


def _numbers(kind: CopyKind, value: Any) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_] | None]:
    """Plain numbers for a fixed-width column and, when it has gaps, which values are present."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(value, pa.Array | pa.ChunkedArray):
        value = value.to_pandas()
    if isinstance(value, np.ndarray) and value.dtype.kind in "iub":
        return (value.astype("u1") if kind == "bool" else value), None
    series = pd.Series(value)
    valid = series.notna().to_numpy(dtype=bool)
    if kind == "timestamptz":
        micros = series.dt.tz_convert("UTC").dt.as_unit("us").array.asi8 - _PG_EPOCH_US
        return micros, (None if valid.all() else valid)
    if kind == "float8":
        return series.to_numpy(dtype=np.float64, na_value=np.nan), (None if valid.all() else valid)
    if kind == "bool":
        return series.to_numpy(dtype=np.uint8, na_value=0), (None if valid.all() else valid)
    return series.to_numpy(dtype=np.int64, na_value=0), (None if valid.all() else valid)


def _encode_constant(kind: CopyKind, value: object) -> bytes:
    if value is None:
        return _NULL
    if kind == "text":
        data = str(value).encode()
        return struct.pack(">i", len(data)) + data
    if kind == "timestamptz":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError(f"timestamptz constant {value!r} must be an aware datetime")
        delta = value.astimezone(UTC) - datetime(2000, 1, 1, tzinfo=UTC)
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return struct.pack(">iq", 8, micros)
    fmt = _FIXED[kind]
    packed = np.array([value], dtype=fmt).tobytes()
    return struct.pack(">i", len(packed)) + packed


def _fixed_binary(records: npt.NDArray[Any]) -> pa.Array:
    """A numpy array of fixed-size records as an Arrow binary array, one element per record, without copying."""
    import pyarrow as pa

    width = records.dtype.itemsize
    raw = np.ascontiguousarray(records).view(np.uint8)
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(records), [None, pa.py_buffer(raw)])
    return fixed.cast(pa.binary())


def _values_buffer(array: pa.Array) -> memoryview:
    """The bytes of a null-free binary array, end to end: exactly the rows of this chunk."""
    import pyarrow as pa

    width = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=width)[array.offset : array.offset + len(array) + 1]
    return memoryview(array.buffers()[2])[int(offsets[0]) : int(offsets[-1])]
