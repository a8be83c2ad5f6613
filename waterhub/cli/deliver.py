"""``waterhub deliver``: the delivery worker, until SIGTERM or Ctrl-C (both end it after the round in hand).

It runs on uvloop: a fan-out is thousands of HTTP requests, and uvloop's event loop costs them a fraction of
asyncio's own. ``--processes N`` runs N workers side by side when one core cannot keep up; they share the queue
by claiming with ``FOR UPDATE SKIP LOCKED``, which only PostgreSQL has.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from types import FrameType
from typing import Annotated

import typer
import uvloop

from waterhub.cli.output import fail
from waterhub.settings import Settings

__all__ = ["deliver"]


def deliver(
    processes: Annotated[
        int, typer.Option(min=1, help="Worker processes sharing the queue (PostgreSQL only): one per spare core")
    ] = 1,
) -> None:
    """Send subscribers' webhooks and WeCom alerts from the outbox, with retries, until stopped."""
    from exchange.db import is_postgres
    from waterhub.cli.hub import migrated_hub

    engine = migrated_hub(Settings())  # migrated once, before any worker starts
    postgres = is_postgres(engine)
    engine.dispose()
    if processes > 1 and not postgres:
        raise fail(
            "several delivery processes need PostgreSQL: SQLite cannot claim with SKIP LOCKED",
            "run one process on the embedded hub, or point WATERHUB_DATABASE_URL at PostgreSQL",
        )
    if processes == 1:
        _work()
        return
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_work, name=f"waterhub-deliver-{n}") for n in range(processes)]
    for worker in workers:
        worker.start()

    def stop_all(_signum: int, _frame: FrameType | None) -> None:
        """Each worker is sent SIGTERM, and ends after the round in hand, as a single one would."""
        for worker in workers:
            if worker.is_alive():
                worker.terminate()

    for sent in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sent, stop_all)
    for worker in workers:
        worker.join()
    if any(worker.exitcode for worker in workers):
        raise typer.Exit(code=1)


def _work() -> None:
    """One worker until SIGTERM or SIGINT (a process of its own when there are several)."""
    from exchange.db import make_engine
    from exchange.webhooks.worker import DeliveryWorker

    settings = Settings()
    engine = make_engine(settings.resolved_database_url)
    worker = DeliveryWorker(engine, settings.webhooks, settings.hub_id)

    async def until_stopped() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sent in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sent, stop.set)
        await worker.run(stop)

    try:
        uvloop.run(until_stopped())
    finally:
        engine.dispose()
