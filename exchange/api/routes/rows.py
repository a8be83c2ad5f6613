"""``GET /datasets/{key}/rows``: the rows a department may see, filtered, a page at a time, streamed.

Pages are keyset pages in primary-key order. Before streaming, one index query finds the page's last key: the
next cursor goes in the ``X-Next-Cursor`` header (and the JSON body) of every format, and the page is read up to
that key, so a page never overlaps the next whatever is published meanwhile.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select, tuple_

from exchange.api.cursor import decode_cursor, encode_cursor, filters_fingerprint
from exchange.api.deps import ConnectionDep, ContextDep, DatasetDep, record_dataset_read
from exchange.api.encoding import MEDIA_TYPES, RowEncoder, SentCount, encoded_rows, negotiate, rows_arrow_schema
from exchange.api.reads import read_chunks, request_conditions, visible_rows
from exchange.db import is_postgres
from exchange.errors import InvalidQueryError

__all__ = ["read_rows", "router"]

router = APIRouter(tags=["rows"])
_RESERVED = ("limit", "cursor", "format")


@router.get(
    "/datasets/{key}/rows",
    summary="Rows of a dataset: filters, keyset pages, JSON, NDJSON, CSV or Parquet",
    responses={200: {"content": {media: {} for media in MEDIA_TYPES.values()}}},
    response_class=StreamingResponse,
)
def read_rows(
    dataset: DatasetDep,
    context: ContextDep,
    conn: ConnectionDep,
    request: Request,
    limit: Annotated[
        int | None, Query(description="Rows in this page (default and maximum: see the hub's settings)")
    ] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    format: Annotated[
        str | None, Query(description="json, ndjson, csv or parquet; otherwise the Accept header")
    ] = None,
) -> StreamingResponse:
    settings = context.settings
    page = settings.default_rows_limit if limit is None else limit
    if not 1 <= page <= settings.max_rows_limit:
        raise InvalidQueryError(
            f"limit must be from 1 to {settings.max_rows_limit:,}; page with the cursor for more", slug="invalid-limit"
        )
    fmt = negotiate(format, request.headers.get("accept"))
    contract, table = dataset.contract, dataset.table
    conditions = request_conditions(contract, request.query_params.multi_items(), _RESERVED)
    fingerprint = filters_fingerprint(conditions)
    key_columns = [table.c[name] for name in contract.meta.primary_key]
    where = visible_rows(dataset, conditions)
    if cursor is not None:
        where = where & (tuple_(*key_columns) > tuple_(*decode_cursor(contract, fingerprint, cursor)))
    edge = conn.execute(select(*key_columns).where(where).order_by(*key_columns).offset(page - 1).limit(2)).all()
    next_cursor = encode_cursor(dataset.key, fingerprint, tuple(edge[0])) if len(edge) == 2 else None
    if edge:
        where = where & (tuple_(*key_columns) <= tuple_(*edge[0]))
    encoder = RowEncoder(contract, table, server_json=is_postgres(context.engine))
    statement = select(*encoder.columns(for_json=fmt in ("json", "ndjson"))).where(where).order_by(*key_columns)
    statement = statement.limit(page)
    sent = SentCount()

    def body() -> object:
        try:
            chunks = read_chunks(context.engine, statement, settings.stream_chunk_rows)
            head = f'{{"dataset":"{dataset.key}","next_cursor":{_json_str(next_cursor)},"rows":['
            yield from encoded_rows(
                fmt, encoder, lambda: rows_arrow_schema(contract), chunks, sent, json_head=head, json_tail="]}"
            )
        finally:
            with context.engine.begin() as audit:
                record_dataset_read(audit, context, dataset, "rows", sent.rows, (*dataset.grant_filter, *conditions))

    headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
    return StreamingResponse(body(), media_type=MEDIA_TYPES[fmt], headers=headers)  # type: ignore[arg-type]


def _json_str(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'
