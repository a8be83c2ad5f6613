"""One micro-batch of device messages → one transaction: rows judged and published, poison quarantined, packets of
SL 651 multi-packet transfers kept until their transfer is whole (``packets``), devices marked seen. The caller
acknowledges the batch's messages only after ``commit_batch`` returns.

Rows go through ``publish_frame``, the hub's one write path (upsert, change log, outbox), as rows: no frame is
built, since publish takes a micro-batch's few dozen rows row by row anyway. Within a batch two rows
with one key (a device's resend, a redelivery, two reports of one hour) are reduced to one once judged: the later
``updated_at`` wins, then the later message, as the quality runner keeps the latest of a key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from contracts import Contract
from exchange.gateway.mapping import Interpretation, Row, interpret, interpret_transfer, sl651_packet
from exchange.gateway.packets import gather_packet
from exchange.gateway.registry import Device, load_devices, record_seen
from exchange.gateway.topics import parse_up_topic
from exchange.publish import publish_frame
from exchange.quarantine import WithheldValue, quarantine_records, withhold_values
from quality.records import domain_reasons, judge_record

__all__ = ["BatchOutcome", "Message", "commit_batch"]


@dataclass(frozen=True)
class Message:
    """One MQTT delivery: ``mid`` and ``qos`` are what the acknowledgement needs."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: datetime


@dataclass(frozen=True)
class BatchOutcome:
    published: int
    quarantined: int
    replies: tuple[tuple[str, bytes], ...]
    changed_datasets: tuple[str, ...]
    changed_rows: dict[str, int]
    """Rows changed per dataset (inserted, updated or deleted), for the gateway's counters."""


def commit_batch(engine: Engine, messages: Sequence[Message], *, run_id: str, now: datetime) -> BatchOutcome:
    """Decode, judge and store ``messages`` in one transaction. A database error propagates with nothing written."""
    ids = {where.device_id for message in messages if (where := parse_up_topic(message.topic)) is not None}
    with engine.begin() as conn:
        known = load_devices(conn, ids)
        interpretations = [_interpret(conn, message, known) for message in messages]
        latest = _rows_by_contract(interpretations)
        published = quarantined = 0
        changed: list[str] = []
        changed_rows: dict[str, int] = {}
        for contract, rows in latest.items():
            good, withheld, bad = _judge(contract, rows)
            quarantined += quarantine_records(
                conn,
                dataset=contract.meta.key,
                contract_version=contract.meta.version,
                run_id=run_id,
                batch_id=run_id,
                entries=bad,
                now=now,
            )
            withhold_values(
                conn,
                dataset=contract.meta.key,
                contract_version=contract.meta.version,
                run_id=run_id,
                batch_id=run_id,
                values=withheld,
                now=now,
            )
            if good:
                result = publish_frame(conn, contract, good, run_id=run_id, now=now)
                published += result.changed
                if result.changed:
                    changed.append(contract.meta.key)
                    changed_rows[contract.meta.key] = result.changed
        for message, interpretation in zip(messages, interpretations, strict=True):
            if interpretation.rejected:
                where = parse_up_topic(message.topic)
                quarantined += quarantine_records(
                    conn,
                    dataset=f"devices.{where.protocol if where else 'unknown'}",
                    contract_version="-",
                    run_id=run_id,
                    batch_id=run_id,
                    entries=interpretation.rejected,
                    now=now,
                )
        seen: dict[str, datetime] = {}
        for message, interpretation in zip(messages, interpretations, strict=True):
            device_id = interpretation.device_id
            if device_id in known and not _is_poison(interpretation):
                seen[device_id] = max(seen.get(device_id, message.received_at), message.received_at)
        if record_seen(conn, known, seen, run_id=run_id, now=now) is not None:
            changed.append("devices.status")
    replies = tuple(reply for interpretation in interpretations for reply in interpretation.replies)
    return BatchOutcome(published, quarantined, replies, tuple(changed), changed_rows)


def _interpret(conn: Connection, message: Message, known: Mapping[str, Device]) -> Interpretation:
    """``mapping.interpret``, except that a packet of an SL 651 multi-packet transfer waits for the rest, and the
    packet that completes its transfer stands for the whole."""
    device = known.get(_device_id(message.topic) or "")
    speaks_sl651 = device is not None and device.protocol == "sl651"
    frame = sl651_packet(message.topic, message.payload) if speaks_sl651 else None
    if device is None or frame is None:
        return interpret(message.topic, message.payload, device, now=message.received_at)
    packets = gather_packet(conn, device.device_id, frame, message.payload, received_at=message.received_at)
    if packets is None:
        return Interpretation(device_id=device.device_id)  # held: nothing to store or answer yet
    return interpret_transfer(message.topic, packets, device, now=message.received_at)


def _device_id(topic: str) -> str | None:
    where = parse_up_topic(topic)
    return where.device_id if where else None


def _is_poison(interpretation: Interpretation) -> bool:
    return not interpretation.rows and not interpretation.replies and bool(interpretation.rejected)


def _rows_by_contract(interpretations: Sequence[Interpretation]) -> dict[type[Contract], list[Row]]:
    """Every row of the batch, per contract, in message order."""
    grouped: dict[type[Contract], list[Row]] = {}
    for interpretation in interpretations:
        for row in interpretation.rows:
            grouped.setdefault(row.contract, []).append(row)
    return grouped


def _judge(
    contract: type[Contract], rows: Sequence[Row]
) -> tuple[list[dict[str, object]], list[WithheldValue], list[tuple[tuple[str, ...], dict[str, object]]]]:
    """Published rows (one per key: the later ``updated_at``, then the later message, wins), the values withheld
    from them, and the records quarantined. Keys are compared once typed: two stamps a drifting clock put either
    side of the hour are one sample (``HourStart``), and publish refuses a frame that holds a key twice."""
    chosen: dict[tuple[object, ...], tuple[dict[str, object], list[WithheldValue]]] = {}
    bad: list[tuple[tuple[str, ...], dict[str, object]]] = []
    for row in rows:
        verdict = judge_record(contract, row.record)
        if verdict.row is None:
            bad.append((verdict.reasons, _jsonable(row.record)))
            continue
        key = tuple(verdict.row[name] for name in contract.meta.primary_key)
        held = chosen.get(key)
        if held is not None and _stamp(verdict.row) < _stamp(held[0]):
            continue
        withheld = [
            WithheldValue(_key_json(contract, verdict.row), factor, reasons, _jsonable(verdict.raw[factor]))
            for factor, reasons in verdict.withheld.items()
        ]
        chosen[key] = (verdict.row, withheld)
    good = [row for row, _ in chosen.values()]
    failing = domain_reasons(contract, good)
    for position in sorted(failing, reverse=True):
        bad.append((tuple(sorted(failing[position])), _jsonable(good.pop(position))))
    # Positions, not keys rendered as JSON: rendering every published row's key cost as much as judging its factors.
    withheld_kept = [
        value for position, (_, values) in enumerate(chosen.values()) if position not in failing for value in values
    ]
    return good, withheld_kept, bad


def _stamp(row: dict[str, object]) -> datetime:
    stamp = row.get("updated_at")
    return stamp if isinstance(stamp, datetime) else datetime.min.replace(tzinfo=UTC)


def _key_json(contract: type[Contract], row: dict[str, object]) -> str:
    import json

    return json.dumps([_jsonable_value(row[name]) for name in contract.meta.primary_key])


def _jsonable(record: dict[str, object]) -> dict[str, object]:
    return {name: _jsonable_value(value) for name, value in record.items()}


def _jsonable_value(value: object) -> object:
    from decimal import Decimal

    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
