"""Publish a valid frame into its dataset table: upsert by primary key, log each real change, queue one event.

Everything happens inside the caller's transaction (STYLE rule 9): the caller also advances its watermarks there,
so rows, change log, outbox row and watermark commit or vanish together. The dataset's row in ``datasets`` is
locked first; it holds the last sequence number, so concurrent publishes of one dataset queue up behind it and
sequence numbers stay gapless and monotonic. A row whose content hash did not change is not touched, which makes a
republish of the same batch write nothing and send nothing.

On PostgreSQL rows travel by binary ``COPY`` (exchange.pg_copy): the frame's keys go to a temporary table, the
server streams back the stored hash of every key it knows while this process hashes the frame, and updates are
applied with one ``UPDATE … FROM``. Other databases (the embedded SQLite) take the same steps with ``executemany``
and compare in SQL. The tests run every scenario on both, so the two agree on what changed.

Sequence numbers follow frame order. When nothing changed, nothing is written at all (no change log, no outbox,
and the ``datasets`` row keeps its last publish time and run): only a first, empty publish creates that row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    MetaData,
    Table,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
)

from contracts import Contract
from exchange.db import upsert_insert
from exchange.errors import InvalidFrameError
from exchange.hashing import canonical_frame, key_json, row_hashes
from exchange.pg_copy import copy_kind, copy_rows, fetch_int8_columns
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

__all__ = ["PublishResult", "event_id_for", "publish_frame"]

_EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:waterhub:outbox")
_Hashes = npt.NDArray[np.int64]
_Columns = dict[str, object]
"""Column name → a Series or array with one value per row, or one constant for every row."""


@dataclass(frozen=True)
class PublishResult:
    """What one publish did to one dataset; ``first_seq``/``last_seq``/``event_id`` are None when nothing changed."""

    dataset: str
    contract_version: str
    run_id: str
    inserted: int
    updated: int
    unchanged: int
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
            "deleted": self.deleted,
        }


def event_id_for(dataset: str, epoch: str, first_seq: int, last_seq: int) -> str:
    """The outbox event id: derived from the sequence range, so a retried dispatch sends the same id again, and
    from the dataset's epoch, so a rebuilt hub's first changes do not repeat the ids of the old hub's."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{dataset}:{epoch}:{first_seq}-{last_seq}"))


def publish_frame(
    conn: Connection, contract: type[Contract], frame: pd.DataFrame, *, run_id: str, now: datetime
) -> PublishResult:
    """Upsert ``frame`` (the quality runner's valid rows) into the contract's table within ``conn``'s transaction."""
    if now.tzinfo is None:
        raise ValueError(f"now={now!r} is naive; pass an aware UTC datetime")
    meta = contract.meta
    table = dataset_table(contract)
    canonical = canonical_frame(contract, frame)
    _refuse_duplicate_keys(contract, canonical)
    writer = _PostgresWriter(conn, table) if conn.dialect.name == "postgresql" else _GenericWriter(conn, table)

    last_seq, epoch = _lock_dataset(conn, contract)
    changed, existed, hashes = writer.changed_rows(
        list(meta.primary_key), canonical, lambda: row_hashes(contract, canonical)
    )
    if changed.size == 0:
        return PublishResult(meta.key, meta.version, run_id, 0, 0, len(canonical), 0, None, None, None)

    first_seq = last_seq + 1
    seqs = np.arange(first_seq, first_seq + changed.size, dtype=np.int64)
    everything = changed.size == len(canonical)  # the first publish: skip copying a million rows to select them all
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

    inserted, updated = int(is_new.sum()), int(existed.sum())
    new_last_seq = int(seqs[-1])
    event_id = event_id_for(meta.key, epoch, first_seq, new_last_seq)
    conn.execute(
        outbox.insert().values(
            event_id=event_id,
            dataset=meta.key,
            contract_version=meta.version,
            run_id=run_id,
            first_seq=first_seq,
            last_seq=new_last_seq,
            inserted=inserted,
            updated=updated,
            deleted=0,
            created_at=now,
            dispatched_at=None,
            attempts=0,
        )
    )
    conn.execute(
        datasets.update()
        .where(datasets.c.key == meta.key)
        .values(
            contract_version=meta.version,
            table_name=table.name,
            last_seq=new_last_seq,
            row_count=select(func.count()).select_from(table).scalar_subquery(),
            last_published_at=now,
            last_run_id=run_id,
        )
    )
    unchanged = len(canonical) - inserted - updated
    return PublishResult(
        meta.key, meta.version, run_id, inserted, updated, unchanged, 0, first_seq, new_last_seq, event_id
    )


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
    last_seq, epoch = conn.execute(
        select(datasets.c.last_seq, datasets.c.epoch).where(datasets.c.key == meta.key).with_for_update()
    ).one()
    return int(last_seq), str(epoch)


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
    """Rows go in with ``executemany``: fine for the embedded SQLite hub, and the reference for the fast path."""

    def __init__(self, conn: Connection, table: Table) -> None:
        self.conn = conn
        self.table = table

    def load(self, target: Table, columns: _Columns, rows: int) -> None:
        if rows:
            self.conn.execute(target.insert(), _records(columns, rows))

    def changed_rows(
        self, primary_key: list[str], canonical: pd.DataFrame, hash_rows: Callable[[], _Hashes]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], _Hashes]:
        """Positions of rows that are new or whose hash differs (ascending), whether each existed, and all hashes.

        Hashing is handed in as a function so the fast path can run it while the database looks up stored hashes.
        An empty table needs no comparison: every row is new. That is the first publish, the costliest one.
        """
        if self._is_empty(canonical):
            return np.arange(len(canonical), dtype=np.int64), np.zeros(len(canonical), dtype=bool), hash_rows()
        hashes = hash_rows()
        keys = self._keys_table(primary_key, canonical, hashes)
        stored_hash = self.table.c[HASH_COLUMN]
        query = (
            select(keys.c.row_idx, stored_hash)
            .select_from(keys.outerjoin(self.table, self._same_key(keys, primary_key)))
            .where(or_(stored_hash.is_(None), stored_hash != keys.c[HASH_COLUMN]))
            .order_by(keys.c.row_idx)
        )
        found = self.conn.execute(query).all()
        keys.drop(self.conn)
        changed = np.fromiter((row[0] for row in found), dtype=np.int64, count=len(found))
        existed = np.fromiter((row[1] is not None for row in found), dtype=bool, count=len(found))
        return changed, existed, hashes

    def _is_empty(self, canonical: pd.DataFrame) -> bool:
        first = self.conn.execute(select(literal(1)).select_from(self.table).limit(1)).first()
        return len(canonical) == 0 or first is None

    def _keys_table(self, primary_key: list[str], canonical: pd.DataFrame, hashes: _Hashes | None) -> Table:
        """A temporary table of the frame's row positions and keys (and hashes, when known yet)."""
        keys = _temporary(
            "_wh_publish_keys",
            Column("row_idx", BigInteger, nullable=False),
            *(Column(name, self.table.c[name].type, nullable=False) for name in primary_key),
            *([Column(HASH_COLUMN, BigInteger, nullable=False)] if hashes is not None else []),
        )
        keys.drop(self.conn, checkfirst=True)
        keys.create(self.conn)
        loaded: _Columns = {"row_idx": np.arange(len(canonical), dtype=np.int64)}
        loaded |= {name: canonical[name] for name in primary_key}
        loaded |= {HASH_COLUMN: hashes} if hashes is not None else {}
        self.load(keys, loaded, len(canonical))
        return keys

    def _same_key(self, keys: Table, primary_key: list[str]) -> ColumnElement[bool]:
        return and_(*(keys.c[name] == self.table.c[name] for name in primary_key))

    def insert_rows(self, columns: _Columns, rows: int) -> None:
        self.load(self.table, columns, rows)

    def update_rows(self, primary_key: list[str], columns: _Columns, rows: int) -> None:
        if not rows:
            return
        table = self.table
        statement = (
            table.update()
            .where(and_(*(table.c[name] == bindparam(f"k_{name}") for name in primary_key)))
            .values({name: bindparam(f"v_{name}") for name in columns if name not in primary_key})
        )
        params = [
            {(f"k_{name}" if name in primary_key else f"v_{name}"): value for name, value in record.items()}
            for record in _records(columns, rows)
        ]
        self.conn.execute(statement, params)

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

    def changed_rows(
        self, primary_key: list[str], canonical: pd.DataFrame, hash_rows: Callable[[], _Hashes]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], _Hashes]:
        """Same answer as the generic path, but the server only finds stored hashes by key and streams them back
        while this process computes the new ones (two CPUs at work); numpy then compares the two.
        """
        if self._is_empty(canonical):
            return np.arange(len(canonical), dtype=np.int64), np.zeros(len(canonical), dtype=bool), hash_rows()
        keys = self._keys_table(primary_key, canonical, None)
        query = (
            select(keys.c.row_idx, self.table.c[HASH_COLUMN])
            .select_from(keys.join(self.table, self._same_key(keys, primary_key)))
            .compile(dialect=self.conn.dialect, compile_kwargs={"literal_binds": True})
        )
        driver: Any = self.conn.connection.driver_connection
        with driver.cursor() as cursor, ThreadPoolExecutor(max_workers=1) as pool:
            lookup = pool.submit(fetch_int8_columns, cursor, str(query), 2)
            hashes = hash_rows()
            stored = lookup.result()
        keys.drop(self.conn)
        present = np.zeros(len(canonical), dtype=bool)
        present[stored[:, 0]] = True
        previous = np.zeros(len(canonical), dtype=np.int64)
        previous[stored[:, 0]] = stored[:, 1]
        changed = np.flatnonzero(~present | (previous != hashes)).astype(np.int64)
        return changed, present[changed], hashes

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


def _temporary(name: str, *columns: Column[Any]) -> Table:
    """A scratch table private to this connection; PostgreSQL also drops it at commit should a publish not."""
    return Table(name, MetaData(), *columns, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


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
