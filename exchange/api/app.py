"""The consumer API's app factory: one router per resource, included here and nowhere else (STYLE 12).

Nothing is built at import time: ``create_app`` receives the engine, object store and settings its caller made
(``waterhub serve api``, a test), keeps them on ``app.state`` and the routes reach them through dependencies.
Every path but ``/healthz``, ``/readyz``, the OpenAPI document and signed sharing file URLs needs a bearer token.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from fastapi import FastAPI
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from exchange.api.deps import ApiContext, Lineage
from exchange.api.metrics import install_metrics
from exchange.api.problems import document_problems, install_problem_handlers
from exchange.api.routes import changes, datasets, health, rows, sharing, snapshots, subscriptions
from exchange.api.settings import ApiSettings
from exchange.objects import ObjectStore
from exchange.sharing.settings import SharingSettings
from exchange.webhooks.settings import WebhookSettings

__all__ = ["create_app"]

_DESCRIPTION = """The shared exchange for departments: discover the datasets shared with you and their contracts,
read rows, follow the change feed from your last sequence, download snapshots to start from, and subscribe to
changes with a signed webhook or a WeCom group robot. The same datasets are served over the open Delta Sharing
protocol under `/delta-sharing` (pandas, Spark, Power BI).

Send your department's token as `Authorization: Bearer <token>`. A dataset not shared with you answers 404, as one
that does not exist. Errors are RFC 9457 problem details; their `type` is stable."""


def create_app(
    engine: Engine,
    store: ObjectStore,
    settings: ApiSettings | None = None,
    *,
    lineage: Mapping[str, Lineage] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    webhooks: WebhookSettings | None = None,
    hub_id: str = "local",
    sharing_settings: SharingSettings | None = None,
    collectors: Sequence[Collector] = (),
) -> FastAPI:
    """``collectors`` join the API's own request metrics at ``/metrics`` (the hub's dataset figures)."""
    app = FastAPI(title="waterhub consumer API", version="1", description=_DESCRIPTION)
    sharing_settings = sharing_settings or SharingSettings()
    key = sharing_settings.signing_key
    app.state.context = ApiContext(
        engine,
        store,
        settings or ApiSettings(),
        lineage or {},
        clock,
        webhooks=webhooks or WebhookSettings(),
        hub_id=hub_id,
        sharing=sharing_settings,
        signing_key=secrets.token_bytes(32) if key is None else key.get_secret_value().encode(),
    )
    install_problem_handlers(app)
    routers = (
        health.router,
        datasets.router,
        rows.router,
        changes.router,
        snapshots.router,
        subscriptions.router,
        sharing.router,
    )
    for router in routers:
        app.include_router(router)
    install_metrics(app, collectors)
    document_problems(app)
    return app
