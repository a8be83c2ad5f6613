"""``waterhub broker``: host the embedded MQTT broker for a hub running on defaults (no WATERHUB_MQTT_URL)."""

from __future__ import annotations

import threading

from waterhub.cli.output import stdout
from waterhub.settings import Settings

__all__ = ["broker"]


def broker() -> None:
    """Serve the embedded broker on 127.0.0.1:EMBEDDED_MQTT_PORT until Ctrl-C, for DAG runs and subscribers."""
    from exchange.broker import EmbeddedBroker

    settings = Settings()
    with EmbeddedBroker(host="127.0.0.1", port=settings.embedded_mqtt_port) as running:
        stdout.print(f"Embedded broker at [bold]{running.url}[/]; Ctrl-C stops it.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            stdout.print("stopped")
