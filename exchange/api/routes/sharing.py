"""The Delta Sharing REST protocol under ``/delta-sharing``: the official client, Spark and Power BI read here.

A recipient is a token: it sees one share (``WATERHUB_SHARING__SHARE``), one schema per domain of the datasets it is
granted and one table per granted dataset that ``waterhub sharing sync`` keeps as a Delta table
(``water_quality.samples`` is ``<share>.water_quality.samples``). A dataset not granted is answered exactly as one
that does not exist. Files are sent by signed URLs that expire (``/delta-sharing/files/…``, no token needed),
filtered to the grant's rows when the grant has a filter (``exchange.sharing.files``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select

from exchange.access.audit import AuditEntry, record_read
from exchange.access.filters import conditions_to_json
from exchange.access.tokens import Principal
from exchange.api.deps import ApiContext, ContextDep, GrantedDataset, PrincipalDep, granted_dataset, not_found
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
MaxResults = Annotated[int | None, Query(alias="maxResults", description="Most items in this page")]
PageToken = Annotated[str | None, Query(alias="pageToken", description="nextPageToken of the previous page")]


def _shared_keys(context: ApiContext, principal: Principal) -> list[str]:
    """The datasets the caller is granted that are published and kept as Delta tables."""
    with context.engine.connect() as conn:
        published = set(
            conn.execute(select(datasets.c.key).where(datasets.c.key.in_(list(principal.grants)))).scalars()
        )
    return sorted(key for key in published if (shared_table_path(context.store, key) / "_delta_log").is_dir())


def _share(context: ApiContext, share: str) -> dict[str, str]:
    if share != context.sharing.share:
        raise Problem(404, "not-found", f"no share {share[:100]!r}; GET /delta-sharing/shares lists yours")
    return {"name": share, "id": share}


def _listing(items: list[dict[str, Any]], token: str | None) -> JSONResponse:
    return JSONResponse({"items": items} | ({"nextPageToken": token} if token else {}))


@router.get("/shares", summary="The shares you receive (one)")
def list_shares(
    principal: PrincipalDep, context: ContextDep, max_results: MaxResults = None, page_token: PageToken = None
) -> JSONResponse:
    names, token = page([context.sharing.share], max_results, page_token, context.sharing.max_results)
    return _listing([_share(context, name) for name in names], token)


@router.get("/shares/{share}", summary="One share")
def get_share(share: str, principal: PrincipalDep, context: ContextDep) -> JSONResponse:
    return JSONResponse({"share": _share(context, share)})


@router.get("/shares/{share}/schemas", summary="Schemas of a share: the domains of your datasets")
def list_schemas(
    share: str,
    principal: PrincipalDep,
    context: ContextDep,
    max_results: MaxResults = None,
    page_token: PageToken = None,
) -> JSONResponse:
    _share(context, share)
    domains = {key.partition(".")[0] for key in _shared_keys(context, principal)}
    names, token = page(sorted(domains), max_results, page_token, context.sharing.max_results)
    return _listing([{"name": name, "share": share} for name in names], token)


@router.get("/shares/{share}/schemas/{schema}/tables", summary="Tables of a schema: your datasets in that domain")
def list_tables(
    share: str,
    schema: str,
    principal: PrincipalDep,
    context: ContextDep,
    max_results: MaxResults = None,
    page_token: PageToken = None,
) -> JSONResponse:
    _share(context, share)
    keys = [key for key in _shared_keys(context, principal) if key.partition(".")[0] == schema]
    if not keys:
        raise Problem(404, "not-found", f"no schema {schema[:100]!r} in share {share!r} is shared with you")
    names, token = page(keys, max_results, page_token, context.sharing.max_results)
    return _listing([_table_item(share, key) for key in names], token)


@router.get("/shares/{share}/all-tables", summary="Every table of a share shared with you")
def list_all_tables(
    share: str,
    principal: PrincipalDep,
    context: ContextDep,
    max_results: MaxResults = None,
    page_token: PageToken = None,
) -> JSONResponse:
    _share(context, share)
    names, token = page(_shared_keys(context, principal), max_results, page_token, context.sharing.max_results)
    return _listing([_table_item(share, key) for key in names], token)


def _table_item(share: str, key: str) -> dict[str, str]:
    schema, _, name = key.partition(".")
    return {"name": name, "schema": schema, "share": share}


def _granted_table(
    context: ApiContext, principal: Principal, share: str, schema: str, table: str
) -> tuple[GrantedDataset, DeltaTable]:
    _share(context, share)
    key = f"{schema}.{table}"
    dataset = granted_dataset(key, principal, context)
    delta = open_shared_table(context.store, key)
    if delta is None:
        raise not_found(key)
    return dataset, delta


_TABLE = "/shares/{share}/schemas/{schema}/tables/{table}"


@router.get(f"{_TABLE}/version", summary="The table's version (header)")
@router.head(f"{_TABLE}/version", summary="The table's version (header)", operation_id="table_version_head")
def table_version(
    share: str,
    schema: str,
    table: str,
    principal: PrincipalDep,
    context: ContextDep,
    starting_timestamp: Annotated[str | None, Query(alias="startingTimestamp")] = None,
) -> Response:
    _, delta = _granted_table(context, principal, share, schema, table)
    version = delta.version()
    if starting_timestamp is not None:
        version = version_at(commit_times(delta), starting_timestamp, first_after=True)
    return Response(status_code=200, headers={"delta-table-version": str(version)})


@router.get(f"{_TABLE}/metadata", summary="Protocol and metadata of the table (NDJSON)")
def table_metadata(share: str, schema: str, table: str, principal: PrincipalDep, context: ContextDep) -> Response:
    _, delta = _granted_table(context, principal, share, schema, table)
    return _ndjson([protocol_line(), metadata_line(delta, delta.version())], delta.version())


@router.post(f"{_TABLE}/query", summary="The table's files at a version, filtered to your grant (NDJSON)")
def query_table(
    share: str,
    schema: str,
    table: str,
    principal: PrincipalDep,
    context: ContextDep,
    request: Request,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> Response:
    dataset, delta = _granted_table(context, principal, share, schema, table)
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
    _audit(context, dataset, "share_query", sum(file.rows for file in files))
    lines = [protocol_line(), metadata_line(delta, version, files=files)]
    lines += [file_line(file, signer, expires_at) for file in files]
    return _ndjson(lines, version)


@router.get(f"{_TABLE}/changes", summary="The table's changes between versions, filtered to your grant (NDJSON)")
def table_changes(
    share: str,
    schema: str,
    table: str,
    principal: PrincipalDep,
    context: ContextDep,
    request: Request,
    starting_version: Annotated[int | None, Query(alias="startingVersion")] = None,
    starting_timestamp: Annotated[str | None, Query(alias="startingTimestamp")] = None,
    ending_version: Annotated[int | None, Query(alias="endingVersion")] = None,
    ending_timestamp: Annotated[str | None, Query(alias="endingTimestamp")] = None,
) -> Response:
    dataset, delta = _granted_table(context, principal, share, schema, table)
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
    _audit(context, dataset, "share_changes", sum(file.rows for file in files))
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


def _audit(context: ApiContext, dataset: GrantedDataset, resource: str, rows: int) -> None:
    principal = dataset.principal
    record_read(
        context.engine,
        AuditEntry(
            context.clock(),
            principal.department,
            principal.token_id,
            dataset.key,
            resource,
            conditions_to_json(dataset.grant_filter),
            rows,
        ),
    )


def _ndjson(lines: Sequence[str], version: int) -> Response:
    headers = {"delta-table-version": str(version), "delta-sharing-capabilities": CAPABILITIES}
    return Response("\n".join(lines) + "\n", media_type=_NDJSON, headers=headers)
