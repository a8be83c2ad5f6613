"""Rows as the API sends them: JSON, NDJSON, CSV or Parquet, encoded chunk by chunk so memory stays flat.

On PostgreSQL the JSON of each row is built by the server (``json_build_object``): the hub then only joins text,
which is what keeps a million-row answer close to the speed of reading the rows at all. Elsewhere (the embedded
SQLite) Python builds the same JSON. Both spell a time as ISO 8601 UTC with microseconds and ``Z``, and a float as
its shortest exact text, so a consumer sees the same document from either backend.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import ColumnElement, Table, Text, cast, func, literal

from contracts import Contract, FieldSpec
from exchange.access.filters import field_specs_by_name
from exchange.errors import InvalidQueryError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "Format",
    "RowEncoder",
    "SentCount",
    "encoded_rows",
    "json_value",
    "negotiate",
    "pg_time_text",
    "rows_arrow_schema",
]

Format = Literal["json", "ndjson", "csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
FORMATS: tuple[str, ...] = tuple(MEDIA_TYPES)
_ACCEPTED: dict[str, Format] = {
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_PG_TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
_PG_MAX_FIELDS = 50  # json_build_object takes at most 100 arguments: a name and a value per field


def negotiate(format_param: str | None, accept: str | None) -> Format:
    """``format=`` wins; otherwise the first media type of ``Accept`` we serve; otherwise JSON."""
    if format_param is not None:
        if format_param not in MEDIA_TYPES:
            raise InvalidQueryError(
                f"format {format_param[:20]!r} is not served; use one of {', '.join(FORMATS)}", slug="invalid-format"
            )
        return format_param  # type: ignore[return-value]  # checked against the closed set above
    if not accept:
        return "json"
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in _ACCEPTED:
            return _ACCEPTED[media]
        if media in ("*/*", "application/*"):
            return "json"
    raise InvalidQueryError(
        f"none of the media types in Accept is served; ask for one of {', '.join(MEDIA_TYPES.values())}",
        slug="not-acceptable",
    )


@dataclass
class SentCount:
    """Rows sent so far by a streamed answer: the audit records it when the stream ends, however it ends."""

    rows: int = 0


def _json_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(_TIME_FORMAT)


def json_value(value: object) -> object:
    """A value as the API's JSON spells it: times as ISO 8601 UTC with microseconds and ``Z``."""
    return _json_time(value) if isinstance(value, datetime) else value


class RowEncoder:
    """The select list for a contract's rows and their encoding; ``server_json``: PostgreSQL builds each row's JSON."""

    def __init__(self, contract: type[Contract], table: Table, *, server_json: bool) -> None:
        self.specs: tuple[FieldSpec, ...] = tuple(field_specs_by_name(contract).values())
        self.names = [spec.name for spec in self.specs]
        self.server_json = server_json and len(self.specs) <= _PG_MAX_FIELDS
        self._table = table
        self._times = {index for index, spec in enumerate(self.specs) if spec.type == "datetime"}

    def columns(self, *, for_json: bool) -> list[ColumnElement[Any]]:
        if not (for_json and self.server_json):
            return [self._table.c[name] for name in self.names]
        return [cast(self.server_row(), Text).label("row_json")]

    def server_row(self) -> ColumnElement[Any]:
        """The row as a PostgreSQL ``json`` value (``server_json`` only), to send or to embed in a larger object."""
        arguments: list[ColumnElement[Any]] = []
        for spec in self.specs:
            column = self._table.c[spec.name]
            arguments += [cast(literal(spec.name), Text), pg_time_text(column) if spec.type == "datetime" else column]
        return func.json_build_object(*arguments)

    def width(self, *, for_json: bool) -> int:
        return 1 if for_json and self.server_json else len(self.names)

    def json_text(self, values: Sequence[Any]) -> str:
        """One row's JSON from the values selected by ``columns(for_json=True)``."""
        if self.server_json:
            return str(values[0])
        return json.dumps(self.as_dict(values), ensure_ascii=False, separators=(",", ":"))

    def as_dict(self, values: Sequence[Any]) -> dict[str, Any]:
        return {
            name: _json_time(value) if index in self._times and value is not None else value
            for index, (name, value) in enumerate(zip(self.names, values, strict=True))
        }


def pg_time_text(value: ColumnElement[Any]) -> ColumnElement[str]:
    """A PostgreSQL ``timestamptz`` as the API spells a time (``json_value``'s text, built by the server)."""
    return func.to_char(func.timezone("UTC", value), _PG_TIME_FORMAT)


def rows_arrow_schema(contract: type[Contract]) -> pa.Schema:
    """A snapshot's schema without ``_seq``: /rows sends the contract's fields only."""
    from exchange.snapshots import snapshot_schema
    from exchange.tables import SEQ_COLUMN

    schema = snapshot_schema(contract)
    return schema.remove(schema.get_field_index(SEQ_COLUMN))


def encoded_rows(
    fmt: Format,
    encoder: RowEncoder,
    arrow_schema: Callable[[], pa.Schema],
    chunks: Iterable[Sequence[Sequence[Any]]],
    sent: SentCount,
    *,
    json_head: str = "",
    json_tail: str = "",
) -> Iterator[bytes]:
    """The answer's bytes, chunk by chunk; ``json_head``/``json_tail`` wrap the rows of the ``json`` format."""
    if fmt == "parquet":
        yield from _parquet(arrow_schema(), chunks, sent)
        return
    if fmt == "csv":
        yield from _csv(encoder, chunks, sent)
        return
    separator = "\n" if fmt == "ndjson" else ","
    if fmt == "json":
        yield json_head.encode()
    first = True
    for chunk in chunks:
        text = separator.join(encoder.json_text(row) for row in chunk)
        if fmt == "ndjson":
            text += "\n"
        elif not first and chunk:
            text = "," + text
        first = first and not chunk
        sent.rows += len(chunk)
        yield text.encode()
    if fmt == "json":
        yield json_tail.encode()


def _csv(encoder: RowEncoder, chunks: Iterable[Sequence[Sequence[Any]]], sent: SentCount) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(encoder.names)
    times = [spec.type == "datetime" for spec in encoder.specs]
    for chunk in chunks:
        writer.writerows(
            [
                _json_time(value) if is_time and value is not None else value
                for value, is_time in zip(row, times, strict=True)
            ]
            for row in chunk
        )
        sent.rows += len(chunk)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


class _Sink(io.RawIOBase):
    """A write-only file that hands out what was written since the last ``take``; Parquet needs ``tell``."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        taken, self._parts = b"".join(self._parts), []
        return taken


def _parquet(schema: pa.Schema, chunks: Iterable[Sequence[Sequence[Any]]], sent: SentCount) -> Iterator[bytes]:
    """A row group per chunk, sent as soon as it is written; the footer comes last, as Parquet puts it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = _Sink()
    with pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd") as writer:
        for chunk in chunks:
            if not chunk:
                continue
            columns = zip(*chunk, strict=True)
            arrays = [pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            sent.rows += len(chunk)
            yield sink.take()
    yield sink.take()
