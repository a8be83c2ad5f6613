"""``/subscriptions``: a department manages only its own, only on datasets its token is granted; anything else is
404 in the very words an unknown one gets."""

from __future__ import annotations

import httpx
import pytest

from tests.exchange.api.conftest import Hub, grant

HOOK = "https://hooks.example.org/waterhub"
ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


def _create(hub: Hub, who: str, dataset: str, **extra: str) -> httpx.Response:
    with hub.client(who) as client:
        return client.post("/subscriptions", json={"dataset": dataset, "url": HOOK, **extra})


def _missing(subscription_id: str) -> dict[str, object]:
    return {
        "type": "urn:waterhub:problem:not-found",
        "title": "Not found",
        "status": 404,
        "detail": f"no subscription {subscription_id!r} of yours; GET /subscriptions lists them",
    }


def test_a_department_creates_lists_pings_reads_the_log_and_deletes(hub: Hub) -> None:
    made = _create(hub, "city", "water_quality.stations")
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["secret"].startswith("whsec_")
    assert (body["dataset"], body["channel"], body["url"], body["state"]) == (
        "water_quality.stations",
        "webhook",
        HOOK,
        "active",
    )
    subscription_id = body["id"]
    with hub.client("city") as client:
        listed = client.get("/subscriptions").json()["subscriptions"]
        one = client.get(f"/subscriptions/{subscription_id}").json()
        empty_log = client.get(f"/subscriptions/{subscription_id}/deliveries").json()["deliveries"]
        pinged = client.post(f"/subscriptions/{subscription_id}/ping")
        log = client.get(f"/subscriptions/{subscription_id}/deliveries").json()["deliveries"]
        deleted = client.delete(f"/subscriptions/{subscription_id}")
        after = client.get(f"/subscriptions/{subscription_id}")
        listed_after = client.get("/subscriptions").json()["subscriptions"]
    assert [item["id"] for item in listed] == [subscription_id]
    assert "secret" not in listed[0]
    assert "secret" not in one
    assert empty_log == []
    assert pinged.status_code == 202
    assert [(entry["id"], entry["kind"], entry["state"]) for entry in log] == [
        (pinged.json()["delivery_id"], "ping", "pending")
    ]
    assert deleted.status_code == 204
    assert after.status_code == 404
    assert listed_after == []


@pytest.mark.parametrize(("who", "dataset"), [("tianhe", "water_quality.samples"), ("nobody", "hydrology.rainfall")])
def test_a_dataset_not_granted_or_not_published_is_refused_as_unknown(hub: Hub, who: str, dataset: str) -> None:
    refused = _create(hub, who, dataset)
    unknown = _create(hub, who, "no.such_dataset")
    assert refused.status_code == unknown.status_code == 404
    assert refused.json()["detail"] == f"no dataset {dataset!r} is shared with you; GET /datasets lists yours"
    assert unknown.json()["detail"] == "no dataset 'no.such_dataset' is shared with you; GET /datasets lists yours"


def test_another_department_cannot_see_or_touch_a_subscription(hub: Hub) -> None:
    subscription_id = _create(hub, "city", "water_quality.samples").json()["id"]
    nonexistent = "sub_000000000000000000000000"
    with hub.client("eco") as client:  # eco is granted samples too, but it is not its subscription
        answers = {
            "get": client.get(f"/subscriptions/{subscription_id}"),
            "log": client.get(f"/subscriptions/{subscription_id}/deliveries"),
            "ping": client.post(f"/subscriptions/{subscription_id}/ping"),
            "delete": client.delete(f"/subscriptions/{subscription_id}"),
        }
        listed = client.get("/subscriptions").json()["subscriptions"]
        unknown = client.get(f"/subscriptions/{nonexistent}")
    for what, answer in answers.items():
        assert answer.status_code == 404, what
        assert answer.json() == _missing(subscription_id), what
    assert unknown.json() == _missing(nonexistent)
    assert listed == []
    with hub.client("city") as client:
        assert client.get(f"/subscriptions/{subscription_id}").status_code == 200  # the delete did nothing


def test_a_token_of_the_same_department_not_granted_the_dataset_does_not_see_it(hub: Hub) -> None:
    subscription_id = _create(hub, "city", "water_quality.stations").json()["id"]
    other = grant(hub.engine, hub.clock, "gz-water", ["water_quality.samples"])
    hub.tokens["city-samples"] = other.token
    with hub.client("city-samples") as client:
        assert client.get(f"/subscriptions/{subscription_id}").json() == _missing(subscription_id)
        assert client.get("/subscriptions").json()["subscriptions"] == []


@pytest.mark.parametrize(
    ("channel", "url", "words"),
    [
        ("webhook", "ftp://hooks.example.org/x", "http:// or https://"),
        ("webhook", "https://user:pw@hooks.example.org/x", "must not carry a user"),
        ("wecom", "https://hooks.example.org/send?key=abc", "WeCom group robot"),
    ],
)
def test_an_unusable_address_is_refused(hub: Hub, channel: str, url: str, words: str) -> None:
    with hub.client("city") as client:
        answer = client.post(
            "/subscriptions", json={"dataset": "water_quality.stations", "channel": channel, "url": url}
        )
    assert answer.status_code == 400
    assert answer.json()["type"] == "urn:waterhub:problem:invalid-subscription"
    assert words in answer.json()["detail"]


def test_a_wecom_robot_gets_no_secret_and_its_key_is_never_shown_again(hub: Hub) -> None:
    made = _create(hub, "city", "water_quality.stations", channel="wecom", url=ROBOT)
    assert made.status_code == 201, made.text
    assert made.json()["secret"] is None
    with hub.client("city") as client:
        listed = client.get("/subscriptions").json()["subscriptions"]
    assert listed[0]["url"] == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***"


def test_subscriptions_need_a_token(hub: Hub) -> None:
    with hub.client(None) as client:
        assert client.get("/subscriptions").status_code == 401
        assert client.post("/subscriptions", json={"dataset": "water_quality.stations", "url": HOOK}).status_code == 401
