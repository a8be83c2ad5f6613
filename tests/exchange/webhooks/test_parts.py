"""The parts on their own: signatures against the reference library, the retry schedule, message packing."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from exchange.webhooks.schedule import max_attempts, nominal_wait_s, retry_at
from exchange.webhooks.settings import WebhookSettings
from exchange.webhooks.signing import new_secret, signed_headers
from exchange.webhooks.wecom import pack, read_answer

BODY = '{"specversion":"1.0","data":{"dataset":"水质"}}'.encode()


def test_a_signature_verifies_with_the_reference_library_and_nothing_else_does() -> None:
    secret = new_secret()
    headers = signed_headers(secret, "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == {"specversion": "1.0", "data": {"dataset": "水质"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})
    stale = signed_headers(secret, "msg_1", int(time.time()) - 3600, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, stale)


def test_the_schedule_grows_fourfold_to_its_cap_and_spans_about_a_day() -> None:
    settings = WebhookSettings()
    waits = [nominal_wait_s(settings, attempt) for attempt in range(1, max_attempts(settings))]
    assert waits[:4] == [5, 20, 80, 320]
    assert max(waits) == settings.backoff_max_s
    assert settings.retry_window_s <= sum(waits) < settings.retry_window_s + settings.backoff_max_s
    now = datetime(2026, 3, 1, tzinfo=UTC)
    rng = random.Random(3)
    for attempt in range(1, max_attempts(settings)):
        at = retry_at(settings, attempt, now, rng)
        assert at is not None
        assert nominal_wait_s(settings, attempt) / 2 <= (at - now).total_seconds() <= nominal_wait_s(settings, attempt)
    assert retry_at(settings, max_attempts(settings), now, rng) is None
    hinted = retry_at(settings, 1, now, rng, hint_s=120)
    assert hinted == now + timedelta(seconds=120)


def test_alerts_are_packed_in_order_and_one_too_long_is_cut_not_split() -> None:
    alerts = [f"### 告警 {index}\n> " + "水" * 100 for index in range(40)]
    content, count = pack(alerts)
    assert content == "\n\n".join(alerts[:count])
    assert len(content.encode()) <= 4096 < len("\n\n".join(alerts[: count + 1]).encode())
    huge, taken = pack(["长" * 3000, "next"])
    assert taken == 1
    assert len(huge.encode()) <= 4096
    assert huge.endswith("\n…")


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"errcode":0,"errmsg":"ok"}', "sent"),
        (200, b'{"errcode":45009,"errmsg":"api freq out of limit"}', "rate_limited"),
        (200, b'{"errcode":93000,"errmsg":"invalid webhook url"}', "gone"),
        (200, b'{"errcode":40058,"errmsg":"invalid"}', "failed"),
        (502, b"<html>bad gateway</html>", "failed"),
    ],
)
def test_robot_answers_are_read_as_wecom_means_them(status: int, body: bytes, outcome: str) -> None:
    assert read_answer(status, body).outcome == outcome
