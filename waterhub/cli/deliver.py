"""``waterhub deliver``: the delivery worker, until SIGTERM or Ctrl-C (both end it after the round in hand).

It runs on uvloop: a fan-out is thousands of HTTP requests, and uvloop's event loop costs them a fraction of
asyncio's own."""

from __future__ import annotations

import asyncio
import signal

import uvloop

from waterhub.settings import Settings

__all__ = ["deliver"]


def deliver() -> None:
    """Send subscribers' webhooks and WeCom alerts from the outbox, with retries, until stopped."""
    from exchange.webhooks.worker import DeliveryWorker
    from waterhub.cli.hub import migrated_hub

    settings = Settings()
    engine = migrated_hub(settings)
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
