"""WeCom group robots: device-offline alerts as markdown, packed and paced under the robot's 20 messages a
minute, against a local robot that answers with WeCom's errcodes and enforces its limits on the test's clock."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import Engine, select, update

from connectors.simulation import AppServer
from contracts import get_contract
from contracts.devices import DeviceStatus
from exchange.gateway.registry import load_devices, mark_offline, record_seen, register_device
from exchange.tables import dataset_table, devices
from exchange.webhooks.alerts import alert_datasets
from exchange.webhooks.subscriptions import find_subscription, queue_ping
from exchange.webhooks.wecom import MAX_CONTENT_BYTES
from tests.exchange.webhooks.conftest import (
    HUB_ID,
    ROBOT_KEY,
    Clock,
    delivery_rows,
    grant,
    make_worker,
    rounds,
    subscribe,
    subscription_state,
)
from tests.exchange.webhooks.receivers import WeComRobot

KEY = ROBOT_KEY
INTERVAL_S = 300


def _prefix(server: AppServer) -> str:
    return f"{server.base_url}/cgi-bin/webhook/send"


def _subscribe_robot(hub: Engine, server: AppServer) -> str:
    token = grant(hub, "gz-emergency", ["devices.status"])
    prefix = _prefix(server)
    subscription_id, secret = subscribe(
        hub, token, f"{prefix}?key={KEY}", dataset="devices.status", channel="wecom", prefix=prefix
    )
    assert secret is None
    return subscription_id


def _devices(hub: Engine, clock: Clock, count: int) -> list[str]:
    """``count`` devices that reported at the clock's time; their ids in registration order."""
    ids = [f"rtu-{index:04d}" for index in range(count)]
    with hub.begin() as conn:
        for device_id in ids:
            register_device(
                conn, device_id=device_id, protocol="json", station_code="44010001", expected_interval_s=INTERVAL_S
            )
        conn.execute(update(devices).values(last_seen_at=clock.now))
    return ids


def _go_offline(hub: Engine, clock: Clock) -> None:
    clock.advance(seconds=2 * INTERVAL_S + 1)
    with hub.begin() as conn:
        mark_offline(conn, run_id="offline-check", now=clock.now)


def _published_order(hub: Engine) -> list[str]:
    """Device ids in the order their latest change was published (the dataset's own sequence)."""
    table = dataset_table(DeviceStatus)
    with hub.connect() as conn:
        return list(conn.scalars(select(table.c.device_id).order_by(table.c._seq)))


def _alerted(robot: WeComRobot, title: str) -> list[str]:
    return [found for message in robot.messages for found in re.findall(rf"{title}：(rtu-\d+)", message.content)]


def test_every_renderer_is_for_a_registered_dataset() -> None:
    for dataset in alert_datasets():
        assert get_contract(dataset).meta.key == dataset


def test_many_offline_devices_arrive_packed_in_order_within_twenty_messages_a_minute(
    hub: Engine, clock: Clock, robot: tuple[WeComRobot, AppServer]
) -> None:
    state, server = robot
    subscription_id = _subscribe_robot(hub, server)
    ids = _devices(hub, clock, 900)
    _go_offline(hub, clock)
    worker = make_worker(hub, clock, wecom_url_prefix=_prefix(server))

    for _ in range(600):
        rounds(worker, clock, 1, lambda: clock.advance(seconds=1))
        if len(_alerted(state, "设备离线")) >= len(ids):
            break

    assert _alerted(state, "设备离线") == _published_order(hub)
    assert sorted(_alerted(state, "设备离线")) == ids
    assert set(state.errcodes) == {0}  # never over the limit, never too long
    assert len(state.messages) > 20  # so the limit had to be kept
    times = [message.at for message in state.messages]
    assert max(sum(1 for t in times if start <= t < start + timedelta(minutes=1)) for start in times) <= 20
    assert all(len(message.content.encode()) <= MAX_CONTENT_BYTES for message in state.messages)
    assert "最后上报" in state.messages[0].content
    assert all(row["state"] == "delivered" for row in delivery_rows(hub, subscription_id))


def test_a_robot_over_its_limit_is_tried_again_after_the_minute_and_nothing_is_lost(
    hub: Engine, clock: Clock, robot: tuple[WeComRobot, AppServer]
) -> None:
    state, server = robot
    _subscribe_robot(hub, server)
    ids = _devices(hub, clock, 3)
    _go_offline(hub, clock)
    state.plan.append(45009)  # another sender spent the robot's minute
    worker = make_worker(hub, clock, wecom_url_prefix=_prefix(server))
    refused_at = clock.now

    rounds(worker, clock, 30, lambda: clock.advance(seconds=5))

    assert state.errcodes[0] == 45009
    assert _alerted(state, "设备离线") == _published_order(hub)
    assert sorted(_alerted(state, "设备离线")) == ids
    assert state.messages[0].at >= refused_at + timedelta(minutes=1)


def test_a_device_coming_back_closes_its_alert(hub: Engine, clock: Clock, robot: tuple[WeComRobot, AppServer]) -> None:
    state, server = robot
    _subscribe_robot(hub, server)
    (device_id,) = _devices(hub, clock, 1)
    worker = make_worker(hub, clock, wecom_url_prefix=_prefix(server))
    _go_offline(hub, clock)
    rounds(worker, clock, 1, lambda: clock.advance(minutes=1))
    with hub.begin() as conn:
        record_seen(conn, load_devices(conn, [device_id]), {device_id: clock.now}, run_id="back", now=clock.now)

    rounds(worker, clock, 3, lambda: clock.advance(minutes=1))

    assert _alerted(state, "设备离线") == [device_id]
    assert _alerted(state, "设备恢复") == [device_id]
    assert 'color="warning"' in state.messages[0].content
    assert 'color="info"' in state.messages[1].content


def test_a_robot_whose_key_is_gone_disables_the_subscription(
    hub: Engine, clock: Clock, robot: tuple[WeComRobot, AppServer]
) -> None:
    state, server = robot
    subscription_id = _subscribe_robot(hub, server)
    state.keys.clear()  # the robot was removed from its group
    _devices(hub, clock, 2)
    _go_offline(hub, clock)

    rounds(make_worker(hub, clock, wecom_url_prefix=_prefix(server)), clock, 3, lambda: clock.advance(minutes=1))

    assert state.errcodes == [93000]
    assert subscription_state(hub, subscription_id)[0] == "disabled"


def test_a_ping_reaches_the_robot_as_markdown(hub: Engine, clock: Clock, robot: tuple[WeComRobot, AppServer]) -> None:
    state, server = robot
    subscription_id = _subscribe_robot(hub, server)
    with hub.connect() as conn:
        subscription = find_subscription(conn, subscription_id, "gz-emergency")
    assert subscription is not None
    queue_ping(hub, subscription, hub_id=HUB_ID, now=clock.now)

    rounds(make_worker(hub, clock, wecom_url_prefix=_prefix(server)), clock, 2)

    assert [message.content for message in state.messages] == [
        f'### <font color="comment">waterhub 测试消息</font>\n> 订阅 {subscription_id} · devices.status'
    ]
