"""The Delta Sharing REST protocol under ``/delta-sharing``: the official client, Spark and Power BI read here.

A recipient is a token: it sees one share (``WATERHUB_SHARING__SHARE``), one schema per domain of the datasets it is
granted and one table per granted dataset that ``waterhub sharing sync`` keeps as a Delta table
(``water_quality.samples`` is ``<share>.water_quality.samples``). A dataset not granted is answered exactly as one
that does not exist. Files are sent by signed URLs that expire (``/delta-sharing/files/…``, no token needed),
filtered to the grant's rows when the grant has a filter (``exchange.sharing.files``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import Connection, select

from exchange.access.tokens import Principal
from exchange.api.deps import (
    ApiContext,
    ConnectionDep,
    ContextDep,
    GrantedDataset,
    PrincipalDep,
    granted_dataset,
    not_found,
    record_dataset_read,
)
from exchange.api.problems import Problem
from exchange.errors import InvalidQueryError
from exchange.sharing.delta import open_shared_table
from exchange.sharing.files import change_files, query_files
from exchange.sharing.layout import SERVED_PREFIX, TABLES_PREFIX, shared_table_path, store_root
from exchange.sharing.protocol import (
    CAPABILITIES,
    change_line,
    commit_times,
    file_line,
    metadata_line,
    page,
    protocol_line,
    version_at,
)
from exchange.sharing.signing import UrlSigner
from exchange.tables import datasets

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = [
    "ListingDep",
    "SharedTableDep",
    "get_share",
    "list_all_tables",
    "list_schemas",
    "list_shares",
    "list_tables",
    "query_table",
    "router",
    "signed_file",
    "table_changes",
    "table_metadata",
    "table_version",
]

router = APIRouter(prefix="/delta-sharing", tags=["delta sharing"])
_NDJSON = "application/x-ndjson"


@dataclass(frozen=True)
class _Listing:
    """What every listing needs: who asks, the hub, and the page asked for."""

    context: ApiContext
    principal: Principal
    max_results: int | None
    page_token: str | None

    def shared_keys(self) -> list[str]:
        """The datasets the caller is granted that are published and kept as Delta tables."""
        granted = list(self.principal.grants)
        with self.context.engine.connect() as conn:
            published = set(conn.execute(select(datasets.c.key).where(datasets.c.key.in_(granted))).scalars())
        store = self.context.store
        return sorted(key for key in published if (shared_table_path(store, key) / "_delta_log").is_dir())

    def answer(self, names: list[str], item: Callable[[str], dict[str, str]]) -> JSONResponse:
        chosen, token = page(names, self.max_results, self.page_token, self.context.sharing.max_results)
        return JSONResponse({"items": [item(name) for name in chosen]} | ({"nextPageToken": token} if token else {}))


def _listing(
    principal: PrincipalDep,
    context: ContextDep,
    max_results: Annotated[int | None, Query(alias="maxResults", description="Most items in this page")] = None,
    page_token: Annotated[str | None, Query(alias="pageToken", description="nextPageToken of the last page")] = None,
) -> _Listing:
    return _Listing(context, principal, max_results, page_token)


ListingDep = Annotated[_Listing, Depends(_listing)]


def _share(context: ApiContext, share: str) -> dict[str, str]:
    if share != context.sharing.share:
        raise Problem(404, "not-found", f"no share {share[:100]!r}; GET /delta-sharing/shares lists yours")
    return {"name": share, "id": share}


@router.get("/shares", summary="The shares you receive (one)")
def list_shares(listing: ListingDep) -> JSONResponse:
    return listing.answer([listing.context.sharing.share], lambda name: _share(listing.context, name))


@router.get("/shares/{share}", summary="One share")
def get_share(share: str, principal: PrincipalDep, context: ContextDep) -> JSONResponse:
    return JSONResponse({"share": _share(context, share)})


@router.get("/shares/{share}/schemas", summary="Schemas of a share: the domains of your datasets")
def list_schemas(share: str, listing: ListingDep) -> JSONResponse:
    _share(listing.context, share)
    domains = sorted({key.partition(".")[0] for key in listing.shared_keys()})
    return listing.answer(domains, lambda name: {"name": name, "share": share})


@router.get("/shares/{share}/schemas/{schema}/tables", summary="Tables of a schema: your datasets in that domain")
def list_tables(share: str, schema: str, listing: ListingDep) -> JSONResponse:
    _share(listing.context, share)
    keys = [key for key in listing.shared_keys() if key.partition(".")[0] == schema]
    if not keys:
        raise Problem(404, "not-found", f"no schema {schema[:100]!r} in share {share!r} is shared with you")
    return listing.answer(keys, lambda key: _table_item(share, key))


@router.get("/shares/{share}/all-tables", summary="Every table of a share shared with you")
def list_all_tables(share: str, listing: ListingDep) -> JSONResponse:
    _share(listing.context, share)
    return listing.answer(listing.shared_keys(), lambda key: _table_item(share, key))


def _table_item(share: str, key: str) -> dict[str, str]:
    schema, _, name = key.partition(".")
    return {"name": name, "schema": schema, "share": share}


@dataclass(frozen=True)
class _SharedTable:
    """A table the caller may read: its dataset grant, its Delta table at the latest version, and the hub."""

    dataset: GrantedDataset
    delta: DeltaTable
    context: ApiContext
    conn: Connection


def _shared_table(
    share: str, schema: str, table: str, principal: PrincipalDep, context: ContextDep, conn: ConnectionDep
) -> _SharedTable:
    _share(context, share)
    key = f"{schema}.{table}"
    dataset = granted_dataset(key, principal, conn)
    delta = open_shared_table(context.store, key)
    if delta is None:
        raise not_found(key)
    return _SharedTable(dataset, delta, context, conn)


SharedTableDep = Annotated[_SharedTable, Depends(_shared_table)]


_TABLE = "/shares/{share}/schemas/{schema}/tables/{table}"


@router.get(f"{_TABLE}/version", summary="The table's version (header)")
@router.head(f"{_TABLE}/version", summary="The table's version (header)", operation_id="table_version_head")
def table_version(
    shared: SharedTableDep, starting_timestamp: Annotated[str | None, Query(alias="startingTimestamp")] = None
) -> Response:
    delta = shared.delta
    version = delta.version()
    if starting_timestamp is not None:
        version = version_at(commit_times(delta), starting_timestamp, first_after=True)
    return Response(status_code=200, headers={"delta-table-version": str(version)})


@router.get(f"{_TABLE}/metadata", summary="Protocol and metadata of the table (NDJSON)")
def table_metadata(shared: SharedTableDep) -> Response:
    delta = shared.delta
    return _ndjson([protocol_line(), metadata_line(delta, delta.version())], delta.version())


@router.post(f"{_TABLE}/query", summary="The table's files at a version, filtered to your grant (NDJSON)")
def query_table(
    shared: SharedTableDep, request: Request, body: Annotated[dict[str, Any] | None, Body()] = None
) -> Response:
    dataset, delta, context = shared.dataset, shared.delta, shared.context
    asked = body or {}
    version = delta.version()
    if asked.get("timestamp") is not None:
        version = version_at(commit_times(delta), str(asked["timestamp"]), first_after=False)
    elif asked.get("version") is not None:
        version = _version_number(asked["version"], "version", delta.version())
    if version != delta.version():
        delta = _loaded(context, dataset.key, version)
    files = query_files(context.store, dataset.key, delta, dataset.grant_filter)
    signer, expires_at = _signer(context, request)
    record_dataset_read(shared.conn, context, dataset, "share_query", sum(file.rows for file in files))
    lines = [protocol_line(), metadata_line(delta, version, files=files)]
    lines += [file_line(file, signer, expires_at) for file in files]
    return _ndjson(lines, version)


@router.get(f"{_TABLE}/changes", summary="The table's changes between versions, filtered to your grant (NDJSON)")
def table_changes(
    shared: SharedTableDep,
    request: Request,
    starting_version: Annotated[int | None, Query(alias="startingVersion")] = None,
    starting_timestamp: Annotated[str | None, Query(alias="startingTimestamp")] = None,
    ending_version: Annotated[int | None, Query(alias="endingVersion")] = None,
    ending_timestamp: Annotated[str | None, Query(alias="endingTimestamp")] = None,
) -> Response:
    dataset, delta, context = shared.dataset, shared.delta, shared.context
    latest = delta.version()
    times = commit_times(delta)
    if starting_version is not None:
        start = _version_number(starting_version, "startingVersion", latest)
    elif starting_timestamp is not None:
        start = version_at(times, starting_timestamp, first_after=True)
    else:
        raise InvalidQueryError("give startingVersion or startingTimestamp", slug="invalid-version")
    end = latest
    if ending_version is not None:
        end = _version_number(ending_version, "endingVersion", latest)
    elif ending_timestamp is not None:
        end = version_at(times, ending_timestamp, first_after=False)
    if end < start:
        raise InvalidQueryError(
            f"the ending version {end} is before the starting version {start}", slug="invalid-version"
        )
    window_start_ms = (context.clock() - timedelta(days=context.sharing.change_window_days)).timestamp() * 1000
    if start not in times or times[start] < window_start_ms:
        raise InvalidQueryError(
            f"version {start} is outside the change window of {context.sharing.change_window_days:g} days; "
            "load the table (query) and follow changes from its version",
            slug="outside-change-window",
        )
    files = change_files(context.store, dataset.key, delta, range(start, end + 1), dataset.grant_filter)
    signer, expires_at = _signer(context, request)
    record_dataset_read(shared.conn, context, dataset, "share_changes", sum(file.rows for file in files))
    lines = [protocol_line(), metadata_line(delta, latest)]
    lines += [change_line(file, signer, expires_at, times[file.version or 0]) for file in files]
    return _ndjson(lines, start)


_FILE_SUMMARY = "A file by its signed URL (no token: the signature is the permission)"


@router.get("/files/{object_key:path}", summary=_FILE_SUMMARY, response_class=FileResponse)
@router.head("/files/{object_key:path}", summary=_FILE_SUMMARY, response_class=FileResponse, operation_id="file_head")
def signed_file(
    object_key: str,
    context: ContextDep,
    expires: Annotated[int, Query(description="Unix seconds the URL expires at")],
    signature: Annotated[str, Query(max_length=64)],
) -> FileResponse:
    signer = UrlSigner(context.signing_key, "")
    if not signer.is_valid(object_key, expires, signature, now=context.clock()):
        raise Problem(403, "invalid-signature", "this file URL is not valid or has expired; query the table again")
    if not object_key.startswith((f"{TABLES_PREFIX}/", f"{SERVED_PREFIX}/")):
        raise Problem(404, "not-found", "no such file")
    root = store_root(context.store)
    path = (root / object_key).resolve()
    if root not in path.parents or not path.is_file():
        raise Problem(404, "not-found", "the file is gone (vacuumed after its URL expired); query the table again")
    return FileResponse(path, media_type="application/vnd.apache.parquet")


def _signer(context: ApiContext, request: Request) -> tuple[UrlSigner, datetime]:
    base = str(request.base_url).rstrip("/")
    return UrlSigner(context.signing_key, base), context.clock() + timedelta(seconds=context.sharing.url_lifetime_s)


def _version_number(value: object, name: str, latest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= latest:
        raise InvalidQueryError(f"{name} must be a version from 0 to {latest}", slug="invalid-version")
    return value


def _loaded(context: ApiContext, key: str, version: int) -> DeltaTable:
    from deltalake.exceptions import DeltaError

    try:
        loaded = open_shared_table(context.store, key, version)
    except DeltaError as exc:
        raise InvalidQueryError(
            f"version {version} of {key} is no longer kept; query the latest", slug="invalid-version"
        ) from exc
    if loaded is None:
        raise not_found(key)
    return loaded


def _ndjson(lines: Sequence[str], version: int) -> Response:
    headers = {"delta-table-version": str(version), "delta-sharing-capabilities": CAPABILITIES}
    return Response("\n".join(lines) + "\n", media_type=_NDJSON, headers=headers)
