"""Which Parquet files a recipient is sent for a query or for table changes, and the files made for them.

An unfiltered grant is sent the Delta table's own data files at the version asked. A grant with a row filter must
never be sent a file holding rows outside it, so it is sent a file made for it: the table at that version read
with the filter, written once per (version, filter hash) under ``sharing/served`` and reused, since a version
never changes. Table changes are sent as one change-data file per version, made from the table's change data feed
(``_change_type`` per row) and filtered the same way; each change row is checked on its own values, so a row that
left the grant's filter in an update shows as its preimage only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from exchange.access.filters import Condition, arrow_expression, conditions_to_json
from exchange.objects import ObjectStore
from exchange.sharing.layout import TABLES_PREFIX, served_key, store_root

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

__all__ = ["ServedFile", "change_files", "filter_hash", "query_files", "stats_json"]

_CDF_COMMIT_COLUMNS = ("_commit_version", "_commit_timestamp")


@dataclass(frozen=True)
class ServedFile:
    """A file to list in an answer: its object key, size and row count; ``version`` for change files."""

    object_key: str
    size: int
    rows: int
    version: int | None = None

    @property
    def file_id(self) -> str:
        return hashlib.sha256(self.object_key.encode()).hexdigest()[:32]


def filter_hash(conditions: Sequence[Condition]) -> str:
    """``all`` for no filter, else a digest of the filter's canonical JSON."""
    text = conditions_to_json(conditions)
    return "all" if text is None else hashlib.sha256(text.encode()).hexdigest()[:24]


def query_files(
    store: ObjectStore, dataset: str, table: DeltaTable, conditions: Sequence[Condition]
) -> list[ServedFile]:
    """The files holding the table's rows at its loaded version that the grant may see."""
    import pyarrow as pa

    if not conditions:
        actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
        return [
            ServedFile(f"{TABLES_PREFIX}/{dataset}/{action['path']}", action["size_bytes"], action["num_records"] or 0)
            for action in actions
        ]
    key = served_key(dataset, "query", table.version(), filter_hash(conditions))
    return [_made(store, key, lambda: _filtered(table.to_pyarrow_dataset().to_table(), conditions))]


def change_files(
    store: ObjectStore, dataset: str, table: DeltaTable, versions: range, conditions: Sequence[Condition]
) -> list[ServedFile]:
    """One change-data file per version with changes the grant may see, oldest first."""
    found = []
    for version in versions:
        key = served_key(dataset, "changes", version, filter_hash(conditions))
        made = _made(store, key, partial(_changes, table, version, conditions))
        if made.rows:
            found.append(ServedFile(made.object_key, made.size, made.rows, version))
    return found


def _changes(table: DeltaTable, version: int, conditions: Sequence[Condition]) -> pa.Table:
    import pyarrow as pa

    changes = pa.table(table.load_cdf(starting_version=version, ending_version=version))
    changes = changes.drop_columns(list(_CDF_COMMIT_COLUMNS))
    # The feed reads strings as string_view, which the filter's kernels and older readers do not take.
    plain = pa.schema(
        [field.with_type(pa.string()) if pa.types.is_string_view(field.type) else field for field in changes.schema]
    )
    return _filtered(changes.cast(plain), conditions)


def _filtered(rows: pa.Table, conditions: Sequence[Condition]) -> pa.Table:
    expression = arrow_expression(conditions)
    return rows if expression is None else rows.filter(expression)


def _made(store: ObjectStore, key: str, make: Callable[[], pa.Table]) -> ServedFile:
    """The served file at ``key``, written from ``make()`` first if it is not there yet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = store_root(store) / key
    if not path.exists():
        sink = pa.BufferOutputStream()
        pq.write_table(make(), sink, compression="zstd")
        store.put(key, sink.getvalue().to_pybytes())
    return ServedFile(key, path.stat().st_size, pq.read_metadata(path).num_rows)


def stats_json(file: ServedFile) -> str:
    return json.dumps({"numRecords": file.rows})
