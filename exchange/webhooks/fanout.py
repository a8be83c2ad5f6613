"""Outbox → deliveries: each change event becomes one pending delivery per active subscription of its dataset.

This is the only way a change reaches a subscriber: the publish transaction writes its one outbox row, and this
step, run by the delivery worker, copies it into each subscriber's queue (``deliveries``) with that subscriber's
own state. MQTT's ``dispatched_at`` is left alone: it says what the broker has, not what each subscriber has.

What a subscriber is told follows its grant:

- unfiltered: the CloudEvent the MQTT path sends (``exchange.notify.cloud_event``), byte for byte the same data;
- filtered: the same event shape, but its sequence range and counts cover only the changed rows the filter lets
  through (deletes are never counted: a key alone cannot be checked against the filter, as on ``/changes``), and
  an event none of whose rows pass is not delivered at all; so a filtered subscriber cannot learn that rows
  outside its filter changed, nor how many;
- WeCom: the alerts the visible changed rows raise (``exchange.webhooks.alerts``), one delivery per alert so the
  worker can pack several into one message; an event that raises none sends nothing.

The rows are read as they are when the fan-out runs (the dataset table keeps each row's latest change, as the
compacted ``/changes`` feed does): a row changed again before its first event was fanned out is reported with
the later event. The worker fans out every round, so that window is about a second.

A subscription whose token was revoked or expired, or whose grant is gone, is disabled here with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, between, func, literal, select, update

from exchange.access.filters import conditions_from_json, sql_clause
from exchange.api.deps import published_contract
from exchange.db import among, upsert_insert
from exchange.errors import InvalidQueryError
from exchange.notify import cloud_event
from exchange.tables import (
    CHANGED_EVENT_TYPE,
    SEQ_COLUMN,
    change_log,
    dataset_table,
    deliveries,
    grants,
    outbox,
    subscriptions,
    tokens,
)
from exchange.webhooks.alerts import ChangedRow, alert_datasets, render_alerts, stale_alert

__all__ = ["fan_out"]


def fan_out(engine: Engine, *, hub_id: str, now: datetime) -> int:
    """Queue the outbox rows each active subscription has not been given yet; returns the deliveries queued."""
    with engine.begin() as conn:
        _disable_lapsed(conn, now)
        active = conn.execute(
            select(subscriptions, grants.c.row_filter)
            .join(
                grants,
                and_(grants.c.token_id == subscriptions.c.token_id, grants.c.dataset == subscriptions.c.dataset),
            )
            .where(subscriptions.c.state == "active", _has_news)
            .order_by(subscriptions.c.subscription_id)
            .with_for_update(skip_locked=True, of=subscriptions)
        ).all()
        by_dataset: dict[str, list[Mapping[str, Any]]] = {}
        for row in active:
            by_dataset.setdefault(row.dataset, []).append(row._asdict())
        queued: list[dict[str, object]] = []
        for dataset, group in by_dataset.items():
            queued += _dataset_deliveries(conn, dataset, group, hub_id=hub_id, now=now)
        _insert_deliveries(conn, queued)
    return len(queued)


def _insert_deliveries(conn: Connection, queued: Sequence[Mapping[str, Any]]) -> None:
    """One ``INSERT … SELECT`` per set of deliveries alike but for their subscriber: an unfiltered event goes to
    thousands of subscribers as the same message, and the database copies it for each of them far faster than
    the driver binds thousands of rows. Already queued (another worker got there first) is left as it is."""
    alike: dict[tuple[Any, ...], list[str]] = {}
    for row in queued:
        alike.setdefault(tuple(row[name] for name in _SHARED_COLUMNS), []).append(str(row["subscription_id"]))
    for shared, subscription_ids in alike.items():
        copies = select(
            subscriptions.c.subscription_id,
            *(
                literal(value, deliveries.c[name].type).label(name)
                for name, value in zip(_SHARED_COLUMNS, shared, strict=True)
            ),
        ).where(among(conn, subscriptions.c.subscription_id, subscription_ids))
        conn.execute(
            upsert_insert(conn, deliveries)
            .from_select(["subscription_id", *_SHARED_COLUMNS], copies)
            .on_conflict_do_nothing(index_elements=[deliveries.c.subscription_id, deliveries.c.message_id])
        )


_SHARED_COLUMNS = (
    "outbox_id",
    "message_id",
    "kind",
    "body",
    "first_seq",
    "last_seq",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
)


_has_news = (
    select(outbox.c.id)
    .where(outbox.c.dataset == subscriptions.c.dataset, outbox.c.id > subscriptions.c.fed_outbox_id)
    .exists()
)
"""Only subscriptions with outbox rows they were not given are read (and locked): most rounds find none."""


def _disable_lapsed(conn: Connection, now: datetime) -> None:
    valid = (
        select(grants.c.token_id)
        .join(tokens, tokens.c.token_id == grants.c.token_id)
        .where(
            grants.c.token_id == subscriptions.c.token_id,
            grants.c.dataset == subscriptions.c.dataset,
            tokens.c.revoked_at.is_(None),
            tokens.c.expires_at > now,
        )
    )
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.state == "active", ~valid.exists())
        .values(state="disabled", disabled_reason="its token was revoked or expired, or no longer grants the dataset")
    )


def _dataset_deliveries(
    conn: Connection, dataset: str, group: Sequence[Mapping[str, Any]], *, hub_id: str, now: datetime
) -> list[dict[str, object]]:
    newest = conn.scalar(select(func.max(outbox.c.id)).where(outbox.c.dataset == dataset))
    since = min(int(sub["fed_outbox_id"]) for sub in group)
    if newest is None or newest <= since:
        return []
    events = [
        row._asdict()
        for row in conn.execute(
            select(outbox).where(outbox.c.dataset == dataset, outbox.c.id > since, outbox.c.id <= newest)
        ).all()
    ]
    events.sort(key=lambda event: int(event["id"]))
    shared: dict[int, str] = {}
    queued: list[dict[str, object]] = []
    for sub in group:
        for event in (event for event in events if event["id"] > sub["fed_outbox_id"]):
            for message_id, body, seqs in _messages(conn, sub, event, shared, hub_id=hub_id):
                queued.append(
                    {
                        "subscription_id": sub["subscription_id"],
                        "outbox_id": event["id"],
                        "message_id": message_id,
                        "kind": "change",
                        "body": body,
                        "first_seq": seqs[0],
                        "last_seq": seqs[1],
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                )
    conn.execute(
        update(subscriptions)
        .where(among(conn, subscriptions.c.subscription_id, [sub["subscription_id"] for sub in group]))
        .values(fed_outbox_id=newest)
    )
    return queued


def _messages(
    conn: Connection, sub: Mapping[str, Any], event: Mapping[str, Any], shared: dict[int, str], *, hub_id: str
) -> list[tuple[str, str, tuple[int, int]]]:
    """(message id, body, seq range) of each delivery ``event`` makes for ``sub``; none when it tells it nothing."""
    event_id, row_filter = str(event["event_id"]), sub["row_filter"]
    if (event.get("event_type") or CHANGED_EVENT_TYPE) != CHANGED_EVENT_TYPE:
        # Not about rows (a stale source): it tells every subscriber of the dataset the same, filtered or not.
        seqs = (int(event["first_seq"]), int(event["last_seq"]))
        if sub["channel"] == "wecom":
            return [(event_id, stale_alert(event["dataset"], json.loads(event["detail"] or "{}")).markdown(), seqs)]
        return [(event_id, _event_json(event, hub_id), seqs)]
    if sub["channel"] == "wecom":
        if event["dataset"] not in alert_datasets():
            return []
        changed = _visible_changes(conn, event, row_filter)
        if changed is None:
            return []
        seqs = (int(event["first_seq"]), int(event["last_seq"]))
        alerts = render_alerts(event["dataset"], [ChangedRow(op, row) for _, op, row in changed])
        return [(f"{event_id}:{index}", alert.markdown(), seqs) for index, alert in enumerate(alerts)]
    if not row_filter:
        if event["id"] not in shared:
            shared[event["id"]] = _event_json(event, hub_id)
        return [(event_id, shared[event["id"]], (int(event["first_seq"]), int(event["last_seq"])))]
    changed = _visible_changes(conn, event, row_filter)
    if not changed:
        return []
    seq_values = [seq for seq, _, _ in changed]
    ops = [op for _, op, _ in changed]
    narrowed = {
        **event,
        "first_seq": min(seq_values),
        "last_seq": max(seq_values),
        "inserted": ops.count("insert"),
        "updated": ops.count("update"),
        "deleted": 0,
    }
    return [(event_id, _event_json(narrowed, hub_id), (min(seq_values), max(seq_values)))]


def _event_json(event: Mapping[str, Any], hub_id: str) -> str:
    return json.dumps(cloud_event(event, hub_id=hub_id), ensure_ascii=False, separators=(",", ":"))


def _visible_changes(
    conn: Connection, event: Mapping[str, Any], row_filter: str | None
) -> list[tuple[int, str, dict[str, Any]]] | None:
    """(seq, op, row) of the rows ``event`` changed that the grant's filter lets through, as they are now; None
    when the grant no longer fits the contract (nothing is sent rather than too much)."""
    contract = published_contract(str(event["dataset"]), str(event["contract_version"]))
    try:
        conditions = conditions_from_json(contract, row_filter)
    except InvalidQueryError:
        return None
    table = dataset_table(contract)
    seq = table.c[SEQ_COLUMN]
    fields = [table.c[spec.name] for spec in contract.field_specs()]
    statement = (
        select(seq, change_log.c.op, *fields)
        .select_from(table.join(change_log, and_(change_log.c.dataset == event["dataset"], change_log.c.seq == seq)))
        .where(between(seq, event["first_seq"], event["last_seq"]))
        .order_by(seq)
    )
    clause = sql_clause(table, conditions)
    if clause is not None:
        statement = statement.where(clause)
    return [
        (int(row[0]), str(row[1]), {column.name: value for column, value in zip(fields, row[2:], strict=True)})
        for row in conn.execute(statement)
    ]
