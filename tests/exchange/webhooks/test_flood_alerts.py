"""Flood-warning alerts reach a WeCom group robot as markdown: one message when an alert opens, one when it closes,
none while it is merely updated by new readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from connectors.simulation import AppServer
from contracts.flood_warnings import FloodAlertRecord
from exchange.webhooks.alerts import ChangedRow, render_alerts
from tests.exchange.rows import publish
from tests.exchange.webhooks.conftest import ROBOT_KEY, Clock, grant, make_worker, rounds, subscribe
from tests.exchange.webhooks.receivers import WeComRobot

ALERTS = FloodAlertRecord.meta.key
OPENED = datetime(2026, 6, 10, 0, 30, tzinfo=UTC)  # 08:30 Beijing


def _alert(input_seq: int, **changes: object) -> dict[str, object]:
    return {
        "stcd": "81000002",
        "threshold_kind": "wrz",
        "opened_at": OPENED,
        "first_over_at": OPENED,
        "stnm": "北江2号水文站",
        "threshold": 10.0,
        "opened_level": 10.3,
        "peak_level": 10.3,
        "peak_at": OPENED,
        "latest_level": 10.3,
        "latest_at": OPENED,
        "status": "open",
        "closed_at": None,
        "close_confirmed_at": None,
        "input_seq": input_seq,
        **changes,
    }


def test_an_alert_is_told_when_it_opens_and_when_it_closes_not_as_it_rises(
    hub: Engine, clock: Clock, robot: tuple[WeComRobot, AppServer]
) -> None:
    state, server = robot
    prefix = f"{server.base_url}/cgi-bin/webhook/send"
    token = grant(hub, "gz-emergency", [ALERTS])
    subscribe(hub, token, f"{prefix}?key={ROBOT_KEY}", dataset=ALERTS, channel="wecom", prefix=prefix)
    worker = make_worker(hub, clock, wecom_url_prefix=prefix)

    publish(hub, FloodAlertRecord, [_alert(1)], run_id="d1")
    rounds(worker, clock, 1, lambda: clock.advance(minutes=1))
    peak = OPENED + timedelta(minutes=45)
    publish(
        hub,
        FloodAlertRecord,
        [_alert(2, peak_level=11.25, peak_at=peak, latest_level=11.25, latest_at=peak)],
        run_id="d2",
    )
    rounds(worker, clock, 1, lambda: clock.advance(minutes=1))
    closed = _alert(
        3,
        peak_level=11.25,
        peak_at=peak,
        latest_level=9.5,
        latest_at=OPENED + timedelta(hours=3),
        status="closed",
        closed_at=OPENED + timedelta(hours=2),
        close_confirmed_at=OPENED + timedelta(hours=3),
    )
    publish(hub, FloodAlertRecord, [closed], run_id="d3")
    rounds(worker, clock, 2, lambda: clock.advance(minutes=1))

    assert [message.content for message in state.messages] == [
        '### <font color="warning">超警戒水位：北江2号水文站（81000002）</font>\n'
        "> 开始 2026-06-10 08:30（北京时间），水位 10.30 m\n"
        "> 警戒水位 10.00 m，超出 0.30 m",
        '### <font color="info">超警戒水位解除：北江2号水文站（81000002）</font>\n'
        "> 2026-06-10 08:30 至 2026-06-10 10:30（北京时间）\n"
        "> 峰值 11.25 m（超出 1.25 m），2026-06-10 09:15\n"
        "> 警戒水位 10.00 m，回落后已持续一小时不超",
    ]


def test_a_withdrawn_alert_and_one_that_opened_and_closed_unseen_are_each_told_once() -> None:
    withdrawn = _alert(2, threshold_kind="grz", threshold=12.0, status="withdrawn")
    ended = _alert(2, threshold_kind="fsltdz", status="closed", closed_at=OPENED, close_confirmed_at=OPENED)
    alerts = render_alerts(ALERTS, [ChangedRow("update", withdrawn), ChangedRow("insert", ended)])
    assert [(alert.severity, alert.title) for alert in alerts] == [
        ("comment", "超保证水位撤销：北江2号水文站（81000002）"),
        ("info", "超汛限水位解除：北江2号水文站（81000002）"),
    ]
    assert render_alerts(ALERTS, [ChangedRow("update", _alert(2))]) == []  # a rise while open: no message
