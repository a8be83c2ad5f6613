"""``GET /datasets/{key}/changes?since=SEQ``: what changed after a consumer's sequence, with the rows themselves.

The feed is **compacted**: each row appears once, at its latest change, carrying the row as it is now, which is
the row as it was after that change. Entries a later change superseded are left out, so sequence numbers have
gaps; a consumer applies each entry as an upsert (a delete removes the key) and keeps ``next_since``. Replaying
the feed from 0 thus ends equal to the table, in one entry per row rather than one per change. It is read from the
dataset's own table (its ``_seq`` column, indexed), joined to the change log for the entry's operation and time;
deletes, whose rows are gone, come from the change log with their key only.

On PostgreSQL one statement answers a request: the server builds each entry's JSON and joins the page into one
text, and the same statement reads the log's retention bounds, so the API only splices that text into its answer
(the embedded SQLite builds the same entries in Python). Pages are keyset pages on ``seq``: each part of the
statement starts an index scan just after ``since`` and stops after ``limit`` entries, so a page costs the same
at the log's end as at its start.

A grant's row filter applies to the rows. A delete carries only its key, which cannot be checked against a
filter on other fields, so a department with a filtered grant is not sent deletes.

``since`` older than the retained change log (``WATERHUB_API__CHANGE_RETENTION_DAYS``, or entries removed from
the log) is answered 410 with the latest snapshot: load it, then follow the feed from its ``seq``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    DateTime,
    ScalarSelect,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by

from contracts import Contract
from exchange.access.filters import Condition, field_specs_by_name, parse_value, sql_clause
from exchange.api.deps import ApiContext, ConnectionDep, ContextDep, DatasetDep, GrantedDataset, record_dataset_read
from exchange.api.encoding import RowEncoder, json_value, pg_time_text
from exchange.api.problems import Problem
from exchange.api.routes.snapshots import snapshot_item
from exchange.consumer import MAX_SEQ
from exchange.db import is_postgres
from exchange.errors import InvalidQueryError
from exchange.snapshots import latest_snapshot
from exchange.tables import SEQ_COLUMN, change_log, dataset_table

__all__ = ["read_changes", "router", "warm_feed"]

router = APIRouter(tags=["changes"])

# What a request binds; everything else of a dataset's statements is built once (``_server_statement``). The
# page's bounds are written into the SQL text: PostgreSQL then plans each page for its own bounds, where a generic
# plan of a prepared statement (psycopg prepares what runs often) would not know how few rows a page reads.
_SINCE = bindparam("since", type_=change_log.c.seq.type, literal_execute=True)
_PAGE = bindparam("page", type_=change_log.c.seq.type, literal_execute=True)
# Spelt in the SQL, never bound, so every plan can use the partial index of deletes.
_DELETE = literal_column("'delete'", String)
_CUTOFF = bindparam("cutoff", type_=change_log.c.changed_at.type)


@router.get(
    "/datasets/{key}/changes",
    summary="Changes after a sequence, each with the row as it is after the change (compacted feed)",
    responses={410: {"description": "since is older than the retained change log: restart from the snapshot"}},
)
def read_changes(
    dataset: DatasetDep,
    context: ContextDep,
    conn: ConnectionDep,
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
    retention = settings.change_retention_days
    cutoff = None if retention is None else context.clock() - timedelta(days=retention)
    server_built = (
        is_postgres(conn.engine) and RowEncoder(dataset.contract, dataset.table, server_json=True).server_json
    )
    found = (_server_page if server_built else _python_page)(conn, dataset, since, page, cutoff)
    oldest = found.oldest_retained(dataset.last_seq)
    if since + 1 < oldest:
        raise _expired(context, dataset, since, oldest)
    next_since = found.last_seq if found.count == page else max(dataset.last_seq, found.last_seq or 0)
    body = (
        f'{{"dataset":{json.dumps(dataset.key)},"since":{since},"next_since":{next_since},'
        f'"last_seq":{dataset.last_seq},"entries":[{found.entries}]}}'
    )
    record_dataset_read(conn, context, dataset, "changes", found.count)
    return Response(body, media_type="application/json")


@dataclass(frozen=True)
class _Page:
    """Entries of the feed as JSON objects joined by commas, and the log's bounds read with them."""

    entries: str
    count: int
    last_seq: int | None
    oldest_in_log: int | None
    kept: tuple[int | None, ...]  # with a retention, the lowest seq changed within it (None: none was)

    def oldest_retained(self, last_seq: int) -> int:
        """The lowest seq the feed still serves (``last_seq + 1`` when none); entries below it may be gone."""
        none_left = last_seq + 1
        return max(none_left if bound is None else bound for bound in (self.oldest_in_log, *self.kept))


def _server_page(conn: Connection, dataset: GrantedDataset, since: int, page: int, cutoff: datetime | None) -> _Page:
    statement = _server_statement(dataset.contract, dataset.key, dataset.grant_filter, cutoff is not None)
    count, last_seq, entries, oldest_in_log, *kept = conn.execute(
        statement, {"since": since, "page": page, "cutoff": cutoff}
    ).one()
    return _Page(entries, count, last_seq, oldest_in_log, tuple(kept))


def warm_feed(conn: Connection, contract: type[Contract], key: str, last_seq: int, cutoff: datetime | None) -> None:
    """Read the (empty) page after ``last_seq`` of ``key``'s unfiltered feed: the statement is built and compiled
    once, and the connection's PostgreSQL backend has read the catalogue of the tables it joins."""
    if is_postgres(conn.engine) and RowEncoder(contract, dataset_table(contract), server_json=True).server_json:
        statement = _server_statement(contract, key, (), cutoff is not None)
        conn.execute(statement, {"since": last_seq, "page": 1, "cutoff": cutoff}).one()


@lru_cache(maxsize=256)
def _server_statement(
    contract: type[Contract], key: str, grant_filter: tuple[Condition, ...], retention: bool
) -> Select[*tuple[Any, ...]]:
    """A page and the log's bounds in one statement, built once per dataset and grant filter (SQLAlchemy then
    reuses its compiled form): PostgreSQL writes each entry's JSON and joins the page's entries."""
    table = dataset_table(contract)
    specs = [contract.field_spec(name) for name in contract.meta.primary_key]
    logged = cast(change_log.c.key, JSON)
    row_key = [pg_time_text(table.c[spec.name]) if spec.type == "datetime" else table.c[spec.name] for spec in specs]
    logged_key = [
        pg_time_text(cast(logged[index].as_string(), DateTime(timezone=True)))
        if spec.type == "datetime"
        else logged[index]
        for index, spec in enumerate(specs)
    ]
    row = RowEncoder(contract, table, server_json=True).server_row()
    parts = [_changed(table, key, grant_filter, _entry_json(change_log.c.op, row_key, row))]
    if not grant_filter:
        parts.append(_deleted(key, _entry_json(literal("delete"), logged_key, null())))
    entries = union_all(*(part.subquery().select() for part in parts)).subquery()
    page = select(entries.c.seq, entries.c.entry).order_by(entries.c.seq).limit(_PAGE).subquery()
    joined = func.string_agg(page.c.entry, aggregate_order_by(literal(","), page.c.seq))
    statement: Select[*tuple[Any, ...]] = select(func.count(), func.max(page.c.seq), func.coalesce(joined, ""))
    return statement.add_columns(*_log_bounds(key, retention))


def _entry_json(op: ColumnElement[str], key: list[ColumnElement[Any]], row: ColumnElement[Any]) -> ColumnElement[str]:
    fields = {
        "seq": change_log.c.seq,
        "op": op,
        "changed_at": pg_time_text(change_log.c.changed_at),
        "key": func.json_build_array(*key),
        "row": row,
    }
    arguments = [part for name, value in fields.items() for part in (cast(literal(name), Text), value)]
    return cast(func.json_build_object(*arguments), Text).label("entry")


def _python_page(conn: Connection, dataset: GrantedDataset, since: int, page: int, cutoff: datetime | None) -> _Page:
    """The page with entries encoded here: the embedded SQLite, which cannot build JSON as PostgreSQL does."""
    table, contract = dataset.table, dataset.contract
    parameters = {"since": since, "page": page, "cutoff": cutoff}
    encoder = RowEncoder(contract, table, server_json=False)
    width = encoder.width(for_json=True)
    key_columns = [table.c[name] for name in contract.meta.primary_key]
    changed = _changed(
        table,
        dataset.key,
        dataset.grant_filter,
        change_log.c.op,
        change_log.c.changed_at,
        *encoder.columns(for_json=True),
        *key_columns,
    )
    entries = [
        (int(row[0]), _entry(int(row[0]), row[1], row[2], row[3 + width :], encoder.json_text(row[3 : 3 + width])))
        for row in conn.execute(changed, parameters)
    ]
    if not dataset.is_filtered:
        by_name = field_specs_by_name(contract)
        specs = [by_name[name] for name in contract.meta.primary_key]
        deleted = _deleted(dataset.key, change_log.c.changed_at, change_log.c.key)
        entries += [
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
            for seq, changed_at, key_text in conn.execute(deleted, parameters)
        ]
    entries = sorted(entries, key=lambda entry: entry[0])[:page]
    oldest_in_log, *kept = conn.execute(select(*_log_bounds(dataset.key, cutoff is not None)), parameters).one()
    return _Page(
        ",".join(text for _, text in entries),
        len(entries),
        entries[-1][0] if entries else None,
        oldest_in_log,
        tuple(kept),
    )


def _changed(
    table: Table, key: str, grant_filter: Sequence[Condition], *columns: ColumnElement[Any]
) -> Select[*tuple[Any, ...]]:
    """The next ``page`` rows changed after ``since`` that the grant shows, in seq order, with their log entries."""
    seq = table.c[SEQ_COLUMN]
    granted = sql_clause(table, grant_filter)
    return (
        select(seq.label("seq"), *columns)
        .select_from(table.join(change_log, and_(change_log.c.dataset == key, change_log.c.seq == seq)))
        # change_log.seq > since says again what the join implies, so the planner starts both index scans at since
        .where(seq > _SINCE, change_log.c.seq > _SINCE, *([] if granted is None else [granted]))
        .order_by(seq)
        .limit(_PAGE)
    )


def _deleted(key: str, *columns: ColumnElement[Any]) -> Select[*tuple[Any, ...]]:
    """The next ``page`` deletes after ``since``, from the log (their rows are gone)."""
    return (
        select(change_log.c.seq.label("seq"), *columns)
        .where(change_log.c.dataset == key, change_log.c.op == _DELETE, change_log.c.seq > _SINCE)
        .order_by(change_log.c.seq)
        .limit(_PAGE)
    )


def _log_bounds(key: str, retention: bool) -> list[ScalarSelect[int | None]]:
    """The lowest seq in the dataset's log, and with a retention the lowest changed at or after ``cutoff``."""
    in_log = change_log.c.dataset == key
    bounds = [select(func.min(change_log.c.seq)).where(in_log).scalar_subquery()]
    if retention:
        bounds.append(
            select(func.min(change_log.c.seq)).where(in_log, change_log.c.changed_at >= _CUTOFF).scalar_subquery()
        )
    return bounds


def _entry(seq: int, op: str, changed_at: datetime, key: Sequence[Any], row_json: str) -> str:
    """One entry as JSON text; the row's JSON is spliced in as the encoder wrote it."""
    key_json = json.dumps([json_value(value) for value in key], ensure_ascii=False, separators=(",", ":"))
    return f'{{"seq":{seq},"op":"{op}","changed_at":"{json_value(changed_at)}","key":{key_json},"row":{row_json}}}'


def _expired(context: ApiContext, dataset: GrantedDataset, since: int, oldest: int) -> Problem:
    """410: entries after ``since`` may be gone (removed from the log, or older than the retention)."""
    snapshot = latest_snapshot(context.engine, dataset.key)
    advice = (
        f"load snapshot seq {snapshot.seq} and follow the feed from there"
        if snapshot
        else "no snapshot exists yet; ask the hub's operators to write one"
    )
    return Problem(
        410,
        "cursor-expired",
        f"since {since} is older than the retained change log of {dataset.key} (oldest retained seq {oldest}); "
        f"{advice}",
        oldest_retained_seq=oldest,
        snapshot=None if snapshot is None else snapshot_item(dataset, snapshot),
    )
