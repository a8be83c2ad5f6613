"""What every route receives through ``Annotated`` dependencies: the hub's context, the caller, the dataset.

The context (engine, object store, settings, lineage, clock) is built by the app factory and kept on
``app.state``; nothing is built at import time, and a test passes its own clock or settings to the factory.
A dataset that is not granted to the caller is answered exactly like one that does not exist (404, same words),
so a department cannot learn what others are given.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import Connection, Engine, Table, bindparam, select

from contracts import Contract, get_contract
from contracts.errors import UnknownContractError
from exchange.access.audit import AuditEntry, record_read
from exchange.access.filters import Condition, conditions_from_json, conditions_to_json
from exchange.access.tokens import Principal, authenticate
from exchange.api.problems import Problem
from exchange.api.settings import ApiSettings
from exchange.errors import InvalidQueryError, InvalidTokenError
from exchange.objects import ObjectStore
from exchange.sharing.settings import SharingSettings
from exchange.tables import dataset_table, datasets
from exchange.webhooks.settings import WebhookSettings

__all__ = [
    "ApiContext",
    "ConnectionDep",
    "ContextDep",
    "DatasetDep",
    "GrantedDataset",
    "Lineage",
    "PrincipalDep",
    "current_principal",
    "get_context",
    "granted_dataset",
    "not_found",
    "published_contract",
    "record_dataset_read",
    "request_connection",
]


@dataclass(frozen=True)
class Lineage:
    """Where a dataset comes from: the source systems and DAGs that publish it, and for a derived dataset the
    datasets it is derived from."""

    sources: tuple[str, ...] = ()
    dags: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiContext:
    engine: Engine
    store: ObjectStore
    settings: ApiSettings
    lineage: Mapping[str, Lineage] = field(default_factory=dict)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    hub_id: str = "local"
    sharing: SharingSettings = field(default_factory=lambda: SharingSettings())
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)


async def get_context(request: Request) -> ApiContext:
    """``async``, as it does no I/O: FastAPI runs a plain ``def`` dependency in a worker thread, and each such hop
    waits for a thread and for the event loop again, which under load is where the slowest answers lost time."""
    context: ApiContext = request.app.state.context
    return context


ContextDep = Annotated[ApiContext, Depends(get_context)]


def request_connection(context: ContextDep) -> Iterator[Connection]:
    """One pooled connection per request, committing each statement by itself: the token check, the grant lookup,
    the read and its audit share one checkout and no transaction round trips. Each statement reads what is
    committed when it runs (PostgreSQL's default, read committed, gives no more within a transaction). It goes
    back to the pool when the route function returns, before the answer is sent; a streamed body opens its own."""
    with context.engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


ConnectionDep = Annotated[Connection, Depends(request_connection, scope="function")]


def current_principal(request: Request, context: ContextDep, conn: ConnectionDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "unauthorized", "send your department's token as 'Authorization: Bearer <token>'")
    try:
        return authenticate(conn, token.strip(), now=context.clock())
    except InvalidTokenError as exc:
        raise Problem(401, "unauthorized", str(exc)) from exc


PrincipalDep = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True)
class GrantedDataset:
    """A published dataset the caller may read, with the grant's row filter (empty: every row)."""

    key: str
    contract: type[Contract]
    table: Table
    grant_filter: tuple[Condition, ...]
    last_seq: int
    principal: Principal

    @property
    def is_filtered(self) -> bool:
        return bool(self.grant_filter)


def record_dataset_read(
    conn: Connection,
    context: ApiContext,
    dataset: GrantedDataset,
    resource: str,
    rows: int,
    conditions: tuple[Condition, ...] | None = None,
) -> None:
    """Audit a read of ``dataset`` by its caller; ``conditions`` default to the grant's filter alone."""
    principal = dataset.principal
    applied = dataset.grant_filter if conditions is None else conditions
    record_read(
        conn,
        AuditEntry(
            context.clock(),
            principal.department,
            principal.token_id,
            dataset.key,
            resource,
            conditions_to_json(applied),
            rows,
        ),
    )


def not_found(key: str) -> Problem:
    shown = key if len(key) <= 100 else f"{key[:100]}…"
    return Problem(404, "not-found", f"no dataset {shown!r} is shared with you; GET /datasets lists yours")


_PUBLISHED = select(datasets.c.contract_version, datasets.c.last_seq).where(datasets.c.key == bindparam("key"))


def granted_dataset(
    key: Annotated[str, Path(description="Dataset key, e.g. water_quality.samples", max_length=200)],
    principal: PrincipalDep,
    conn: ConnectionDep,
) -> GrantedDataset:
    if key not in principal.grants:
        raise not_found(key)
    row = conn.execute(_PUBLISHED, {"key": key}).first()
    if row is None:
        raise not_found(key)
    contract = published_contract(key, row.contract_version)
    try:
        grant_filter = conditions_from_json(contract, principal.grants[key])
    except InvalidQueryError as exc:  # the contract changed under the grant: serve nothing rather than too much
        raise Problem(
            404, "not-found", f"your grant on {key!r} no longer fits its contract; ask for a new one"
        ) from exc
    return GrantedDataset(key, contract, dataset_table(contract), grant_filter, int(row.last_seq), principal)


def published_contract(key: str, version: str) -> type[Contract]:
    """The contract a dataset was published under, or the newest of its key when that version is gone."""
    try:
        return get_contract(key, version)
    except UnknownContractError:
        return get_contract(key)


DatasetDep = Annotated[GrantedDataset, Depends(granted_dataset)]
