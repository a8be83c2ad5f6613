"""SL 651 multi-packet transfers through ``commit_batch`` (what the running gateway calls per micro-batch): the
packets wait in the database across batches, the transfer is read once whole, stored once, and answered once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from connectors.devices import DeviceSimulator
from connectors.protocols import sl651
from exchange.gateway.writer import Message, commit_batch
from exchange.tables import change_log, device_packets, quarantine
from tests.exchange.gateway.conftest import register, stored_keys

NOW = datetime(2026, 11, 24, 8, tzinfo=UTC)


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


@pytest.mark.usefixtures("hub")
def test_a_transfer_split_over_batches_is_stored_once_when_whole(pg_engine: Engine) -> None:
    simulator = DeviceSimulator(seed=43, stations=1, mix=("sl651-river",))
    register(pg_engine, simulator)
    (message,) = simulator.messages(1)
    frame = sl651.decode_frame(message.payload)
    first, second, third, *rest = [sl651.encode_frame(p) for p in sl651.split_packets(frame, 20)]
    assert rest  # the report is long enough for more than three packets

    def send(run: str, *packets: bytes) -> tuple[int, int, int]:
        batch = [Message(i, 1, message.device.topic, packet, NOW) for i, packet in enumerate(packets)]
        outcome = commit_batch(pg_engine, batch, run_id=run, now=NOW)
        return outcome.published, outcome.quarantined, len(outcome.replies)

    as_text = ("7E7E " + third[2:].hex(" ").upper()).encode()  # as an MQTT bridge may pass a frame on
    assert send("a", first, as_text) == (0, 0, 0)
    assert stored_keys(pg_engine) == []
    assert _count(pg_engine, device_packets) == 2

    published, quarantined, replies = send("b", second, first, *rest)  # a resent first packet among them
    assert (published, quarantined, replies) == (len(message.keys), 0, 1)
    assert sorted(stored_keys(pg_engine)) == sorted(message.keys)
    assert _count(pg_engine, device_packets) == 0

    assert send("c", second)[:2] == (0, 0)  # redelivered after the transfer was read: stored nothing twice
    assert sorted(stored_keys(pg_engine)) == sorted(message.keys)
    assert _count(pg_engine, change_log) == len(message.keys)


@pytest.mark.usefixtures("hub")
def test_a_whole_transfer_that_does_not_read_is_quarantined_with_every_packet(pg_engine: Engine) -> None:
    simulator = DeviceSimulator(seed=47, stations=1, mix=("sl651-rain",))
    register(pg_engine, simulator)
    device = simulator.devices[0]
    header = sl651.Header(sl651.Direction.UP, 1, device.device_id, "0000", 0x32)
    garbled = sl651.Frame(header, sl651.RawBody(bytes(range(6)) * 3))  # too short a report after its serial
    packets = [sl651.encode_frame(packet) for packet in sl651.split_packets(garbled, 7)]
    batch = [Message(i, 1, device.topic, packet, NOW) for i, packet in enumerate(packets)]
    outcome = commit_batch(pg_engine, batch, run_id="garbled", now=NOW)
    assert (outcome.published, outcome.quarantined) == (0, 1)
    with pg_engine.connect() as conn:
        dataset, payload = conn.execute(select(quarantine.c.dataset, quarantine.c.payload)).one()
    assert dataset == "devices.sl651"
    assert json.loads(payload)["payload_hex"] == b"".join(packets).hex()
    assert _count(pg_engine, device_packets) == 0
