"""``/metrics`` of the consumer API on a real socket, parsed with Prometheus' own parser: the dataset figures are
those of the hub the fixture built (rows published, quarantine by reason, unsent events, a stale source), and the
request counters count the requests this test made, by route template."""

from __future__ import annotations

from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from connectors.simulation import AppServer
from exchange.api.app import create_app
from exchange.freshness import SourceSchedule
from exchange.metrics import HubCollector
from exchange.quarantine import quarantine_records
from exchange.staging import BatchStaging
from tests.exchange.api.conftest import Hub

SAMPLES, STATIONS = "water_quality.samples", "water_quality.stations"


def _scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{base_url}/metrics", timeout=30)
    assert answer.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_the_api_serves_the_hubs_dataset_figures_and_its_own_request_counts(hub: Hub) -> None:
    with hub.engine.begin() as conn:
        quarantine_records(
            conn,
            dataset=SAMPLES,
            contract_version="2.0.0",
            run_id="run-1",
            batch_id="b-1",
            entries=[(["unknown_station"], {"n": 1}), (["unknown_station", "sampled_at_missing"], {"n": 2})],
            now=hub.clock.now,
        )
    batch = BatchStaging(hub.engine, hub.store).open(
        source="water_quality", run_id="run-1", interval_end=hub.clock.now, now=hub.clock.now - timedelta(hours=3)
    )
    BatchStaging(hub.engine, hub.store).update(batch, status="snapshotted", streams={})
    collector = HubCollector(
        hub.engine, hub.clock, [SourceSchedule("water_quality", [STATIONS, SAMPLES], timedelta(hours=1))]
    )
    server = AppServer(
        create_app(hub.engine, hub.store, clock=hub.clock, collectors=[collector]), "127.0.0.1", 0, name="API"
    )
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {hub.tokens['city']}"}) as api:
            for _ in range(3):
                assert api.get(f"/datasets/{SAMPLES}/rows").status_code == 200
            assert api.get("/datasets/nope/rows").status_code == 404
        figures = _scrape(server.base_url)
    finally:
        server.stop()

    def value(name: str, **labels: str) -> float:
        return figures[(name, tuple(sorted(labels.items())))]

    assert value("waterhub_dataset_rows", dataset=SAMPLES) == len(hub.samples)
    assert value("waterhub_dataset_rows", dataset=STATIONS) == len(hub.stations)
    assert value("waterhub_dataset_last_seq", dataset=SAMPLES) == len(hub.samples)
    assert value("waterhub_quarantined_records", dataset=SAMPLES, reason="unknown_station") == 2
    assert value("waterhub_quarantined_records", dataset=SAMPLES, reason="sampled_at_missing") == 1
    assert value("waterhub_outbox_pending_events", dataset=SAMPLES) == 1  # the fixture published, nobody sent
    assert value("waterhub_dataset_stale", dataset=SAMPLES) == 1  # last run 3 h ago, hourly, grace 2
    route = "/datasets/{key}/rows"
    assert value("waterhub_api_requests_total", method="GET", route=route, status="200") == 3
    assert value("waterhub_api_requests_total", method="GET", route=route, status="404") == 1
    assert value("waterhub_api_request_seconds_count", route=route) == 4
