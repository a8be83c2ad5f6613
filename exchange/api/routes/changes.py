"""``GET /datasets/{key}/changes?since=SEQ``: what changed after a consumer's sequence, with the rows themselves.

The feed is **compacted**: each row appears once, at its latest change, carrying the row as it is now, which is
the row as it was after that change. Entries a later change superseded are left out, so sequence numbers have
gaps; a consumer applies each entry as an upsert (a delete removes the key) and keeps ``next_since``. Replaying
the feed from 0 thus ends equal to the table, in one entry per row rather than one per change. It is read from the
dataset's own table (its ``_seq`` column, indexed), joined to the change log for the entry's operation and time;
deletes, whose rows are gone, come from the change log with their key only.

A grant's row filter applies to the rows. A delete carries only its key, which cannot be checked against a
filter on other fields, so a department with a filtered grant is not sent deletes.

``since`` older than the retained change log (``WATERHUB_API__CHANGE_RETENTION_DAYS``, or entries removed from
the log) is answered 410 with the latest snapshot: load it, then follow the feed from its ``seq``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import Connection, and_, func, select

from exchange.access.filters import field_specs_by_name, parse_value
from exchange.api.deps import ApiContext, ContextDep, DatasetDep, GrantedDataset, record_dataset_read
from exchange.api.encoding import RowEncoder, json_value
from exchange.api.problems import Problem
from exchange.api.reads import visible_rows
from exchange.api.routes.snapshots import snapshot_item
from exchange.consumer import MAX_SEQ
from exchange.db import is_postgres
from exchange.errors import InvalidQueryError
from exchange.snapshots import latest_snapshot
from exchange.tables import SEQ_COLUMN, change_log

__all__ = ["read_changes", "router"]

router = APIRouter(tags=["changes"])


@router.get(
    "/datasets/{key}/changes",
    summary="Changes after a sequence, each with the row as it is after the change (compacted feed)",
    responses={410: {"description": "since is older than the retained change log: restart from the snapshot"}},
)
def read_changes(
    dataset: DatasetDep,
    context: ContextDep,
    since: Annotated[int, Query(description="The last seq you applied (0: from the start)")] = 0,
    limit: Annotated[int | None, Query(description="Most entries in this answer")] = None,
) -> Response:
    settings = context.settings
    page = min(1000, settings.max_changes_limit) if limit is None else limit
    if not 1 <= page <= settings.max_changes_limit:
        raise InvalidQueryError(
            f"limit must be from 1 to {settings.max_changes_limit:,}; follow next_since for more", slug="invalid-limit"
        )
    if not 0 <= since <= MAX_SEQ:
        raise InvalidQueryError(f"since must be a sequence number from 0 to {MAX_SEQ}", slug="invalid-cursor")
    if since > dataset.last_seq:
        raise InvalidQueryError(
            f"since {since} is ahead of {dataset.key}'s last seq {dataset.last_seq}: the cursor is from another hub "
            "or a hub rebuilt from scratch; restart from a snapshot",
            slug="invalid-cursor",
        )
    with context.engine.connect() as conn:
        _check_retained(conn, context, dataset, since)
        entries = _changed_rows(conn, dataset, since, page) + _deletes(conn, dataset, since, page)
    entries.sort(key=lambda entry: entry[0])
    entries = entries[:page]
    next_since = entries[-1][0] if len(entries) == page else max([dataset.last_seq, *(e[0] for e in entries)])
    body = (
        f'{{"dataset":{json.dumps(dataset.key)},"since":{since},"next_since":{next_since},'
        f'"last_seq":{dataset.last_seq},"entries":[{",".join(text for _, text in entries)}]}}'
    )
    record_dataset_read(context, dataset, "changes", len(entries))
    return Response(body, media_type="application/json")


def _changed_rows(conn: Connection, dataset: GrantedDataset, since: int, page: int) -> list[tuple[int, str]]:
    table = dataset.table
    encoder = RowEncoder(dataset.contract, table, server_json=is_postgres(conn.engine))
    seq = table.c[SEQ_COLUMN]
    key_columns = [table.c[name] for name in dataset.contract.meta.primary_key]
    width = encoder.width(for_json=True)
    statement = (
        select(seq, change_log.c.op, change_log.c.changed_at, *encoder.columns(for_json=True), *key_columns)
        .select_from(table.join(change_log, and_(change_log.c.dataset == dataset.key, change_log.c.seq == seq)))
        # change_log.seq > since says again what the join implies, so the planner starts both index scans at since
        .where(seq > since, change_log.c.seq > since, visible_rows(dataset, ()))
        .order_by(seq)
        .limit(page)
    )
    return [
        (int(row[0]), _entry(int(row[0]), row[1], row[2], row[3 + width :], encoder.json_text(row[3 : 3 + width])))
        for row in conn.execute(statement)
    ]


def _deletes(conn: Connection, dataset: GrantedDataset, since: int, page: int) -> list[tuple[int, str]]:
    if dataset.is_filtered:
        return []
    by_name = field_specs_by_name(dataset.contract)
    specs = [by_name[name] for name in dataset.contract.meta.primary_key]
    statement = (
        select(change_log.c.seq, change_log.c.changed_at, change_log.c.key)
        .where(change_log.c.dataset == dataset.key, change_log.c.op == "delete", change_log.c.seq > since)
        .order_by(change_log.c.seq)
        .limit(page)
    )
    return [
        (
            int(seq),
            _entry(
                int(seq),
                "delete",
                changed_at,
                [parse_value(spec, str(value)) for spec, value in zip(specs, json.loads(key_text), strict=True)],
                "null",
            ),
        )
        for seq, changed_at, key_text in conn.execute(statement)
    ]


def _entry(seq: int, op: str, changed_at: datetime, key: Sequence[Any], row_json: str) -> str:
    """One entry as JSON text; the row's JSON is spliced in as the encoder (or the database) wrote it."""
    key_json = json.dumps([json_value(value) for value in key], ensure_ascii=False, separators=(",", ":"))
    return f'{{"seq":{seq},"op":"{op}","changed_at":"{json_value(changed_at)}","key":{key_json},"row":{row_json}}}'


def _check_retained(conn: Connection, context: ApiContext, dataset: GrantedDataset, since: int) -> None:
    """410 when entries after ``since`` may be gone: removed from the log, or older than the retention."""
    oldest = _oldest_retained(conn, context, dataset)
    if since + 1 >= oldest:
        return
    snapshot = latest_snapshot(context.engine, dataset.key)
    advice = (
        f"load snapshot seq {snapshot.seq} and follow the feed from there"
        if snapshot
        else "no snapshot exists yet; ask the hub's operators to write one"
    )
    raise Problem(
        410,
        "cursor-expired",
        f"since {since} is older than the retained change log of {dataset.key} (oldest retained seq {oldest}); "
        f"{advice}",
        oldest_retained_seq=oldest,
        snapshot=None if snapshot is None else snapshot_item(dataset, snapshot),
    )


def _oldest_retained(conn: Connection, context: ApiContext, dataset: GrantedDataset) -> int:
    """The lowest seq the feed still serves (``last_seq + 1`` when none); entries below it may be gone."""
    none_left = dataset.last_seq + 1
    in_log = conn.execute(select(func.min(change_log.c.seq)).where(change_log.c.dataset == dataset.key)).scalar()
    oldest = none_left if in_log is None else int(in_log)
    retention = context.settings.change_retention_days
    if retention is not None:
        cutoff = context.clock() - timedelta(days=retention)
        kept = conn.execute(
            select(func.min(change_log.c.seq)).where(
                change_log.c.dataset == dataset.key, change_log.c.changed_at >= cutoff
            )
        ).scalar()
        oldest = max(oldest, none_left if kept is None else int(kept))
    return oldest
