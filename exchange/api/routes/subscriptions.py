"""``/subscriptions``: a department's webhooks and WeCom robots on the datasets shared with it, and their logs.

A subscription is made with the caller's token and is sent what that token's grant lets it read (see
``exchange.webhooks.fanout``). A department sees and manages its own subscriptions, and of those only the ones on
datasets the calling token is granted: any other answers 404, word for word as a subscription that does not exist,
and a dataset not granted is refused as unknown, so nothing here tells a department what others are given.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from exchange.api.deps import ConnectionDep, ContextDep, PrincipalDep, granted_dataset
from exchange.api.problems import Problem
from exchange.webhooks.subscriptions import (
    Subscription,
    SubscriptionError,
    create_subscription,
    delete_subscription,
    delivery_log,
    find_subscription,
    list_subscriptions,
    queue_ping,
)

__all__ = [
    "NewSubscription",
    "deliveries",
    "ping",
    "router",
    "subscribe",
    "subscription",
    "subscriptions",
    "unsubscribe",
]

router = APIRouter(tags=["subscriptions"])

SubscriptionId = Annotated[str, Path(description="The subscription's id, sub_…", max_length=40)]


class NewSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(max_length=200, description="Dataset key, e.g. water_quality.samples")
    channel: Literal["webhook", "wecom"] = Field(
        "webhook", description="webhook: signed CloudEvents (Standard Webhooks); wecom: alerts to a group robot"
    )
    url: str = Field(max_length=2000, description="Your receiver, or the robot's webhook address with its key")


def _missing(subscription_id: str) -> Problem:
    shown = subscription_id if len(subscription_id) <= 40 else f"{subscription_id[:40]}…"
    return Problem(404, "not-found", f"no subscription {shown!r} of yours; GET /subscriptions lists them")


def _own(context: ContextDep, principal: PrincipalDep, subscription_id: str) -> Subscription:
    with context.engine.connect() as conn:
        found = find_subscription(conn, subscription_id, principal.department)
    if found is None or found.dataset not in principal.grants:
        raise _missing(subscription_id)
    return found


@router.post("/subscriptions", status_code=201, summary="Subscribe to a dataset's changes")
def subscribe(
    request: NewSubscription, principal: PrincipalDep, context: ContextDep, conn: ConnectionDep
) -> dict[str, Any]:
    """A webhook answer carries its `whsec_` signing secret: it is shown this once."""
    dataset = granted_dataset(request.dataset, principal, conn)
    try:
        made, secret = create_subscription(
            context.engine,
            department=principal.department,
            token_id=principal.token_id,
            dataset=dataset.key,
            channel=request.channel,
            url=request.url,
            wecom_url_prefix=context.webhooks.wecom_url_prefix,
            now=context.clock(),
        )
    except SubscriptionError as exc:
        raise Problem(400, "invalid-subscription", str(exc)) from exc
    return {**made.as_json(), "secret": secret}


@router.get("/subscriptions", summary="Your department's subscriptions on the datasets shared with you")
def subscriptions(principal: PrincipalDep, context: ContextDep) -> dict[str, Any]:
    found = list_subscriptions(context.engine, principal.department, set(principal.grants))
    return {"subscriptions": [subscription.as_json() for subscription in found]}


@router.get("/subscriptions/{subscription_id}", summary="One subscription")
def subscription(subscription_id: SubscriptionId, principal: PrincipalDep, context: ContextDep) -> dict[str, Any]:
    return _own(context, principal, subscription_id).as_json()


@router.delete("/subscriptions/{subscription_id}", status_code=204, summary="Unsubscribe; nothing more is sent")
def unsubscribe(subscription_id: SubscriptionId, principal: PrincipalDep, context: ContextDep) -> Response:
    delete_subscription(context.engine, _own(context, principal, subscription_id).subscription_id)
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/ping",
    status_code=202,
    summary="Queue a test delivery, sent after what is already pending",
)
def ping(subscription_id: SubscriptionId, principal: PrincipalDep, context: ContextDep) -> dict[str, Any]:
    found = _own(context, principal, subscription_id)
    if found.state != "active":
        raise Problem(409, "subscription-disabled", f"{found.subscription_id} is disabled: {found.disabled_reason}")
    delivery_id = queue_ping(context.engine, found, hub_id=context.hub_id, now=context.clock())
    return {"delivery_id": delivery_id}


@router.get("/subscriptions/{subscription_id}/deliveries", summary="The delivery log, newest first")
def deliveries(
    subscription_id: SubscriptionId,
    principal: PrincipalDep,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most entries in this answer")] = 100,
    before: Annotated[int | None, Query(ge=1, description="Entries older than this delivery id (next page)")] = None,
) -> dict[str, Any]:
    found = _own(context, principal, subscription_id)
    entries = delivery_log(context.engine, found.subscription_id, limit=limit, before=before)
    return {
        "subscription": found.subscription_id,
        "deliveries": [entry.as_json() for entry in entries],
        "next_before": entries[-1].delivery_id if len(entries) == limit else None,
    }
