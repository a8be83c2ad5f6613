"""The gateway's /metrics, served as `waterhub gateway` serves it and parsed with Prometheus' parser: its counters
agree with what the devices sent and what the database holds afterwards."""

from __future__ import annotations

import httpx
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select

from connectors.devices import DeviceSimulator, publish_messages
from exchange.gateway.local_broker import LocalMosquitto
from exchange.gateway.settings import GatewaySettings
from exchange.tables import quarantine
from tests.exchange.gateway.conftest import HUB_PASSWORD, gateway_running, register, stored_keys, wait_for


def test_the_gateway_counts_what_it_took_in_committed_and_quarantined(hub: Engine, broker: LocalMosquitto) -> None:
    simulator = DeviceSimulator(seed=5, stations=6, corrupt_share=0.1)
    register(hub, simulator)
    messages = list(simulator.messages(120))
    expected = set().union(*(message.keys for message in messages))
    with gateway_running(hub, broker, GatewaySettings(client_id="gw-metrics", batch_time_ms=10)) as gateway:
        server, _thread = start_http_server(0, addr="127.0.0.1", registry=gateway.metrics.registry)
        port = server.server_port
        try:
            publish_messages(
                "127.0.0.1", broker.port, messages, client_id="sim-metrics", username="waterhub", password=HUB_PASSWORD
            )
            wait_for(lambda: set(stored_keys(hub)) >= expected, what="every observation stored")
            wait_for(lambda: _value(port, "waterhub_gateway_messages_acknowledged_total") >= len(messages))
            scraped = {name: _value(port, name) for name in _NAMES}
        finally:
            server.shutdown()
            server.server_close()
    with hub.connect() as conn:
        held = conn.execute(select(func.count()).select_from(quarantine)).scalar_one()

    assert scraped["waterhub_gateway_messages_received_total"] == len(messages)
    assert scraped["waterhub_gateway_messages_acknowledged_total"] == len(messages)
    assert scraped["waterhub_gateway_rows_changed_total"] == len(expected)  # every observation new, written once
    assert scraped["waterhub_gateway_records_quarantined_total"] == held >= 1
    assert scraped["waterhub_gateway_batch_commit_seconds_count"] >= 1


_NAMES = (
    "waterhub_gateway_messages_received_total",
    "waterhub_gateway_messages_acknowledged_total",
    "waterhub_gateway_rows_changed_total",
    "waterhub_gateway_records_quarantined_total",
    "waterhub_gateway_batch_commit_seconds_count",
)


def _value(port: int, name: str) -> float:
    """The sum of the samples called ``name`` (over all labels) in one scrape."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )
