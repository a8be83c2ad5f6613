"""Freshness on real PostgreSQL and Mosquitto: a dataset whose source stops publishing is stale after its
schedule's interval times the grace factor, raises one event per stale spell through the outbox, and that event
reaches MQTT on the dataset's freshness topic. Expected intervals are worked out by hand from the schedules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select

from contracts.water_quality import WaterQualitySample
from exchange.freshness import SourceSchedule, dataset_freshness, raise_stale_events
from exchange.mqtt_url import broker_address
from exchange.notify import MqttNotifier, dispatch_outbox
from exchange.objects import LocalObjectStore
from exchange.staging import BatchStaging
from exchange.tables import STALE_EVENT_TYPE, ensure_schema, outbox
from tests.exchange.rows import publish, sample
from waterhub.freshness import schedule_interval

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SAMPLES = WaterQualitySample.meta.key
HOURLY = [SourceSchedule("water_quality", [SAMPLES], timedelta(hours=1))]


@pytest.mark.parametrize(
    ("schedule", "interval"),
    [
        ("@hourly", timedelta(hours=1)),
        ("@daily", timedelta(days=1)),
        ("0 */6 * * *", timedelta(hours=6)),
        ("30 8 * * 1-5", timedelta(days=3)),  # Friday 08:30 to Monday 08:30
        ("@once", None),
        (None, None),
    ],
)
def test_the_expected_interval_is_the_longest_gap_of_the_schedule(
    schedule: str | None, interval: timedelta | None
) -> None:
    assert schedule_interval(schedule) == interval


def _run(engine: Engine, staging: BatchStaging, run_id: str, at: datetime, status: str = "published") -> None:
    batch = staging.open(source="water_quality", run_id=run_id, interval_end=at, now=at)
    staging.update(batch, status=status, streams={})


@pytest.fixture
def staging(pg_engine: Engine, tmp_path: Path) -> BatchStaging:
    ensure_schema(pg_engine)
    publish(pg_engine, WaterQualitySample, [sample("11000001", 0)], run_id="run-0")
    return BatchStaging(pg_engine, LocalObjectStore(tmp_path))


def _stale_events(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        query = select(outbox).where(outbox.c.event_type == STALE_EVENT_TYPE).order_by(outbox.c.id)
        return [row._asdict() for row in conn.execute(query)]


def _check(engine: Engine, now: datetime) -> bool:
    with engine.begin() as conn:
        (found,) = dataset_freshness(conn, HOURLY, now=now, grace=2.0)
        raise_stale_events(conn, [found], now=now)
    return found.stale


def test_a_source_silent_past_its_grace_is_stale_once_per_spell(pg_engine: Engine, staging: BatchStaging) -> None:
    _run(pg_engine, staging, "run-1", T0)
    _run(pg_engine, staging, "run-2", T0 + timedelta(hours=1), status="validated")  # failed before publish

    assert _check(pg_engine, T0 + timedelta(hours=1, minutes=59)) is False
    assert _stale_events(pg_engine) == []
    assert _check(pg_engine, T0 + timedelta(hours=2, minutes=1)) is True
    _run(pg_engine, staging, "replay__x", T0 + timedelta(hours=2, minutes=30))  # a replay is no run of the source
    assert _check(pg_engine, T0 + timedelta(hours=3)) is True

    (event,) = _stale_events(pg_engine)
    assert event["dataset"] == SAMPLES
    assert json.loads(str(event["detail"]))["last_run_at"] == T0.isoformat()

    _run(pg_engine, staging, "run-3", T0 + timedelta(hours=4))
    assert _check(pg_engine, T0 + timedelta(hours=4, minutes=5)) is False
    assert _check(pg_engine, T0 + timedelta(hours=7)) is True
    assert len({event["event_id"] for event in _stale_events(pg_engine)}) == 2  # a new spell, a new event


def test_a_stale_event_reaches_mqtt_on_the_freshness_topic(
    pg_engine: Engine, staging: BatchStaging, mqtt_url: str
) -> None:
    _run(pg_engine, staging, "run-1", T0)
    _check(pg_engine, T0 + timedelta(hours=5))
    (event,) = _stale_events(pg_engine)
    received: list[tuple[str, dict[str, object]]] = []
    subscribed, arrived = threading.Event(), threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_connect = lambda c, *_: c.subscribe(f"waterhub/datasets/{SAMPLES}/freshness", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()

    def keep(_client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        payload = json.loads(message.payload)
        if payload["id"] == event["event_id"]:
            received.append((message.topic, payload))
            arrived.set()

    client.on_message = keep
    address = broker_address(mqtt_url)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        with MqttNotifier(mqtt_url) as notifier:
            result = dispatch_outbox(pg_engine, notifier, hub_id="freshness-test", now=T0 + timedelta(hours=5))
        assert arrived.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()

    assert str(event["event_id"]) in result.sent_ids
    ((topic, cloud_event),) = received
    assert topic == f"waterhub/datasets/{SAMPLES}/freshness"
    assert cloud_event["type"] == STALE_EVENT_TYPE
    data = cloud_event["data"]
    assert isinstance(data, dict)
    assert (data["dataset"], data["source"], data["expected_interval_s"]) == (SAMPLES, "water_quality", 3600.0)


def test_waterhub_datasets_shows_a_stale_source(pg_schema_url: str, pg_engine: Engine, staging: BatchStaging) -> None:
    _run(pg_engine, staging, "run-1", datetime.now(UTC) - timedelta(hours=5))  # hourly, grace 2: stale

    done = subprocess.run(  # noqa: S603 - the venv's own console script
        [str(Path(sys.executable).with_name("waterhub")), "datasets", "--json"],
        env=os.environ | {"WATERHUB_DATABASE_URL": pg_schema_url},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    listed = {entry["key"]: entry for entry in json.loads(done.stdout)}
    assert listed[SAMPLES]["stale"] is True
