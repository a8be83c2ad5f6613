"""Publish a valid frame into its dataset table: upsert by primary key, log each real change, queue one event.

Everything happens inside the caller's transaction (STYLE rule 9): the caller also advances its watermarks there,
so rows, change log, outbox row and watermark commit or vanish together. The dataset's row in ``datasets`` is
locked first; it holds the last sequence number, so concurrent publishes of one dataset queue up behind it and
sequence numbers stay gapless and monotonic.

Newer data always wins. Each contract names the field that orders versions of a record (``version_field``); an
incoming row whose version is older than the stored one is *stale*: it is skipped and counted, and writes no row,
no change-log entry and no event. Otherwise (same version or newer) the content hash decides: a row whose hash
did not change is not touched, which makes a republish of the same batch write nothing and send nothing. Without
the version rule, a late retry of an older batch would write its values back over corrections a newer batch
published, and the watermark, already past those corrections, would never bring them back. The comparison reads
the stored rows after the lock is taken, so it sees every publish that committed before this one.

On PostgreSQL rows travel by binary ``COPY`` (exchange.pg_copy): the frame's keys go to a temporary table, the
server streams back the stored hash and version of every key it knows while this process hashes the frame, numpy
compares them, and updates are applied with one ``UPDATE … FROM``. Other databases (the embedded SQLite) take the
same steps with ``executemany`` and compare in SQL. The tests run every scenario on both, so the two agree on what
changed.

Small frames (``SMALL_FRAME_ROWS``: the device gateway commits a micro-batch every few tens of milliseconds) are
published row by row in plain Python instead (``_RowUpserts``): pandas and Arrow cost about the same per column
for one row as for a million, and a small publish paid that for thirty columns in the canonical frame, the hashes
and the COPY encoders. Each row is canonicalised and hashed by the same per-value rule (``exchange.hashing``), one
``SELECT`` reads the stored hash and version of the rows' keys (an ``unnest`` of key arrays on PostgreSQL,
``(key) IN (…)`` on SQLite), the same newer-data-wins rule picks the rows, and inserts, updates and the change
log go in with one statement each (on PostgreSQL one array parameter per column, sent in psycopg's binary format).
Callers may hand rows (mappings of field to value) instead of a frame: the device gateway does, and never builds a
frame. Both paths write the same rows, change log and outbox (a property
test publishes the same frames both ways on both databases).

Deletes. A stream may say a record is gone in two ways: a *tombstone* (the source marks the record deleted, and
the pipeline hands its key and version here as ``tombstones``), or by no longer listing it in a stream read whole
each run (``full_refresh``: every stored key missing from the frame is gone). Either way the row leaves the table,
the change log gets an ``op='delete'`` entry after the upserts' entries, and the outbox row counts it. Newer data
wins here too: a tombstone older than the stored row (by ``version_field``) is stale, counted, and deletes
nothing. Deletes take the same SQL on both databases, with the keys in a temporary table loaded as rows are (COPY on
PostgreSQL).

Statistics. A publish that changes at least ``ANALYZE_AFTER_ROWS`` rows on PostgreSQL ends by analysing the dataset
table and the change log, inside the same transaction. Autovacuum would get there later, but in between the planner
works from the statistics of the table before the load: right after a bulk publish a consumer's ten-thousand-entry
``/changes`` page took 2.7 s instead of 0.21 s.

Parts. The pipeline hands a stream as the parts it was staged in (``publish_parts``: a year of patrols is half a
million rows, and memory holds one part): the parts share the lock, one run of sequence numbers and one outbox row,
and deletes follow the last part, so a full refresh deletes only what no part lists.

Sequence numbers follow frame order. When nothing changed, nothing is written at all (no change log, no outbox,
and the ``datasets`` row keeps its last publish time and run): only a first, empty publish creates that row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Executable,
    FromClause,
    Integer,
    MetaData,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from contracts import Contract, FieldSpec
from exchange.db import UtcDateTime, upsert_insert
from exchange.errors import InvalidFrameError
from exchange.hashing import (
    Record,
    canonical_columns,
    canonical_frame,
    canonical_records,
    canonical_row_hashes,
    key_json,
    record_hash,
    record_key_json,
)
from exchange.pg_copy import copy_kind, copy_rows, fetch_fixed_columns
from exchange.tables import (
    HASH_COLUMN,
    RUN_COLUMN,
    SEQ_COLUMN,
    change_log,
    dataset_table,
    dataset_table_name,
    datasets,
    outbox,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PublishResult", "Rows", "event_id_for", "publish_frame", "publish_parts"]

_EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:waterhub:outbox")
_VERSION = "_version"
_SLICE_ROWS = 20_000
SMALL_FRAME_ROWS = 600
"""Frames up to this many rows are published row by row (``_RowUpserts``): a few statements and plain Python,
where temporary tables, ``COPY`` and pandas cost tens of milliseconds a publish whatever the size (the device
gateway's micro-batches). Python's cost per row (canonical values, hashes; the arrays go to psycopg in binary, so
their encoding no longer counts) catches up with the frame's fixed cost at several hundred rows; larger frames take
the bulk strategy of their database. The bound is measured (README, gateway), not derived."""
ANALYZE_AFTER_ROWS = 10_000
"""A publish that changes at least this many rows refreshes the planner's statistics of its table and the change log."""
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Hashes = npt.NDArray[np.int64]
Rows = Sequence[Mapping[str, object]]
"""Rows handed to publish instead of a frame: one mapping of field name to value per row."""
_Columns = dict[str, object]
"""Column name → a Series or array with one value per row, or one constant for every row."""


@dataclass(frozen=True)
class _Comparison:
    """The incoming frame against the stored table, row by row."""

    changed: npt.NDArray[np.int64]
    """Positions of the rows to write, ascending: new keys, and same-or-newer versions whose content differs."""
    existed: npt.NDArray[np.bool_]
    """Per changed row: whether its key is stored (an update) or not (an insert)."""
    hashes: _Hashes
    """The content hash of every incoming row."""
    stale: int
    """Rows skipped because the stored version of their key is newer."""


@dataclass(frozen=True)
class PublishResult:
    """What one publish did to one dataset; ``first_seq``/``last_seq``/``event_id`` are None when nothing changed."""

    dataset: str
    contract_version: str
    run_id: str
    inserted: int
    updated: int
    unchanged: int
    stale: int
    """Rows older (by the contract's ``version_field``) than the stored version of their key: skipped."""
    deleted: int
    first_seq: int | None
    last_seq: int | None
    event_id: str | None

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted

    def counts(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "stale": self.stale,
            "deleted": self.deleted,
        }


def event_id_for(dataset: str, epoch: str, first_seq: int, last_seq: int) -> str:
    """The outbox event id: derived from the sequence range, so a retried dispatch sends the same id again, and
    from the dataset's epoch, so a rebuilt hub's first changes do not repeat the ids of the old hub's."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{dataset}:{epoch}:{first_seq}-{last_seq}"))


def publish_frame(
    conn: Connection,
    contract: type[Contract],
    frame: pd.DataFrame | Rows,
    *,
    run_id: str,
    now: datetime,
    tombstones: pd.DataFrame | None = None,
    full_refresh: bool = False,
) -> PublishResult:
    """Upsert ``frame`` (the quality runner's valid rows, as a frame or as mappings of field to value) into the
    contract's table within ``conn``'s transaction, then delete what ``tombstones`` (primary key and version
    columns) name, and with ``full_refresh`` every stored row whose key ``frame`` lacks. Up to
    ``SMALL_FRAME_ROWS`` rows are compared and written row by row, more column by column: the same outcome."""
    return publish_parts(
        conn, contract, (frame,), run_id=run_id, now=now, tombstones=tombstones, full_refresh=full_refresh
    )


def publish_parts(
    conn: Connection,
    contract: type[Contract],
    parts: Iterable[pd.DataFrame | Rows],
    *,
    run_id: str,
    now: datetime,
    tombstones: pd.DataFrame | None = None,
    full_refresh: bool = False,
) -> PublishResult:
    """``publish_frame`` of one stream handed in parts (a year of a stream read from staging one part at a time:
    memory holds one part, not the year). One lock, one run of sequence numbers in part order, one outbox row;
    deletes come after every part, so a full refresh deletes only keys that no part lists. Parts must not share a
    key (the quality runner keeps one row per key in a stream); a first publish that got one fails on the primary
    key, and nothing is written."""
    import pandas as pd

    if now.tzinfo is None:
        raise ValueError(f"now={now!r} is naive; pass an aware UTC datetime")
    meta = contract.meta
    table = dataset_table(contract)
    writer = _writer(conn, table)
    primary_key = list(meta.primary_key)
    locked: tuple[int, str] | None = None
    upserted = _Upserted(0, 0, 0, 0)
    present: list[pd.DataFrame] = []
    for part in parts:
        upserts = _RowUpserts(contract, part) if len(part) <= SMALL_FRAME_ROWS else _FrameUpserts(contract, part)
        del part  # the canonical copy is all that is used
        locked = locked or _lock_dataset(conn, contract)
        first_of_part = locked[0] + 1 + upserted.inserted + upserted.updated
        upserted += upserts.apply(writer, first_seq=first_of_part, run_id=run_id, now=now)
        if full_refresh:
            present.append(upserts.keys()[primary_key])
        del upserts
    last_seq, epoch = locked or _lock_dataset(conn, contract)
    first_seq = last_seq + 1
    inserted, updated = upserted.inserted, upserted.updated
    deleted = stale_tombstones = 0
    if full_refresh or (tombstones is not None and len(tombstones)):
        # Only then: finding nothing to delete still costs a micro-batch a few milliseconds of empty frames.
        deletions = _Deletions(conn, contract, table, writer)
        listed = pd.concat(present, ignore_index=True) if full_refresh else None
        doomed, stale_tombstones = deletions.find(listed, tombstones)
        deleted = deletions.apply(doomed, first_seq=first_seq + inserted + updated, run_id=run_id, now=now)
    stale = upserted.stale + stale_tombstones
    if inserted + updated + deleted == 0:
        return PublishResult(
            dataset=meta.key,
            contract_version=meta.version,
            run_id=run_id,
            inserted=0,
            updated=0,
            unchanged=upserted.unchanged,
            stale=stale,
            deleted=0,
            first_seq=None,
            last_seq=None,
            event_id=None,
        )

    new_last_seq = first_seq + inserted + updated + deleted - 1
    event_id = event_id_for(meta.key, epoch, first_seq, new_last_seq)
    values = {
        "event_id": event_id,
        "dataset": meta.key,
        "contract_version": meta.version,
        "run_id": run_id,
        "first_seq": first_seq,
        "last_seq": new_last_seq,
        "inserted": inserted,
        "updated": updated,
        "deleted": deleted,
        "now": now,
    }
    for statement in _event_statements(conn.dialect.name, table):
        conn.execute(statement, values)
    if conn.dialect.name == "postgresql" and inserted + updated + deleted >= ANALYZE_AFTER_ROWS:
        _analyze(conn, table, change_log)
    return PublishResult(
        dataset=meta.key,
        contract_version=meta.version,
        run_id=run_id,
        inserted=inserted,
        updated=updated,
        unchanged=upserted.unchanged,
        stale=stale,
        deleted=deleted,
        first_seq=first_seq,
        last_seq=new_last_seq,
        event_id=event_id,
    )


@lru_cache(maxsize=256)
def _event_statements(dialect: str, table: Table) -> tuple[Executable, ...]:
    """The outbox row of a publish and its dataset's catalogue update, built once per table with their values as
    parameters (building them anew cost a micro-batch more than running them). On PostgreSQL one statement (the
    outbox row as a data-modifying WITH): a round trip fewer per dataset of a micro-batch."""
    new_event = outbox.insert().values(
        event_id=bindparam("event_id"),
        dataset=bindparam("dataset"),
        contract_version=bindparam("contract_version"),
        run_id=bindparam("run_id"),
        first_seq=bindparam("first_seq"),
        last_seq=bindparam("last_seq"),
        inserted=bindparam("inserted"),
        updated=bindparam("updated"),
        deleted=bindparam("deleted"),
        created_at=bindparam("now", type_=UtcDateTime()),
        dispatched_at=None,
        attempts=0,
    )
    catalogued = (
        datasets.update()
        .where(datasets.c.key == bindparam("dataset"))
        .values(
            contract_version=bindparam("contract_version"),
            table_name=table.name,
            last_seq=bindparam("last_seq"),
            # Counted as it changes (the lock makes that exact), not recounted: a full count grows with the table and
            # every micro-batch of the device gateway would pay it. A new major's table is counted once.
            row_count=case(
                (
                    datasets.c.table_name == table.name,
                    datasets.c.row_count
                    + bindparam("inserted", type_=Integer())
                    - bindparam("deleted", type_=Integer()),
                ),
                else_=select(func.count()).select_from(table).scalar_subquery(),
            ),
            last_published_at=bindparam("now", type_=UtcDateTime()),
            last_run_id=bindparam("run_id"),
        )
    )
    if dialect == "postgresql":
        return (catalogued.add_cte(new_event.cte("new_event")),)
    return new_event, catalogued


@dataclass(frozen=True)
class _Upserted:
    inserted: int
    updated: int
    unchanged: int
    stale: int

    def __add__(self, other: _Upserted) -> _Upserted:
        """The counts of two parts of one publish together."""
        return _Upserted(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.stale + other.stale,
        )


class _FrameUpserts:
    """A large frame compared and written column by column: the writer's bulk strategy (temporary key tables,
    ``COPY`` on PostgreSQL, numpy comparisons)."""

    def __init__(self, contract: type[Contract], frame: pd.DataFrame | Rows) -> None:
        import pandas as pd

        self.contract = contract
        given = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(list(frame))
        self.canonical = canonical_frame(contract, given)
        _refuse_duplicate_keys(contract, self.canonical)

    def keys(self) -> pd.DataFrame:
        return self.canonical

    def apply(self, writer: _GenericWriter, *, first_seq: int, run_id: str, now: datetime) -> _Upserted:
        """Write the rows that changed, with sequence numbers from ``first_seq`` in frame order, and log them."""
        contract, canonical, meta = self.contract, self.canonical, self.contract.meta
        found = writer.compare(contract, canonical, lambda: canonical_row_hashes(contract, canonical))
        changed, existed, hashes = found.changed, found.existed, found.hashes
        seqs = np.arange(first_seq, first_seq + changed.size, dtype=np.int64)
        if changed.size:
            everything = changed.size == len(canonical)  # the first publish: skip copying a million rows to select all
            rows = canonical if everything else canonical.iloc[changed].reset_index(drop=True)
            columns: _Columns = {str(name): rows[name] for name in rows.columns}
            columns |= {HASH_COLUMN: hashes if everything else hashes[changed], SEQ_COLUMN: seqs, RUN_COLUMN: run_id}
            is_new = ~existed
            writer.insert_rows(*_select(columns, is_new))
            writer.update_rows(list(meta.primary_key), *_select(columns, existed))
            changes: _Columns = {
                "dataset": meta.key,
                "seq": seqs,
                "key": key_json(contract, rows),
                "op": "insert" if is_new.all() else np.where(existed, "update", "insert").astype(object),
                "contract_version": meta.version,
                "run_id": run_id,
                "changed_at": now.astimezone(UTC),
            }
            writer.append_changes(changes, changed.size)
        inserted = int((~existed).sum())
        unchanged = len(canonical) - changed.size - found.stale
        return _Upserted(inserted, changed.size - inserted, unchanged, found.stale)


class _RowUpserts:
    """A small frame compared and written row by row in plain Python: pandas and Arrow cost about the same per
    column for one row as for a hundred, and a device micro-batch is a few dozen rows of thirty columns. The
    stored hashes and versions of the rows' keys come back from one ``SELECT``; the same rule as the frame path
    (newer or equal version, then a different hash) picks the rows to write, which go in with a few statements."""

    def __init__(self, contract: type[Contract], frame: pd.DataFrame | Rows) -> None:
        import pandas as pd

        self.contract = contract
        if isinstance(frame, pd.DataFrame):
            rows: Rows = frame.to_dict("records")
            self.records = canonical_records(contract, rows, [str(column) for column in frame.columns])
        else:
            self.records = canonical_records(contract, frame)
        self.primary_key = list(contract.meta.primary_key)
        self.key_tuples = [tuple(record[name] for name in self.primary_key) for record in self.records]
        if len(set(self.key_tuples)) < len(self.key_tuples):
            _refuse_duplicate_keys(contract, self.keys())

    def keys(self) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame(self.key_tuples, columns=self.primary_key)
        return canonical_columns(self.contract, frame, self.primary_key)

    def apply(self, writer: _GenericWriter, *, first_seq: int, run_id: str, now: datetime) -> _Upserted:
        """Write the rows that changed, with sequence numbers from ``first_seq`` in frame order, and log them."""
        contract, meta = self.contract, self.contract.meta
        stored = _stored_versions(writer.conn, writer.table, self.primary_key, meta.version_field, self.key_tuples)
        spec = contract.field_spec(meta.version_field)
        written: list[Record] = []
        updates: list[Record] = []
        changes: list[dict[str, object]] = []
        stale = 0
        for record, key in zip(self.records, self.key_tuples, strict=True):
            found = stored.get(key)
            if found is not None and _order_value(spec, record[spec.name]) < _order_value(spec, found[1]):
                stale += 1
                continue
            content = record_hash(contract, record)
            if found is not None and found[0] == content:
                continue
            seq = first_seq + len(changes)
            row = record | {HASH_COLUMN: content, SEQ_COLUMN: seq, RUN_COLUMN: run_id}
            (written if found is None else updates).append(row)
            changes.append(
                {
                    "dataset": meta.key,
                    "seq": seq,
                    "key": record_key_json(contract, record),
                    "op": "insert" if found is None else "update",
                    "contract_version": meta.version,
                    "run_id": run_id,
                    "changed_at": now.astimezone(UTC),
                }
            )
        writes: list[_Write] = [
            (writer.table, written, None),
            (writer.table, updates, tuple(self.primary_key)),
            (change_log, changes, None),
        ]
        _write_rows(writer.conn, writes)
        unchanged = len(self.records) - len(changes) - stale
        return _Upserted(len(written), len(updates), unchanged, stale)


def _stored_versions(
    conn: Connection, table: Table, primary_key: list[str], version: str, keys: list[tuple[object, ...]]
) -> dict[tuple[object, ...], tuple[int, object]]:
    """The stored hash and ``version`` of each of ``keys`` that is stored, in one statement."""
    if not keys:
        return {}
    width = len(primary_key)
    if conn.dialect.name == "postgresql":
        arrays = {f"key_{name}": [key[i] for key in keys] for i, name in enumerate(primary_key)}
        sql = _stored_versions_sql(conn.dialect, table, tuple(primary_key), version)
        found = conn.exec_driver_sql(sql, arrays)
    else:
        query = select(*(table.c[name] for name in primary_key), table.c[HASH_COLUMN], table.c[version])
        found = conn.execute(query.where(tuple_(*(table.c[name] for name in primary_key)).in_(keys)))
    # Keys come back as the driver reads them (times in the session's zone): an aware datetime hashes and compares
    # by its instant, so they find the incoming keys all the same.
    return {tuple(row[:width]): (row[width], row[width + 1]) for row in found}


@lru_cache(maxsize=256)
def _stored_versions_sql(dialect: Dialect, table: Table, primary_key: tuple[str, ...], version: str) -> str:
    """A join with the keys as arrays (``unnest``): PostgreSQL plans ``(a, b) IN (…)`` of a thousand pairs as a
    filter over the whole table, and looks an ``unnest`` up by the primary key's index."""
    wanted = (
        func.unnest(*(bindparam(f"key_{name}", type_=ARRAY(table.c[name].type)) for name in primary_key))
        .table_valued(*primary_key)
        .render_derived(name="wanted")
    )
    query = select(*(table.c[name] for name in primary_key), table.c[HASH_COLUMN], table.c[version]).select_from(
        wanted.join(table, and_(*(wanted.c[n] == table.c[n] for n in primary_key)))
    )
    return _binary_arrays(dialect, query, [f"key_{name}" for name in primary_key])


_Write = tuple[Table, list[dict[str, object]], tuple[str, ...] | None]
"""A table, records for it, and the key to update the stored rows by (None: the records are inserted)."""


def _write_rows(conn: Connection, writes: Sequence[_Write]) -> None:
    """Insert or update each write's records. On PostgreSQL all of them in one statement (the first as
    data-modifying ``WITH`` parts), the values travelling as one array per column (``unnest``): an ``executemany``
    runs one statement per row, and on a busy machine each statement waits for the server's turn, which a
    micro-batch of three datasets otherwise paid three times a dataset. Elsewhere by ``executemany``, in turn."""
    writes = [write for write in writes if write[1]]
    if not writes:
        return
    if conn.dialect.name != "postgresql":
        for target, records, key in writes:
            if key is None:
                conn.execute(target.insert(), records)
            else:
                _update_each(conn, target, list(key), records)
        return
    shapes = tuple((target, tuple(records[0]), key) for target, records, key in writes)
    arrays = {
        f"w{part}_{position}": [record[name] for record in records]
        for part, (_, records, _) in enumerate(writes)
        for position, name in enumerate(records[0])
    }
    conn.exec_driver_sql(_write_rows_sql(conn.dialect, shapes), arrays)


@lru_cache(maxsize=256)
def _write_rows_sql(dialect: Dialect, shapes: tuple[tuple[Table, tuple[str, ...], tuple[str, ...] | None], ...]) -> str:
    """The statement of ``_write_rows``, compiled once per combination of tables, columns and keys. The parts touch
    distinct rows (new keys, stored keys, the change log), so running them on one snapshot changes nothing."""
    parts = [_write_sql(dialect, f"w{part}", *shape) for part, shape in enumerate(shapes)]
    if len(parts) == 1:
        return parts[0]
    return "WITH " + ", ".join(f"w{part} AS ({sql})" for part, sql in enumerate(parts[:-1])) + " " + parts[-1]


def _write_sql(
    dialect: Dialect, prefix: str, target: Table, names: tuple[str, ...], key: tuple[str, ...] | None
) -> str:
    arrays = [
        bindparam(f"{prefix}_{position}", type_=ARRAY(target.c[name].type)) for position, name in enumerate(names)
    ]
    incoming = func.unnest(*arrays).table_valued(*names).render_derived(name="incoming")
    statement: ClauseElement
    if key is None:
        statement = target.insert().from_select(names, select(*(incoming.c[name] for name in names)))
    else:
        statement = (
            target.update()
            .where(and_(*(target.c[name] == incoming.c[name] for name in key)))
            .values({name: incoming.c[name] for name in names if name not in key})
        )
    return _binary_arrays(dialect, statement, [array.key for array in arrays])


def _binary_arrays(dialect: Dialect, statement: ClauseElement, arrays: Sequence[str]) -> str:
    """``statement`` compiled for psycopg with each of ``arrays`` (every parameter a list) sent in binary
    (``%(name)b``). SQLAlchemy's placeholders let psycopg pick the text format, whose array dumper runs a regular
    expression over every element in Python: most of a micro-batch's publish CPU. The values skip SQLAlchemy's bind
    processing, so they must be what it would send: canonical values are (aware UTC times, floats, ints, str)."""
    sql = str(statement.compile(dialect=dialect))
    for name in arrays:
        placeholder = f"%({name})s"
        if placeholder not in sql:
            raise ValueError(f"{name} is not a parameter of {sql}")
        sql = sql.replace(placeholder, f"%({name})b")
    return sql


def _update_each(conn: Connection, table: Table, primary_key: list[str], records: list[dict[str, object]]) -> None:
    """Update the stored row of each record's key to the record's other values (``executemany``)."""
    if not records:
        return
    names = [name for name in records[0] if name not in primary_key]
    statement = (
        table.update()
        .where(and_(*(table.c[name] == bindparam(f"k_{name}") for name in primary_key)))
        .values({name: bindparam(f"v_{name}") for name in names})
    )
    params = [
        {(f"k_{name}" if name in primary_key else f"v_{name}"): value for name, value in record.items()}
        for record in records
    ]
    conn.execute(statement, params)


class _Deletions:
    """Rows to delete, found and removed in SQL with their keys in temporary tables (the same SQL on both
    databases; the keys and the log entries travel as the publish's ``writer`` loads rows, by COPY on PostgreSQL,
    since a full refresh compares every key and a purge may tombstone a great many)."""

    def __init__(self, conn: Connection, contract: type[Contract], table: Table, writer: _GenericWriter) -> None:
        self.conn = conn
        self.contract = contract
        self.table = table
        self.primary_key = list(contract.meta.primary_key)
        self.writer = writer

    def find(self, present: pd.DataFrame | None, tombstones: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
        """Stored keys to delete: those ``present`` (a full refresh's rows) lacks, and those a tombstone at least as
        new as the stored row names; and how many tombstones were stale."""
        import pandas as pd

        found: list[pd.DataFrame] = []
        stale = 0
        stored = [self.table.c[name] for name in self.primary_key]
        if present is not None:
            keys = self._keys("_wh_present_keys", present, [])
            missing = select(*stored).where(~select(literal(1)).where(self._same_key(keys)).exists())
            found.append(pd.DataFrame(self.conn.execute(missing).all(), columns=self.primary_key))
            keys.drop(self.conn)
        if tombstones is not None and len(tombstones):
            version = self.contract.meta.version_field
            marks = canonical_columns(self.contract, tombstones, [*self.primary_key, version])
            marks = marks.sort_values(version).drop_duplicates(self.primary_key, keep="last")
            keys = self._keys("_wh_tombstones", marks, [version])
            is_stale = self.table.c[version] > keys.c[version]
            query = select(*stored, is_stale).select_from(keys.join(self.table, self._same_key(keys)))
            rows = self.conn.execute(query).all()
            keys.drop(self.conn)
            stale = sum(1 for row in rows if row[-1])
            found.append(pd.DataFrame([row[:-1] for row in rows if not row[-1]], columns=self.primary_key))
        if not found:
            return pd.DataFrame(columns=self.primary_key), stale
        doomed = pd.concat(found, ignore_index=True).drop_duplicates()
        return canonical_columns(self.contract, doomed, self.primary_key), stale

    def apply(self, doomed: pd.DataFrame, *, first_seq: int, run_id: str, now: datetime) -> int:
        """Delete the rows, log one ``delete`` per row from ``first_seq`` on; returns how many."""
        if doomed.empty:
            return 0
        keys = self._keys("_wh_doomed_keys", doomed, [])
        self.conn.execute(self.table.delete().where(select(literal(1)).where(self._same_key(keys)).exists()))
        keys.drop(self.conn)
        changes: _Columns = {
            "dataset": self.contract.meta.key,
            "seq": np.arange(first_seq, first_seq + len(doomed), dtype=np.int64),
            "key": key_json(self.contract, doomed),
            "op": "delete",
            "contract_version": self.contract.meta.version,
            "run_id": run_id,
            "changed_at": now.astimezone(UTC),
        }
        self.writer.append_changes(changes, len(doomed))
        return len(doomed)

    def _keys(self, name: str, frame: pd.DataFrame, extra: list[str]) -> Table:
        keys = _temporary(name, *(Column(c, self.table.c[c].type, nullable=False) for c in [*self.primary_key, *extra]))
        keys.drop(self.conn, checkfirst=True)
        keys.create(self.conn)
        columns: _Columns = {c: frame[c].reset_index(drop=True) for c in [*self.primary_key, *extra]}
        self.writer.load(keys, columns, len(frame))
        return keys

    def _same_key(self, keys: Table) -> ColumnElement[bool]:
        return and_(*(keys.c[name] == self.table.c[name] for name in self.primary_key))


def _analyze(conn: Connection, *tables: Table) -> None:
    """Refresh the planner's statistics of ``tables`` (PostgreSQL allows ``ANALYZE`` inside a transaction)."""
    preparer = conn.dialect.identifier_preparer
    for table in tables:
        conn.exec_driver_sql(f"ANALYZE {preparer.format_table(table)}")


def _refuse_duplicate_keys(contract: type[Contract], canonical: pd.DataFrame) -> None:
    primary_key = list(contract.meta.primary_key)
    duplicated = canonical.duplicated(subset=primary_key, keep=False)
    if duplicated.any():
        examples = ", ".join(key_json(contract, canonical[duplicated].head(3)).tolist())
        raise InvalidFrameError(
            f"{contract.meta.key}: {int(duplicated.sum())} rows share a primary key (e.g. {examples}); "
            "quality quarantines duplicates, so the frame did not come from the quality runner. Nothing was written."
        )


def _lock_dataset(conn: Connection, contract: type[Contract]) -> tuple[int, str]:
    """Create the dataset's row if needed, then lock it: the lock serialises publishes of one dataset. Returns its
    last sequence number and its epoch.

    The insert comes first on purpose: on SQLite it is the write that takes the database's write lock, so a second
    publisher waits here instead of failing later when it tries to upgrade a read.
    """
    meta = contract.meta
    key = {"key": meta.key}
    if conn.dialect.name == "postgresql":
        # A row lock needs no insert first: once the row exists (every publish after a dataset's first), one
        # statement locks it, where a device micro-batch of three datasets otherwise paid six round trips.
        found = conn.execute(_LOCKING, key).first()
        if found is not None:
            return int(found[0]), str(found[1])
    conn.execute(
        upsert_insert(conn, datasets)
        .values(
            key=meta.key,
            contract_version=meta.version,
            table_name=dataset_table_name(meta.key, meta.major),
            last_seq=0,
            row_count=0,
            epoch=uuid.uuid4().hex,
        )
        .on_conflict_do_nothing(index_elements=[datasets.c.key])
    )
    last_seq, epoch = conn.execute(_LOCKING, key).one()
    return int(last_seq), str(epoch)


_LOCKING = select(datasets.c.last_seq, datasets.c.epoch).where(datasets.c.key == bindparam("key")).with_for_update()
"""Built once: building a statement costs more than its cached compilation."""


def _writer(conn: Connection, table: Table) -> _GenericWriter:
    """The bulk writer of ``conn``'s database."""
    writers = {"postgresql": _PostgresWriter, "sqlite": _SqliteWriter}
    return writers.get(conn.dialect.name, _GenericWriter)(conn, table)


def _select(columns: _Columns, mask: npt.NDArray[np.bool_]) -> tuple[_Columns, int]:
    """The columns of the rows where ``mask`` holds, and how many rows that is; constants stay constants."""
    import pandas as pd

    count = int(mask.sum())
    if count == len(mask):
        return columns, count
    chosen: _Columns = {}
    for name, value in columns.items():
        if isinstance(value, pd.Series):
            chosen[name] = value[mask].reset_index(drop=True)
        elif isinstance(value, np.ndarray):
            chosen[name] = value[mask]
        else:
            chosen[name] = value
    return chosen, count


class _GenericWriter:
    """Rows go in with ``executemany``: fine for the embedded SQLite hub, and the reference for the fast path.
    The frame's keys go to a temporary table joined with the stored table (the bulk strategy of large frames)."""

    def __init__(self, conn: Connection, table: Table) -> None:
        self.conn = conn
        self.table = table
        self._was_empty: bool | None = None

    def load(self, target: Table, columns: _Columns, rows: int) -> None:
        """Insert in slices of ``_SLICE_ROWS``: a row as a dict of Python values costs far more than its columns,
        so a million of them at once would hold gigabytes."""
        for start in range(0, rows, _SLICE_ROWS):
            stop = min(rows, start + _SLICE_ROWS)
            self.conn.execute(target.insert(), _records(_sliced(columns, start, stop), stop - start))

    def compare(
        self, contract: type[Contract], canonical: pd.DataFrame, hash_rows: Callable[[], _Hashes]
    ) -> _Comparison:
        """Which rows to write and which are stale, comparing versions and content hashes in SQL.

        Hashing is handed in as a function so the fast path can run it while the database looks up stored rows.
        An empty table needs no comparison: every row is new. That is the first publish, the costliest one.
        """
        if self._is_empty(canonical):
            return _all_new(canonical, hash_rows())
        hashes = hash_rows()
        primary_key, version = list(contract.meta.primary_key), contract.meta.version_field
        extra = [
            (Column(HASH_COLUMN, BigInteger, nullable=False), hashes),
            (Column(_VERSION, self.table.c[version].type, nullable=False), canonical[version]),
        ]
        keys = self._keys_table(primary_key, canonical, extra)
        stored_hash = self.table.c[HASH_COLUMN]
        is_stale = self.table.c[version] > keys.c[_VERSION]  # NULL for a new key, which is never stale
        query = (
            select(keys.c.row_idx, stored_hash, is_stale)
            .select_from(keys.outerjoin(self.table, self._same_key(keys, primary_key)))
            .where(or_(stored_hash.is_(None), stored_hash != keys.c[HASH_COLUMN], is_stale))
            .order_by(keys.c.row_idx)
        )
        found = self.conn.execute(query).all()
        keys.drop(self.conn)
        written = [row for row in found if not row[2]]
        changed = np.fromiter((row[0] for row in written), dtype=np.int64, count=len(written))
        existed = np.fromiter((row[1] is not None for row in written), dtype=bool, count=len(written))
        return _Comparison(changed, existed, hashes, stale=len(found) - len(written))

    def _is_empty(self, canonical: pd.DataFrame) -> bool:
        """Whether the frame or the table, as this publish found it, is empty: every part of a first publish is new
        (its parts share no key), though the parts before it are written by now."""
        if self._was_empty is None:
            self._was_empty = self.conn.execute(select(literal(1)).select_from(self.table).limit(1)).first() is None
        return len(canonical) == 0 or self._was_empty

    def _keys_table(
        self, primary_key: list[str], canonical: pd.DataFrame, extra: Sequence[tuple[Column[Any], object]]
    ) -> Table:
        """A temporary table of the frame's row positions and keys, plus ``extra`` columns with their values."""
        keys = _temporary(
            "_wh_publish_keys",
            Column("row_idx", BigInteger, nullable=False),
            *(Column(name, self.table.c[name].type, nullable=False) for name in primary_key),
            *(column for column, _ in extra),
        )
        keys.drop(self.conn, checkfirst=True)
        keys.create(self.conn)
        loaded: _Columns = {"row_idx": np.arange(len(canonical), dtype=np.int64)}
        loaded |= {name: canonical[name] for name in primary_key}
        loaded |= {column.name: values for column, values in extra}
        self.load(keys, loaded, len(canonical))
        return keys

    def _same_key(self, keys: FromClause, primary_key: list[str]) -> ColumnElement[bool]:
        return and_(*(keys.c[name] == self.table.c[name] for name in primary_key))

    def insert_rows(self, columns: _Columns, rows: int) -> None:
        self.load(self.table, columns, rows)

    def update_rows(self, primary_key: list[str], columns: _Columns, rows: int) -> None:
        _update_each(self.conn, self.table, primary_key, _records(columns, rows))

    def append_changes(self, columns: _Columns, rows: int) -> None:
        self.load(change_log, columns, rows)


class _PostgresWriter(_GenericWriter):
    """Rows go in by binary ``COPY``; updates land in a temporary table and are applied by one ``UPDATE … FROM``."""

    def load(self, target: Table, columns: _Columns, rows: int) -> None:
        if not rows:
            return
        preparer = self.conn.dialect.identifier_preparer
        kinds = [(name, copy_kind(target.c[name].type)) for name in columns]
        # The psycopg connection under SQLAlchemy's, so COPY runs inside the caller's transaction.
        driver: Any = self.conn.connection.driver_connection
        with driver.cursor() as cursor:
            copy_rows(cursor, preparer.format_table(target), kinds, columns, rows, quote=preparer.quote)

    def compare(
        self, contract: type[Contract], canonical: pd.DataFrame, hash_rows: Callable[[], _Hashes]
    ) -> _Comparison:
        """Same answer as the generic path, but the server only finds stored hashes and versions by key and streams
        them back while this process computes the new hashes (two CPUs at work); numpy then compares.

        Versions come back in their binary wire form, exactly as stored (a float's bits, a time's microseconds),
        so the comparison is exact without any conversion on the server.
        """
        if self._is_empty(canonical):
            return _all_new(canonical, hash_rows())
        primary_key, version = list(contract.meta.primary_key), contract.meta.version_field
        keys = self._keys_table(primary_key, canonical, [])
        query = (
            select(keys.c.row_idx, self.table.c[HASH_COLUMN], self.table.c[version])
            .select_from(keys.join(self.table, self._same_key(keys, primary_key)))
            .compile(dialect=self.conn.dialect, compile_kwargs={"literal_binds": True})
        )
        kinds = ["int8", "int8", copy_kind(self.table.c[version].type)]
        driver: Any = self.conn.connection.driver_connection
        with driver.cursor() as cursor, ThreadPoolExecutor(max_workers=1) as pool:
            lookup = pool.submit(fetch_fixed_columns, cursor, str(query), kinds)
            hashes = hash_rows()
            positions, stored_hashes, stored_versions = lookup.result()
        keys.drop(self.conn)
        incoming = _order_values(contract.field_spec(version), canonical[version])
        present = np.zeros(len(canonical), dtype=bool)
        present[positions] = True
        stale = np.zeros(len(canonical), dtype=bool)
        stale[positions] = incoming[positions] < stored_versions
        previous = np.zeros(len(canonical), dtype=np.int64)
        previous[positions] = stored_hashes
        changed = np.flatnonzero(~stale & (~present | (previous != hashes))).astype(np.int64)
        return _Comparison(changed, present[changed], hashes, stale=int(stale.sum()))

    def update_rows(self, primary_key: list[str], columns: _Columns, rows: int) -> None:
        if not rows:
            return
        table = self.table
        staged = _temporary("_wh_publish_rows", *(Column(name, table.c[name].type) for name in columns))
        staged.drop(self.conn, checkfirst=True)
        staged.create(self.conn)
        self.load(staged, columns, rows)
        self.conn.execute(
            table.update()
            .where(and_(*(table.c[name] == staged.c[name] for name in primary_key)))
            .values({name: staged.c[name] for name in columns if name not in primary_key})
        )
        staged.drop(self.conn)


class _SqliteWriter(_GenericWriter):
    """The bulk path binds whole columns: each column is converted to what SQLite stores in one pass (times to
    SQLAlchemy's text form by numpy, other types by their own bind processor) and the rows go to the driver's
    ``executemany`` as plain tuples. SQLAlchemy's ``executemany`` of dicts processes every value of every row one
    call at a time, which was most of a large SQLite publish. Updates keep the generic path (a first publish, the
    large one, updates nothing); small frames take the row path and never reach a bulk writer."""

    def load(self, target: Table, columns: _Columns, rows: int) -> None:
        compiled = (
            target.insert().values({name: bindparam(name) for name in columns}).compile(dialect=self.conn.dialect)
        )
        names = list(compiled.positiontup or ())
        for start in range(0, rows, _SLICE_ROWS):
            stop = min(rows, start + _SLICE_ROWS)
            sliced = _sliced(columns, start, stop)
            stored = [_stored_values(self.conn.dialect, target.c[name], sliced[name], stop - start) for name in names]
            self.conn.exec_driver_sql(compiled.string, list(zip(*stored, strict=True)))


def _stored_values(dialect: Dialect, column: Column[Any], value: object, rows: int) -> Sequence[object]:
    """One column's values as the driver takes them, exactly as SQLAlchemy would bind them into ``column``."""
    import pandas as pd

    if isinstance(value, pd.Series) and isinstance(value.dtype, pd.DatetimeTZDtype):
        if not isinstance(column.type, UtcDateTime):
            raise TypeError(f"{column.name} is {column.type}, not a UTC time column: cannot bind times into it")
        naive = value.dt.tz_convert(UTC).dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        # SQLAlchemy's SQLite DATETIME text: "2026-12-03 07:30:25.000000", always with microseconds
        text = np.strings.replace(np.datetime_as_string(naive, unit="us"), "T", " ", count=1).astype(object)
        text[np.isnat(naive)] = None
        stored: list[object] = text.tolist()
        return stored
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    if not isinstance(value, pd.Series | np.ndarray):  # a constant: processed once
        return [processor(value) if processor else value] * rows
    values = _python_values(value, rows)
    return [processor(item) for item in values] if processor else values


def _all_new(canonical: pd.DataFrame, hashes: _Hashes) -> _Comparison:
    rows = len(canonical)
    return _Comparison(np.arange(rows, dtype=np.int64), np.zeros(rows, dtype=bool), hashes, stale=0)


def _order_values(spec: FieldSpec, series: pd.Series) -> npt.NDArray[Any]:
    """A canonical column of version values as numbers that order like them, in the form the database streams
    back: microseconds since the Unix epoch for times, else the numbers themselves."""
    values: npt.NDArray[Any]
    if spec.type == "datetime":
        values = series.array.asi8  # canonical times are datetime64[us, UTC]
    elif spec.type == "number":
        values = series.to_numpy(dtype=np.float64)
    elif spec.type == "integer":
        values = series.to_numpy(dtype=np.int64)
    else:
        raise TypeError(f"version field {spec.name} is a {spec.type}; versions are ordered by a time or a number")
    return values


def _order_value(spec: FieldSpec, value: object) -> int | float:
    """One stored version as ``_order_values`` gives an incoming one: exact microseconds for a time."""
    if isinstance(value, datetime):
        return (value - _UNIX_EPOCH) // timedelta(microseconds=1)
    if isinstance(value, int | float) and spec.type in ("number", "integer"):
        return float(value) if spec.type == "number" else int(value)
    raise TypeError(f"version field {spec.name} holds {value!r}; versions are ordered by a time or a number")


def _temporary(name: str, *columns: Column[Any]) -> Table:
    """A scratch table private to this connection; PostgreSQL also drops it at commit should a publish not."""
    return Table(name, MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


def _sliced(columns: _Columns, start: int, stop: int) -> _Columns:
    """Rows ``start:stop`` of every column; constants stay constants."""
    import pandas as pd

    if start == 0 and all(not isinstance(v, pd.Series | np.ndarray) or len(v) == stop for v in columns.values()):
        return columns
    return {
        name: value.iloc[start:stop]
        if isinstance(value, pd.Series)
        else value[start:stop]
        if isinstance(value, np.ndarray)
        else value
        for name, value in columns.items()
    }


def _records(columns: _Columns, rows: int) -> list[dict[str, object]]:
    """Plain Python values per row: aware datetimes, floats, ints, str, and None for every kind of missing."""
    values = {name: _python_values(value, rows) for name, value in columns.items()}
    names = list(values)
    return [dict(zip(names, row, strict=True)) for row in zip(*values.values(), strict=True)]


def _python_values(value: object, rows: int) -> list[object]:
    import pandas as pd

    if isinstance(value, np.ndarray):
        listed: list[object] = value.tolist()
        return listed
    if not isinstance(value, pd.Series):
        return [value] * rows
    missing = value.isna().to_numpy(dtype=bool)
    if isinstance(value.dtype, pd.DatetimeTZDtype):
        return [None if gap else stamp.to_pydatetime() for stamp, gap in zip(value, missing, strict=True)]
    return [None if gap else item for item, gap in zip(value.tolist(), missing, strict=True)]
