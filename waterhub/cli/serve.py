"""``waterhub serve api``: the consumer API on uvicorn, until SIGTERM or Ctrl-C.

With ``--workers N`` (``WATERHUB_API__WORKERS``) uvicorn runs N worker processes on the one port, each building the
app from the same settings (``consumer_api``): a request is CPU-bound Python, so one process uses one core. The
schema is checked once, here, before the workers start; and they share one key for signing the sharing protocol's
file URLs (one made up for this run when ``WATERHUB_SHARING__SIGNING_KEY`` is unset), so a URL one worker signed
is honoured by any other.
"""

from __future__ import annotations

import gc
import os
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from waterhub.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["api", "app", "consumer_api"]

app = typer.Typer(help="Serve the hub's HTTP APIs.", no_args_is_help=True)

_SIGNING_KEY = "WATERHUB_SHARING__SIGNING_KEY"
# A worker imports the hub and builds its app before it answers uvicorn's health check; on a busy host that takes
# far longer than uvicorn's 5 s, and a worker killed for it is replaced by one that is killed the same way.
_WORKER_START_S = 120


@app.command("api")
def api(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on", min=1, max=65535)] = 8080,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes, one core each (default WATERHUB_API__WORKERS)", min=1, max=64),
    ] = None,
) -> None:
    """The consumer API departments read datasets, changes and snapshots through."""
    import uvicorn

    from exchange.db import make_engine
    from exchange.tables import ensure_schema

    settings = Settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        ensure_schema(engine)
    finally:
        engine.dispose()
    processes = settings.api.workers if workers is None else workers
    if processes > 1 and settings.sharing.signing_key is None:
        os.environ[_SIGNING_KEY] = secrets.token_urlsafe(32)  # the workers inherit the environment
    uvicorn.run(
        f"{__name__}:consumer_api",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_config=None,
        access_log=False,
        timeout_worker_healthcheck=_WORKER_START_S,
    )


def consumer_api() -> FastAPI:
    """The app of one worker process, built from the environment's settings (uvicorn calls it in each worker)."""
    from exchange.api.app import create_app
    from exchange.api.warm import warm_up
    from exchange.db import make_engine
    from exchange.metrics import HubCollector
    from exchange.objects import open_object_store
    from waterhub.freshness import source_schedules
    from waterhub.lineage import dataset_lineage

    settings = Settings()
    connections = settings.api.db_connections
    engine = make_engine(settings.resolved_database_url, pool_size=connections, max_overflow=connections)
    figures = HubCollector(
        engine, lambda: datetime.now(UTC), source_schedules(), stale_after_intervals=settings.stale_after_intervals
    )
    application = create_app(
        engine,
        open_object_store(settings.resolved_object_store_url, settings.object_store_credentials),
        settings.api,
        lineage=dataset_lineage(),
        webhooks=settings.webhooks,
        hub_id=settings.hub_id,
        sharing_settings=settings.sharing,
        collectors=[figures],
    )
    retention = settings.api.change_retention_days
    warm_up(engine, connections, None if retention is None else datetime.now(UTC) - timedelta(days=retention))
    gc.freeze()  # what start-up built lives as long as the process: keep it out of every later full collection
    return application
