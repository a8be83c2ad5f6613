"""SL 651 multi-packet transfers (reference 1.11): each packet is kept in ``device_packets`` until the transfer is
whole, then the packets are handed back to be read as one report and removed.

Packets arrive as separate MQTT messages, possibly in different micro-batches and across a restart, so they wait
in the database, written in the same transaction that acknowledges them: a packet is never held only in memory.
Packets are keyed by device, function, packet total and sequence (later packets carry no serial), so a resent
packet is kept once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select

from connectors.protocols import sl651
from exchange.db import upsert_insert
from exchange.tables import device_packets

__all__ = ["gather_packet"]


def gather_packet(
    conn: Connection, device_id: str, frame: sl651.Frame, payload: bytes, *, received_at: datetime
) -> list[bytes] | None:
    """Keep this packet; once its transfer is whole, every packet's payload in sequence order (and none kept)."""
    position = frame.header.packet
    if position is None:
        raise ValueError("a single-packet frame is no part of a transfer")
    transfer = {"device_id": device_id, "function": frame.header.function, "total": position.total}
    conn.execute(
        upsert_insert(conn, device_packets)
        .values(**transfer, sequence=position.sequence, payload=payload.hex(), received_at=received_at)
        .on_conflict_do_nothing()
    )
    same = [device_packets.c[name] == value for name, value in transfer.items()]
    held = (
        conn.execute(select(device_packets.c.payload).where(*same).order_by(device_packets.c.sequence)).scalars().all()
    )
    if len(held) < position.total:
        return None
    conn.execute(device_packets.delete().where(*same))
    return [bytes.fromhex(text) for text in held]
