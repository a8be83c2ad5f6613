"""``GET /datasets/{key}/snapshots`` and ``…/snapshots/{seq}``: where a new or lapsed consumer starts.

An unfiltered grant downloads the snapshot's Parquet object as written, streamed from the object store, with its
sha256 in ``Repr-Digest`` (RFC 9530) to check it against. A grant with a row filter gets a Parquet file made on
the fly from the checked snapshot with the filter applied (same schema, only its rows): it is held in memory while
it is made, which a district's share of a dataset affords, and it has a checksum of its own.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response, StreamingResponse

from exchange.access.filters import arrow_expression
from exchange.api.deps import ConnectionDep, ContextDep, DatasetDep, GrantedDataset, record_dataset_read
from exchange.api.problems import Problem
from exchange.errors import CorruptSnapshotError
from exchange.snapshots import SnapshotResult, read_snapshot, snapshots_of

__all__ = ["download_snapshot", "list_snapshots", "router", "snapshot_item"]

router = APIRouter(tags=["snapshots"])
_PARQUET = "application/vnd.apache.parquet"


def snapshot_item(dataset: GrantedDataset, snapshot: SnapshotResult) -> dict[str, Any]:
    """A snapshot as a department sees it; a filtered grant is not told the whole file's size or checksum."""
    return {
        "seq": snapshot.seq,
        "contract_version": snapshot.contract_version,
        "created_at": snapshot.created_at.isoformat().replace("+00:00", "Z"),
        "rows": None if dataset.is_filtered else snapshot.row_count,
        "sha256": None if dataset.is_filtered else snapshot.sha256,
        "filtered": dataset.is_filtered,
        "href": f"/datasets/{dataset.key}/snapshots/{snapshot.seq}",
    }


@router.get("/datasets/{key}/snapshots", summary="Snapshots of a dataset, newest first")
def list_snapshots(dataset: DatasetDep, context: ContextDep) -> dict[str, Any]:
    return {
        "dataset": dataset.key,
        "snapshots": [snapshot_item(dataset, snapshot) for snapshot in snapshots_of(context.engine, dataset.key)],
    }


@router.get(
    "/datasets/{key}/snapshots/{seq}",
    summary="Download a snapshot as Parquet (filtered to the grant's rows when the grant has a filter)",
    responses={200: {"content": {_PARQUET: {}}}},
    response_class=StreamingResponse,
)
def download_snapshot(
    dataset: DatasetDep,
    context: ContextDep,
    conn: ConnectionDep,
    seq: Annotated[int, Path(description="The snapshot's sequence", ge=0, le=2**63 - 1)],
) -> Response:
    found = [snapshot for snapshot in snapshots_of(context.engine, dataset.key) if snapshot.seq == seq]
    if not found:
        raise Problem(
            404,
            "not-found",
            f"{dataset.key} has no snapshot at seq {seq}; list them at /datasets/{dataset.key}/snapshots",
        )
    snapshot = found[0]
    filename = f'attachment; filename="{dataset.key}-{seq}.parquet"'
    try:
        if dataset.is_filtered:
            body, rows = _filtered_parquet(context.store, snapshot, dataset)
        elif not context.store.exists(snapshot.object_key):
            raise CorruptSnapshotError(f"snapshot {dataset.key}@{seq} is missing from the object store")
        else:
            body, rows = None, snapshot.row_count
    except CorruptSnapshotError as exc:
        raise Problem(
            503,
            "snapshot-unavailable",
            f"snapshot {dataset.key}@{seq} cannot be served now; follow the change feed from 0 meanwhile",
        ) from exc
    record_dataset_read(conn, context, dataset, "snapshot", rows)
    if body is not None:
        return Response(
            body, media_type=_PARQUET, headers={"Content-Disposition": filename, "Repr-Digest": _digest(body)}
        )
    headers = {
        "Content-Disposition": filename,
        "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(snapshot.sha256)).decode()}:",
    }
    chunks: Iterator[bytes] = context.store.stream(snapshot.object_key)
    return StreamingResponse(chunks, media_type=_PARQUET, headers=headers)


def _digest(body: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode()}:"


def _filtered_parquet(store: Any, snapshot: SnapshotResult, dataset: GrantedDataset) -> tuple[bytes, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = read_snapshot(store, snapshot)
    expression = arrow_expression(dataset.grant_filter)
    if expression is not None:
        table = table.filter(expression)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes(), table.num_rows
