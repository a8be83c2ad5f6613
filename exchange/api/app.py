"""The consumer API's app factory: one router per resource, included here and nowhere else (STYLE 12).

Nothing is built at import time: ``create_app`` receives the engine, object store and settings its caller made
(``waterhub serve api``, a test), keeps them on ``app.state`` and the routes reach them through dependencies.
Every path but ``/healthz``, ``/readyz`` and the OpenAPI document needs a bearer token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from fastapi import FastAPI
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from exchange.api.deps import ApiContext, Lineage
from exchange.api.metrics import install_metrics
from exchange.api.problems import install_problem_handlers
from exchange.api.routes import changes, datasets, health, rows, snapshots
from exchange.api.settings import ApiSettings
from exchange.objects import ObjectStore

__all__ = ["create_app"]

_DESCRIPTION = """The shared exchange for departments: discover the datasets shared with you and their contracts,
read rows, follow the change feed from your last sequence, and download snapshots to start from.

Send your department's token as `Authorization: Bearer <token>`. A dataset not shared with you answers 404, as one
that does not exist. Errors are RFC 9457 problem details; their `type` is stable."""


def create_app(
    engine: Engine,
    store: ObjectStore,
    settings: ApiSettings | None = None,
    *,
    lineage: Mapping[str, Lineage] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    collectors: Sequence[Collector] = (),
) -> FastAPI:
    """``collectors`` join the API's own request metrics at ``/metrics`` (the hub's dataset figures)."""
    app = FastAPI(title="waterhub consumer API", version="1", description=_DESCRIPTION)
    app.state.context = ApiContext(engine, store, settings or ApiSettings(), lineage or {}, clock)
    install_problem_handlers(app)
    for router in (health.router, datasets.router, rows.router, changes.router, snapshots.router):
        app.include_router(router)
    install_metrics(app, collectors)
    return app
