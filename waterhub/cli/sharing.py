"""``waterhub sharing sync``: bring the shared Delta tables up to the change log, with OPTIMIZE/VACUUM when due.

Run it on a schedule (cron, an Airflow task after publish): each run is one Delta commit per dataset whatever the
number of publishes since the last one, and a run with nothing new writes nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer

from waterhub.cli.output import emit_json, fail, print_table
from waterhub.settings import Settings

__all__ = ["app", "sync"]

app = typer.Typer(help="Delta Sharing: the Delta tables datasets are shared from.", no_args_is_help=True)


@app.command("sync")
def sync(
    datasets: Annotated[
        list[str] | None, typer.Option("--dataset", help="Dataset key to sync (repeat); default every published one")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")] = False,
) -> None:
    """Append each dataset's changes since its last sync to its Delta table (change data feed on)."""
    from sqlalchemy import select

    from exchange.api.deps import published_contract
    from exchange.errors import ExchangeError
    from exchange.objects import open_object_store
    from exchange.sharing.delta import sync_dataset
    from exchange.tables import datasets as published
    from waterhub.cli.hub import migrated_hub

    settings = Settings()
    engine = migrated_hub(settings)
    store = open_object_store(settings.resolved_object_store_url, settings.object_store_credentials)
    with engine.connect() as conn:
        query = select(published.c.key, published.c.contract_version)
        versions = {key: version for key, version in conn.execute(query)}
    wanted = datasets or sorted(versions)
    unknown = [key for key in wanted if key not in versions]
    if unknown:
        raise fail(f"not published: {', '.join(unknown)}", "`waterhub datasets` lists what the hub publishes")
    try:
        results = [
            sync_dataset(engine, store, published_contract(key, versions[key]), settings.sharing, now=datetime.now(UTC))
            for key in wanted
        ]
    except ExchangeError as exc:
        raise fail(str(exc), "fix what the message names, then run `waterhub sharing sync` again") from exc
    if as_json:
        emit_json([asdict(result) for result in results])
        return
    print_table(
        "Shared Delta tables",
        ["dataset", "version", "seq", "upserted", "deleted", "maintained"],
        [[r.dataset, r.version, r.seq, r.upserted, r.deleted, r.maintained] for r in results],
    )
