"""``waterhub serve api``: the consumer API on uvicorn, until SIGTERM or Ctrl-C."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from waterhub.settings import Settings

__all__ = ["api", "app"]

app = typer.Typer(help="Serve the hub's HTTP APIs.", no_args_is_help=True)


@app.command("api")
def api(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on", min=1, max=65535)] = 8080,
) -> None:
    """The consumer API departments read datasets, changes and snapshots through."""
    import uvicorn

    from exchange.api.app import create_app
    from exchange.db import make_engine
    from exchange.metrics import HubCollector
    from exchange.objects import open_object_store
    from exchange.tables import ensure_schema
    from waterhub.freshness import source_schedules
    from waterhub.lineage import dataset_lineage

    settings = Settings()
    engine = make_engine(settings.resolved_database_url)
    ensure_schema(engine)
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
    try:
        uvicorn.run(application, host=host, port=port, log_config=None, access_log=False)
    finally:
        engine.dispose()
