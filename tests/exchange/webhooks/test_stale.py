"""A stale source's event, raised by the freshness check into the outbox, reaches every subscriber of the dataset:
a filtered webhook too (it is about the source, not about rows), and a WeCom robot as a readable alert."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from connectors.simulation import AppServer
from exchange.freshness import SourceSchedule, dataset_freshness, raise_stale_events
from exchange.objects import LocalObjectStore
from exchange.staging import BatchStaging
from exchange.tables import STALE_EVENT_TYPE, outbox
from tests.exchange.rows import NOW
from tests.exchange.webhooks.conftest import ROBOT_KEY, Clock, grant, make_worker, publish_stations, rounds, subscribe
from tests.exchange.webhooks.receivers import WebhookReceiver, WeComRobot

STATIONS = "water_quality.stations"


def test_a_stale_event_reaches_filtered_webhooks_and_robots(
    hub: Engine,
    clock: Clock,
    receiver: tuple[WebhookReceiver, AppServer],
    robot: tuple[WeComRobot, AppServer],
    tmp_path: Path,
) -> None:
    state, server = receiver
    robot_state, robot_server = robot
    publish_stations(hub, 0)
    tianhe = grant(hub, "tianhe-water", [STATIONS], district="天河区")
    _, tianhe_secret = subscribe(hub, tianhe, f"{server.base_url}/hooks/tianhe")
    state.secrets["tianhe"] = str(tianhe_secret)
    prefix = f"{robot_server.base_url}/cgi-bin/webhook/send"
    duty = grant(hub, "gz-emergency", [STATIONS])
    subscribe(hub, duty, f"{prefix}?key={ROBOT_KEY}", dataset=STATIONS, channel="wecom", prefix=prefix)
    publish_stations(hub, 1, ["44010003"])  # 越秀区: outside tianhe's filter, and no robot alert for stations

    staging = BatchStaging(hub, LocalObjectStore(tmp_path))
    batch = staging.open(source="water_quality", run_id="run-1", interval_end=NOW, now=NOW)
    staging.update(batch, status="published", streams={})
    with hub.begin() as conn:
        schedule = [SourceSchedule("water_quality", [STATIONS], timedelta(hours=1))]
        (found,) = dataset_freshness(conn, schedule, now=NOW + timedelta(hours=3), grace=2.0)
        raise_stale_events(conn, [found], now=NOW + timedelta(hours=3))
    with hub.connect() as conn:
        stale_id = conn.scalar(select(outbox.c.event_id).where(outbox.c.event_type == STALE_EVENT_TYPE))
    assert stale_id is not None

    rounds(make_worker(hub, clock), clock, 3)

    (told,) = state.events("tianhe")  # the 越秀区 change told it nothing; the stale source does
    assert (told["id"], told["type"]) == (stale_id, STALE_EVENT_TYPE)
    data = told["data"]
    assert isinstance(data, dict)
    assert (data["dataset"], data["source"], data["last_run_at"]) == (STATIONS, "water_quality", NOW.isoformat())
    (message,) = robot_state.messages
    assert "数据过期" in message.content
    assert STATIONS in message.content
    assert "60 分钟" in message.content
