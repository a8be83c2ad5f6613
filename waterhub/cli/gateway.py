"""``waterhub gateway``: the device gateway, until SIGTERM or Ctrl-C (both end it after the batch in hand)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from waterhub.settings import Settings

__all__ = ["gateway"]


def gateway() -> None:
    """Receive device messages over MQTT and publish their readings into the hub's datasets."""
    from exchange.db import make_engine
    from exchange.gateway.service import Gateway
    from exchange.tables import ensure_schema

    settings = Settings()
    engine = make_engine(settings.resolved_database_url)
    ensure_schema(engine)
    stop = threading.Event()

    def ask_to_stop(_signal: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, ask_to_stop)
    signal.signal(signal.SIGINT, ask_to_stop)
    service = Gateway(engine, settings.resolved_mqtt_url, settings.gateway, hub_id=settings.hub_id, freeze_heap=True)
    metrics = None
    if settings.gateway.metrics_port is not None:
        from prometheus_client import start_http_server

        metrics, _thread = start_http_server(settings.gateway.metrics_port, registry=service.metrics.registry)
    try:
        service.run(stop)
    finally:
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()
        engine.dispose()
