"""Webhooks from the outbox to a department's receiver: signed, at least once, in order, retried, disabled on 410.

Expected events come from what the test published (its ``PublishResult``s), and every request is checked on the
receiving side with the ``standardwebhooks`` library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select

from connectors.simulation import AppServer
from exchange.access.departments import seed_departments
from exchange.access.tokens import revoke_token
from exchange.notify import EVENT_TYPE
from exchange.publish import PublishResult
from exchange.tables import ensure_schema, outbox
from exchange.webhooks.schedule import max_attempts
from exchange.webhooks.settings import WebhookSettings
from exchange.webhooks.subscriptions import PING_EVENT_TYPE, find_subscription, queue_ping
from tests.exchange.webhooks.conftest import (
    HUB_ID,
    Clock,
    city_hook,
    delivery_rows,
    grant,
    make_worker,
    publish_stations,
    rounds,
    subscribe,
    subscription_state,
)
from tests.exchange.webhooks.receivers import WebhookReceiver, serve


def _expected(results: Sequence[PublishResult]) -> list[tuple[str | None, int | None, int | None, int, int]]:
    return [(r.event_id, r.first_seq, r.last_seq, r.inserted, r.updated) for r in results]


def _seen(events: Sequence[Mapping[str, Any]]) -> list[tuple[str | None, int | None, int | None, int, int]]:
    return [
        (e["id"], e["data"]["first_seq"], e["data"]["last_seq"], e["data"]["inserted"], e["data"]["updated"])
        for e in events
    ]


def test_changes_arrive_signed_once_each_in_order_as_the_mqtt_event(
    hub: Engine, clock: Clock, receiver: tuple[WebhookReceiver, AppServer]
) -> None:
    state = receiver[0]
    before = publish_stations(hub, 0)  # published before the subscription: not sent
    subscription_id = city_hook(hub, receiver)
    assert state.secrets["city"].startswith("whsec_")
    published = [publish_stations(hub, 1), publish_stations(hub, 2, ["44010003"])]

    rounds(make_worker(hub, clock), clock, 3)

    events = state.events("city")
    assert state.refused == []
    assert _seen(events) == _expected(published)
    assert before.event_id not in {event["id"] for event in events}
    assert [item.message_id for item in state.received] == [r.event_id for r in published]
    assert {(e["type"], e["source"], e["subject"]) for e in events} == {
        (EVENT_TYPE, f"urn:waterhub:{HUB_ID}", "water_quality.stations")
    }
    assert [row["state"] for row in delivery_rows(hub, subscription_id)] == ["delivered", "delivered"]


def test_a_receiver_failing_then_recovering_gets_everything_once_in_order(
    hub: Engine, clock: Clock, receiver: tuple[WebhookReceiver, AppServer]
) -> None:
    state = receiver[0]
    subscription_id = city_hook(hub, receiver)
    state.plan.extend([500, 500, 503])
    published = [publish_stations(hub, version) for version in (1, 2, 3)]

    rounds(make_worker(hub, clock), clock, 12, lambda: clock.advance(minutes=2))

    assert _seen(state.events("city")) == _expected(published)
    # while the first event failed, nothing after it was tried: the failures all belong to it
    first = published[0].event_id
    assert [(message_id, status) for _, message_id, status in state.answered[:4]] == [
        (first, 500),
        (first, 500),
        (first, 503),
        (first, 200),
    ]
    rows = delivery_rows(hub, subscription_id)
    assert [(row["state"], row["attempts"]) for row in rows] == [("delivered", 4), ("delivered", 1), ("delivered", 1)]


def test_410_disables_the_subscription_and_nothing_more_is_sent(
    hub: Engine, clock: Clock, receiver: tuple[WebhookReceiver, AppServer]
) -> None:
    state = receiver[0]
    subscription_id = city_hook(hub, receiver)
    state.always = 410
    publish_stations(hub, 1)
    worker = make_worker(hub, clock)
    rounds(worker, clock, 2)
    assert subscription_state(hub, subscription_id)[0] == "disabled"
    asked = len(state.answered)

    publish_stations(hub, 2)
    rounds(worker, clock, 3, lambda: clock.advance(hours=1))

    assert asked == 1
    assert len(state.answered) == 1
    assert [row["state"] for row in delivery_rows(hub, subscription_id)] == ["dead"]


def test_a_receiver_down_for_an_hour_catches_up(
    hub: Engine, clock: Clock, receiver: tuple[WebhookReceiver, AppServer]
) -> None:
    state, server = receiver
    subscription_id = city_hook(hub, receiver)
    port = server.port
    server.stop()
    worker = make_worker(hub, clock)
    published = []
    for version in range(1, 7):  # a change every ten minutes while the receiver is down
        published.append(publish_stations(hub, version))
        rounds(worker, clock, 10, lambda: clock.advance(minutes=1))
    assert state.answered == []
    failing = delivery_rows(hub, subscription_id)
    assert failing[0]["attempts"] > 1
    assert str(failing[0]["last_error"]).startswith("ClientConnectorError: Cannot connect")

    back = serve(state.app(), port)
    try:
        settings = WebhookSettings()
        limit = clock.now + timedelta(seconds=settings.backoff_initial_s * 4**5)  # the longest wait so far
        while len(state.received) < len(published) and clock.now < limit:
            rounds(worker, clock, 1, lambda: clock.advance(minutes=1))
    finally:
        back.stop()

    assert _seen(state.events("city")) == _expected(published)
    assert all(row["state"] == "delivered" for row in delivery_rows(hub, subscription_id))


def test_a_delivery_failing_for_a_day_is_dead_lettered_and_the_next_goes_ahead(
    hub: Engine, clock: Clock, receiver: tuple[WebhookReceiver, AppServer]
) -> None:
    state = receiver[0]
    subscription_id = city_hook(hub, receiver)
    state.always = 500
    started = clock.now
    first, second = publish_stations(hub, 1), publish_stations(hub, 2)
    worker = make_worker(hub, clock)
    rounds(worker, clock, 1)
    while (head := delivery_rows(hub, subscription_id)[0])["state"] == "pending":
        clock.now = head["next_attempt_at"]  # straight to its next attempt
        rounds(worker, clock, 1)
    elapsed = clock.now - started
    state.always = None
    rounds(worker, clock, 2)

    dead, delivered = delivery_rows(hub, subscription_id)
    assert (dead["state"], dead["attempts"], dead["last_status"]) == ("dead", max_attempts(WebhookSettings()), 500)
    assert timedelta(hours=12) < elapsed < timedelta(hours=30)  # "about a day", with jitter drawing waits short
    assert delivered["state"] == "delivered"
    assert [e["id"] for e in state.events("city")] == [second.event_id]
    assert first.event_id != second.event_id


def test_a_filtered_subscriber_learns_only_of_its_rows(
    hub: Engine, clock: Clock, receiver: tuple[WebhookReceiver, AppServer]
) -> None:
    state, server = receiver
    publish_stations(hub, 0)
    tianhe = grant(hub, "tianhe-water", ["water_quality.stations"], district="天河区")
    city = grant(hub, "gz-water", ["water_quality.stations"])
    _, tianhe_secret = subscribe(hub, tianhe, f"{server.base_url}/hooks/tianhe")
    _, city_secret = subscribe(hub, city, f"{server.base_url}/hooks/city")
    state.secrets |= {"tianhe": str(tianhe_secret), "city": str(city_secret)}
    elsewhere = publish_stations(hub, 1, ["44010003", "44010004"])  # 越秀区 and 海珠区 only
    mixed = publish_stations(hub, 2, ["44010002", "44010003"])  # one 天河区 station, one 越秀区

    rounds(make_worker(hub, clock), clock, 3)

    assert [e["id"] for e in state.events("city")] == [elsewhere.event_id, mixed.event_id]
    (told,) = state.events("tianhe")
    assert told["id"] == mixed.event_id
    with hub.connect() as conn:
        seqs = dict(conn.execute(select(outbox.c.event_id, outbox.c.first_seq)).all())
    data = told["data"]
    assert isinstance(data, dict)
    # mixed changed 44010002 then 44010003 (frame order): the 天河区 station is the first of its two sequences
    assert (data["first_seq"], data["last_seq"], data["inserted"], data["updated"], data["deleted"]) == (
        seqs[mixed.event_id],
        seqs[mixed.event_id],
        0,
        1,
        0,
    )


def test_a_revoked_token_stops_its_subscriptions(
    hub: Engine, clock: Clock, receiver: tuple[WebhookReceiver, AppServer]
) -> None:
    state = receiver[0]
    subscription_id = city_hook(hub, receiver)
    with hub.connect() as conn:
        subscription = find_subscription(conn, subscription_id, "gz-water")
    assert subscription is not None
    revoke_token(hub, subscription.token_id, now=clock.now)
    publish_stations(hub, 1)

    rounds(make_worker(hub, clock), clock, 2)

    assert state.answered == []
    assert delivery_rows(hub, subscription_id) == []
    assert subscription_state(hub, subscription_id) == (
        "disabled",
        "its token was revoked or expired, or no longer grants the dataset",
    )


def test_a_ping_is_a_signed_cloudevent_sent_after_what_was_pending(
    hub: Engine, clock: Clock, receiver: tuple[WebhookReceiver, AppServer]
) -> None:
    state = receiver[0]
    subscription_id = city_hook(hub, receiver)
    published = publish_stations(hub, 1)
    worker = make_worker(hub, clock)
    state.always = 500
    rounds(worker, clock, 1)  # the change is queued and fails once
    with hub.connect() as conn:
        subscription = find_subscription(conn, subscription_id, "gz-water")
    assert subscription is not None
    queue_ping(hub, subscription, hub_id=HUB_ID, now=clock.now)
    state.always = None

    rounds(worker, clock, 4, lambda: clock.advance(minutes=1))

    events = state.events("city")
    assert [event["type"] for event in events] == [EVENT_TYPE, PING_EVENT_TYPE]
    assert events[0]["id"] == published.event_id
    assert events[1]["data"] == {"hub_id": HUB_ID, "subscription": subscription_id, "dataset": "water_quality.stations"}


def test_the_embedded_sqlite_hub_delivers_too(
    sqlite_engine: Engine, clock: Clock, receiver: tuple[WebhookReceiver, AppServer]
) -> None:
    ensure_schema(sqlite_engine)
    seed_departments(sqlite_engine, now=clock.now)
    state = receiver[0]
    subscription_id = city_hook(sqlite_engine, receiver)
    state.plan.append(500)
    published = [publish_stations(sqlite_engine, 1), publish_stations(sqlite_engine, 2)]

    rounds(make_worker(sqlite_engine, clock), clock, 5, lambda: clock.advance(minutes=1))

    assert _seen(state.events("city")) == _expected(published)
    assert [row["attempts"] for row in delivery_rows(sqlite_engine, subscription_id)] == [2, 1]
