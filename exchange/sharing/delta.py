"""Each shared dataset as a Delta table with change data feed, kept up from the hub's change log.

A sync reads, in one consistent read, the rows whose ``_seq`` is past the table's synced sequence and the keys the
change log deleted since, then applies them in **one** Delta commit, however many publishes they came from: a
first load appends, later syncs MERGE (matched and changed: update, unmatched: insert, deleted key: delete), so the
change data feed holds ``insert``, ``update_preimage``/``update_postimage`` and ``delete`` rows as Delta readers
expect. The rows come from the dataset's table, which holds each row as it is now, so a row changed three times
between two syncs is one update in the feed, as in the hub's compacted change feed.

The synced sequence is written into every commit's ``commitInfo`` (``waterhub.seq``), so the table itself says how
far it got, atomically with the rows: a sync that dies before its commit leaves nothing to undo, and the next one
reads the same changes again.

OPTIMIZE and VACUUM run from the sync when the last ones (a marker file: a no-op OPTIMIZE commits nothing) are
older than the interval; VACUUM keeps removed files
for ``vacuum_retention_hours``, which the settings hold above both the signed URLs' lifetime and the change window,
so no URL handed out and no version promised points at a deleted file (``exchange.sharing.layout``: where).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection, Engine, select

from contracts import Contract
from exchange.access.filters import field_specs_by_name, parse_value
from exchange.errors import SharedTableError, UnknownDatasetError
from exchange.objects import ObjectStore
from exchange.sharing.layout import maintenance_marker, prune_served_files, shared_table_path
from exchange.sharing.settings import SharingSettings
from exchange.snapshots import consistent_read, read_rows, snapshot_schema
from exchange.tables import SEQ_COLUMN, change_log, datasets

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

__all__ = ["SyncResult", "delta_schema", "open_shared_table", "sync_dataset", "synced_seq"]

log = structlog.get_logger(__name__)

_SEQ_PROPERTY = "waterhub.seq"
_OP_COLUMN = "_waterhub_op"


@dataclass(frozen=True)
class SyncResult:
    """What one sync did: the Delta version it left and the hub sequence that version holds."""

    dataset: str
    version: int
    seq: int
    upserted: int
    deleted: int
    maintained: bool


def open_shared_table(store: ObjectStore, dataset: str, version: int | None = None) -> DeltaTable | None:
    """The dataset's Delta table (at ``version``), or None when it was never synced."""
    from deltalake import DeltaTable

    path = shared_table_path(store, dataset)
    if not DeltaTable.is_deltatable(str(path)):
        return None
    return DeltaTable(str(path), version=version)


def delta_schema(contract: type[Contract]) -> pa.Schema:
    """The contract's fields as the snapshot types them, without ``_seq``: a recipient sees the contract."""
    schema = snapshot_schema(contract)
    return schema.remove(schema.get_field_index(SEQ_COLUMN))


def synced_seq(table: DeltaTable) -> int:
    """The hub sequence the table's latest commit holds (every commit this module makes records it)."""
    for commit in table.history():
        if _SEQ_PROPERTY in commit:
            return int(commit[_SEQ_PROPERTY])
    return 0


def sync_dataset(
    engine: Engine, store: ObjectStore, contract: type[Contract], settings: SharingSettings, *, now: datetime
) -> SyncResult:
    """Bring the dataset's Delta table up to the hub's last sequence in one commit; rerunning changes nothing."""
    import pyarrow as pa
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    key = contract.meta.key
    path = shared_table_path(store, key)
    schema = delta_schema(contract)
    if not DeltaTable.is_deltatable(str(path)):
        path.mkdir(parents=True, exist_ok=True)
        DeltaTable.create(
            str(path),
            schema=schema,
            name=key,
            description=contract.__doc__,
            configuration=_table_configuration(settings),
            commit_properties=CommitProperties(custom_metadata={_SEQ_PROPERTY: "0"}),
        )
    table = DeltaTable(str(path))
    since = synced_seq(table)
    with consistent_read(engine) as conn:
        last_seq = conn.execute(select(datasets.c.last_seq).where(datasets.c.key == key)).scalar()
        if last_seq is None:
            raise UnknownDatasetError(f"{key} was never published; publish it before sharing it")
        if int(last_seq) < since:
            raise SharedTableError(
                f"the Delta table of {key} holds changes up to seq {since}, past the hub's last seq {last_seq}: the "
                f"hub was rebuilt from scratch. Remove {path} and run `waterhub sharing sync` again"
            )
        rows = read_rows(conn, contract, after_seq=since) if last_seq > since else schema.empty_table()
        gone = _deleted_keys(conn, contract, since, int(last_seq)) if last_seq > since else []
    upserts = rows.select(schema.names).cast(schema)
    deletes = _delete_rows(contract, schema, gone, upserts)
    commit = CommitProperties(custom_metadata={_SEQ_PROPERTY: str(last_seq)})
    if upserts.num_rows or deletes.num_rows:
        if since == 0 and deletes.num_rows == 0:
            write_deltalake(table, upserts, mode="append", commit_properties=commit)
        else:
            # A delete carries only its key: the merge source's other columns may be null.
            loose = pa.schema([field.with_nullable(field.name not in contract.meta.primary_key) for field in schema])
            source = pa.concat_tables(
                [
                    part.cast(loose).append_column(_OP_COLUMN, pa.array([op] * part.num_rows, pa.string()))
                    for part, op in ((upserts, "upsert"), (deletes, "delete"))
                ]
            )
            on = " AND ".join(f"t.{name} = s.{name}" for name in contract.meta.primary_key)
            (
                table.merge(source, on, source_alias="s", target_alias="t", commit_properties=commit)
                .when_matched_delete(f"s.{_OP_COLUMN} = 'delete'")
                .when_matched_update_all(f"s.{_OP_COLUMN} = 'upsert'", except_cols=[_OP_COLUMN])
                .when_not_matched_insert_all(f"s.{_OP_COLUMN} = 'upsert'", except_cols=[_OP_COLUMN])
                .execute()
            )
        table = DeltaTable(str(path))
        log.info("shared_table_synced", dataset=key, version=table.version(), seq=int(last_seq))
    maintained = _maintain_if_due(table, settings, store, key, int(last_seq), now=now)
    return SyncResult(key, table.version(), int(last_seq), upserts.num_rows, deletes.num_rows, maintained)


def _table_configuration(settings: SharingSettings) -> dict[str, str | None]:
    """Change data feed on; the log and removed files kept as long as VACUUM keeps files."""
    retention = f"interval {math.ceil(settings.vacuum_retention_hours)} hours"
    return {
        "delta.enableChangeDataFeed": "true",
        "delta.logRetentionDuration": retention,
        "delta.deletedFileRetentionDuration": retention,
    }


def _deleted_keys(conn: Connection, contract: type[Contract], since: int, until: int) -> list[list[object]]:
    """Keys the change log deleted in ``(since, until]``, typed as the contract types them."""
    by_name = field_specs_by_name(contract)
    specs = [by_name[name] for name in contract.meta.primary_key]
    query = select(change_log.c.key).where(
        change_log.c.dataset == contract.meta.key,
        change_log.c.op == "delete",
        change_log.c.seq > since,
        change_log.c.seq <= until,
    )
    return [
        [parse_value(spec, str(value)) for spec, value in zip(specs, json.loads(text), strict=True)]
        for text in conn.execute(query).scalars()
    ]


def _delete_rows(contract: type[Contract], schema: pa.Schema, keys: list[list[object]], upserts: pa.Table) -> pa.Table:
    """Rows carrying only a deleted key; a key deleted and published again since is an upsert, not a delete."""
    import pyarrow as pa

    primary_key = contract.meta.primary_key
    present = set(zip(*(upserts.column(name).to_pylist() for name in primary_key), strict=True))
    doomed = list({tuple(key) for key in keys} - present)
    columns = {name: [key[index] for key in doomed] for index, name in enumerate(primary_key)}
    return pa.table(
        {
            field.name: pa.array(columns[field.name], field.type)
            if field.name in columns
            else pa.nulls(len(doomed), field.type)
            for field in schema
        }
    )


def _maintain_if_due(
    table: DeltaTable, settings: SharingSettings, store: ObjectStore, dataset: str, seq: int, *, now: datetime
) -> bool:
    """OPTIMIZE (compact small files) and VACUUM when the last ones are older than the maintenance interval."""
    from deltalake import CommitProperties

    marker = maintenance_marker(store, dataset)
    last = datetime.fromisoformat(marker.read_text()) if marker.exists() else None
    if last is not None and now - last < timedelta(hours=settings.maintenance_interval_hours):
        return False
    commit = CommitProperties(custom_metadata={_SEQ_PROPERTY: str(seq)})
    table.optimize.compact(commit_properties=commit)
    retention_h = math.ceil(settings.vacuum_retention_hours)
    removed = table.vacuum(retention_hours=retention_h, dry_run=False, commit_properties=commit)
    pruned = prune_served_files(store, dataset, older_than=now - timedelta(hours=retention_h))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(now.isoformat())
    log.info("shared_table_maintained", table=table.table_uri, vacuumed=len(removed), pruned=pruned)
    return True
