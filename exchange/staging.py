"""Batches waiting between tasks: raw records and validated frames in the object store, a manifest in the database.

Tasks hand each other a batch id, never rows, because the next task may run on another worker. Staging is keyed by
batch id (derived from source and run id), so a retried task overwrites its own output instead of adding to it.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import Connection, Engine, RowMapping, select, update

from exchange.errors import BatchNotFoundError
from exchange.objects import ObjectStore
from exchange.tables import batches

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = ["FRAME_PART_ROWS", "STAGING_REMOVED", "Batch", "BatchStaging", "batch_id_for", "json_bytes"]

_RECORD_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
"""The standard encoder, for a part msgspec cannot write (``_encode_part``). One instance for every record:
``json.dumps`` with options builds a new encoder per call."""
_FAST_ENCODER = msgspec.json.Encoder()
_FAST_DECODER = msgspec.json.Decoder()

FRAME_PART_ROWS = 50_000
"""Rows per row group of a staged frame: the part publish holds at a time (``iter_frame``)."""

STAGING_REMOVED = "staging_removed"
"""Manifest flag: the batch's staged objects are gone (snapshotted, or swept after the retention)."""


def json_bytes(text: str) -> bytes:
    """JSON text as UTF-8, with any lone surrogate written as its JSON escape (``\\ud800``).

    A source may send the escape of half a surrogate pair; ``json.loads`` turns it into a lone surrogate, which no
    UTF-8 encoder takes. Inside a JSON string the backslash escape is exactly what was sent, so the bytes read back
    as the same value (a lone surrogate can only stand in a string: JSON has no other place for text).
    """
    return text.encode("utf-8", "backslashreplace")


def batch_id_for(source: str, run_id: str) -> str:
    """A stable, path-safe id: the same run of the same source always stages into the same place."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:16]
    return f"{source}-{digest}"


@dataclass(frozen=True)
class Batch:
    batch_id: str
    source: str
    run_id: str
    interval_end: datetime
    status: str
    manifest: dict[str, Any]


class BatchStaging:
    """Reads and writes staged batches."""

    def __init__(self, engine: Engine, store: ObjectStore) -> None:
        self.engine = engine
        self.store = store

    def open(self, *, source: str, run_id: str, interval_end: datetime, now: datetime) -> Batch:
        """Start (or restart) the batch of one run; a restart forgets what the earlier attempt staged."""
        batch = Batch(batch_id_for(source, run_id), source, run_id, interval_end, "open", {"streams": {}})
        values = {
            "batch_id": batch.batch_id,
            "source": source,
            "run_id": run_id,
            "interval_end": interval_end,
            "status": batch.status,
            "created_at": now,
            "manifest": json.dumps(batch.manifest),
        }
        with self.engine.begin() as conn:
            conn.execute(batches.delete().where(batches.c.batch_id == batch.batch_id))
            conn.execute(batches.insert().values(values))
        return batch

    def get(self, batch_id: str) -> Batch:
        with self.engine.connect() as conn:
            row = conn.execute(select(batches).where(batches.c.batch_id == batch_id)).mappings().first()
        if row is None:
            raise BatchNotFoundError(f"batch {batch_id} was never staged; rerun the DAG from extract")
        return _batch(row)

    def latest(self, source: str) -> Batch | None:
        """The most recently opened batch of ``source``, whatever step it has reached."""
        query = select(batches).where(batches.c.source == source).order_by(batches.c.created_at.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _batch(row)

    def latest_published(self, source: str) -> Batch | None:
        """The most recently opened batch of ``source`` whose publish committed: what the next run can compare its
        records with (``waterhub.judged``)."""
        query = (
            select(batches)
            .where(batches.c.source == source, batches.c.status.in_(("published", "snapshotted")))
            .order_by(batches.c.created_at.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _batch(row)

    def update(
        self,
        batch: Batch,
        *,
        status: str,
        streams: Mapping[str, Mapping[str, Any]],
        conn: Connection | None = None,
    ) -> Batch:
        """Merge per-stream entries into the manifest and move the batch to ``status``; inside ``conn``'s transaction
        when given (publish: the summary commits with what it describes, or not at all), else in one of its own."""
        manifest = {**batch.manifest, "streams": {**batch.manifest["streams"]}}
        for stream, entry in streams.items():
            manifest["streams"][stream] = {**manifest["streams"].get(stream, {}), **entry}
        statement = (
            batches.update()
            .where(batches.c.batch_id == batch.batch_id)
            .values(status=status, manifest=json.dumps(manifest))
        )
        if conn is not None:
            conn.execute(statement)
        else:
            with self.engine.begin() as own:
                own.execute(statement)
        return Batch(batch.batch_id, batch.source, batch.run_id, batch.interval_end, status, manifest)

    def put_records(
        self, batch: Batch, stream: str, records: Iterable[Mapping[str, object]], *, chunk: int
    ) -> list[str]:
        """Stage raw records as NDJSON parts of at most ``chunk`` records, exactly as the connector produced them,
        holding one part at a time (a stream may be a million records); returns the parts' object keys in order.
        A stream with no records still gets one (empty) part, so a batch says it was read."""
        keys: list[str] = []
        iterator = iter(records)
        while part := list(itertools.islice(iterator, chunk)):
            keys.append(self._put_part(batch, stream, len(keys), part))
        return keys or [self._put_part(batch, stream, 0, [])]

    def _put_part(self, batch: Batch, stream: str, number: int, records: Sequence[Mapping[str, object]]) -> str:
        key = f"staging/{batch.batch_id}/{stream}.raw.{number:05d}.ndjson"
        self.store.put(key, _encode_part(records))
        return key

    def iter_records(self, keys: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        """The staged records part by part, in the order they were read."""
        for key in keys:
            yield _decode_part(self.store.get(key))

    def record_lines(self, key: str) -> list[str]:
        """A staged part's records as their JSON text, one line each: a reader after a few of them parses only those."""
        return _part_lines(self.store.get(key))

    def put_frame(self, batch: Batch, name: str, frame: pd.DataFrame) -> str:
        """Stage a typed frame as Parquet, so the next task reads the same dtypes the validator produced, in row
        groups of ``FRAME_PART_ROWS`` that ``iter_frame`` reads one at a time. A stream's valid rows are staged as
        one such frame per validation chunk, as validate judges them (``iter_frame`` reads them in order)."""
        key = f"staging/{batch.batch_id}/{name}.parquet"
        self._put_frame(key, frame)
        return key

    def drop_rows(self, key: str, rows: npt.NDArray[np.intp]) -> None:
        """Stage the frame at ``key`` again without its rows at ``rows`` (validate dropping the rows of one chunk
        that a later chunk's rows supersede)."""
        self._put_frame(key, self.read_frame(key).drop(index=rows).reset_index(drop=True))

    def _put_frame(self, key: str, frame: pd.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False, compression="zstd", row_group_size=FRAME_PART_ROWS)
        self.store.put(key, buffer.getvalue())

    def remove(self, batch: Batch) -> int:
        """Remove the batch's staged objects once nothing will read them again (it is snapshotted), and flag the
        manifest so a step asked to reread them says why they are gone; returns how many objects were removed."""
        removed = self._remove_objects(batch.batch_id)
        with self.engine.begin() as conn:
            _flag_removed(conn, [batch.batch_id])
        return removed

    def sweep(self, *, now: datetime, retention: timedelta) -> list[str]:
        """Remove the staging of batches opened more than ``retention`` ago that never got to be removed (their run
        failed or was abandoned), and of folders no batch row names; returns the batch ids swept.

        A run retried within the retention still finds its staging; one retried later reruns from extract.
        """
        cutoff = now - retention
        query = select(batches.c.batch_id, batches.c.manifest).where(batches.c.created_at < cutoff)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            old = {batch_id for batch_id, manifest in rows if not json.loads(manifest).get(STAGING_REMOVED)}
            known = set(conn.execute(select(batches.c.batch_id)).scalars())
        staged = {key.split("/")[1] for key in self.store.list("staging/") if key.count("/") >= 2}
        swept = sorted((old & staged) | (staged - known))
        for batch_id in swept:
            self._remove_objects(batch_id)
        with self.engine.begin() as conn:
            _flag_removed(conn, sorted(old))
        return swept

    def _remove_objects(self, batch_id: str) -> int:
        keys = list(self.store.list(f"staging/{batch_id}/"))
        for key in keys:
            self.store.delete(key)
        return len(keys)

    def read_frame(self, key: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """A staged frame, or only its ``columns``."""
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.store.get(key)), columns=None if columns is None else list(columns))

    def iter_frame(self, keys: Sequence[str]) -> Iterator[pd.DataFrame]:
        """Staged frames end to end, part by part (each one's row groups, in order, with the dtypes ``read_frame``
        gives), so a reader of a year's stream holds one part of it at a time; a frame with no rows is one empty
        part."""
        import pyarrow.parquet as pq

        for key in keys:
            parquet = pq.ParquetFile(io.BytesIO(self.store.get(key)))
            if parquet.num_row_groups == 0:
                yield parquet.read().to_pandas()
            for group in range(parquet.num_row_groups):
                yield parquet.read_row_group(group).to_pandas()


def _encode_part(records: Sequence[Mapping[str, object]]) -> bytes:
    """A part's records as NDJSON. msgspec writes the same values as the standard encoder several times faster, but
    cannot write text holding a lone surrogate (what ``json.loads`` makes of the escape ``"\\ud800"``): a part
    holding one is written by the standard encoder, the surrogate as its escape (``json_bytes``). No staged record
    holds a non-finite float, which msgspec would write as ``null``: ``parse_json_page`` keeps those as the text
    the source sent."""
    try:
        return _FAST_ENCODER.encode_lines(records)
    except UnicodeEncodeError:
        return json_bytes("".join(_RECORD_ENCODER.encode(record) + "\n" for record in records))


def _decode_part(body: bytes) -> list[dict[str, Any]]:
    """A staged part's records, parsed by msgspec as one JSON array: several times faster than ``json.loads`` line by
    line, with the same values (big integers, floats, key order). A part whose text it refuses (a lone surrogate's
    escape) is parsed line by line by the standard parser, as it was written."""
    try:
        records: list[dict[str, Any]] = _FAST_DECODER.decode(b"[" + body.rstrip(b"\n").replace(b"\n", b",") + b"]")
    except msgspec.DecodeError:
        return [json.loads(line) for line in _part_lines(body)]
    return records


def _part_lines(body: bytes) -> list[str]:
    """A staged part's records as their JSON text, one line each. Lines end at ``\n`` only: JSON escapes every
    newline inside a string, but not U+2028, U+2029 or U+0085, which ``str.splitlines`` would also break a record at."""
    return [line for line in body.decode().split("\n") if line]


def _flag_removed(conn: Connection, batch_ids: Iterable[str]) -> None:
    """Set the manifest's removal flag on each batch (read, change, write: a handful of rows per run)."""
    for batch_id in batch_ids:
        text = conn.execute(select(batches.c.manifest).where(batches.c.batch_id == batch_id)).scalar_one()
        manifest = {**json.loads(text), STAGING_REMOVED: True}
        conn.execute(update(batches).where(batches.c.batch_id == batch_id).values(manifest=json.dumps(manifest)))


def _batch(row: RowMapping) -> Batch:
    return Batch(
        row["batch_id"], row["source"], row["run_id"], row["interval_end"], row["status"], json.loads(row["manifest"])
    )
