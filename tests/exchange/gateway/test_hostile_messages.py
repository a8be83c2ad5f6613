"""No device message can stop the gateway: hostile payloads through the path the running gateway takes.

Hypothesis draws micro-batches of messages for freshly registered devices: random bytes, the simulator's frames
with bytes changed (and the checksum sometimes made valid again, so the content checks are reached), SL 651 reports
and HJ 212 packets with any elements, values and times the encoders can write, and the hub's JSON with anything JSON
can carry in its fields. ``writer.commit_batch`` (what ``Gateway`` calls for each batch) must not raise, and each
message must end as stored rows or quarantine entries, be a protocol message with nothing to store (a keep-alive
of SL 651), or wait in ``device_packets`` for the rest of its multi-packet transfer. Each example's devices and
stations are new, so what is stored or quarantined is traced back to its device by the station code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Literal

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from connectors.devices import DeviceSimulator
from connectors.protocols import DecodeError, hj212, sl651
from connectors.protocols.sl651 import crc16_modbus
from contracts.water_quality import FACTOR_CODES, WaterQualitySample
from exchange.gateway.mapping import interpret
from exchange.gateway.registry import Device, register_devices
from exchange.gateway.topics import up_topic
from exchange.gateway.writer import Message, commit_batch
from exchange.tables import dataset_table, device_packets, quarantine, withheld
from tests.connectors.protocols.test_sl651 import _reports
from tests.test_hostile_records import _HOSTILE, _ODD_TIMES

NOW = datetime(2026, 11, 24, 8, tzinfo=UTC)
_STATIONS = count(60_000_000)
_TEMPLATES = {
    device.protocol: message.payload
    for message in DeviceSimulator(seed=3, stations=4, mix=("sl651-river", "hj212", "json", "sl651-rain")).messages(4)
    for device in [message.device]
}
_NEAR_AN_HOUR = st.builds(
    lambda hour, seconds: datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=hour, seconds=seconds),
    st.integers(0, 2),
    st.integers(-90, 90),
)
"""Times a drifting clock gives one hour's sample: two of them in one batch may be one key once typed."""
_TIMES = _NEAR_AN_HOUR | st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(  # noqa: DTZ001
    lambda t: t.replace(microsecond=0, tzinfo=UTC)
)
_NUMBERS = st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**7), max_value=10**7)


def _mutated(template: bytes, edits: list[tuple[int, int]], reseal: bool) -> bytes:
    data = bytearray(template)
    for at, byte in edits:
        data[at % len(data)] = byte
    if reseal and template.startswith(b"\x7e\x7e"):
        data[-2:] = crc16_modbus(bytes(data[:-2])).to_bytes(2, "big")
    return bytes(data)


@st.composite
def _sl651(draw: st.DrawFn, device_id: str) -> bytes:
    report = draw(_reports())
    if draw(st.booleans()):  # the station guide names the topic's device, so the report is read
        items = [sl651.StationGuide(device_id, draw(st.sampled_from("PHK"))), *report.items]
        report = sl651.Report(report.serial, report.sent_at, tuple(items))
    function = draw(st.sampled_from(sorted(sl651.REPORT_FUNCTIONS)))
    header = sl651.Header(sl651.Direction.UP, 1, device_id, "0000", function)
    frame = sl651.Frame(header, report)
    if draw(st.booleans()):  # one packet of the report sent as a multi-packet transfer
        frame = draw(st.sampled_from(sl651.split_packets(frame, draw(st.integers(1, 30)))))
    return sl651.encode_frame(frame)


@st.composite
def _hj212(draw: st.DrawFn, device_id: str) -> bytes:
    codes = draw(st.lists(st.sampled_from(sorted(FACTOR_CODES)) | st.from_regex(r"\A[a-z][0-9]{5}\Z"), max_size=4))
    readings = tuple(
        hj212.Reading(code, avg=draw(st.none() | _NUMBERS), flag=draw(st.sampled_from("NFMSDCTBHPx")))
        for code in dict.fromkeys(codes)
    )
    packet = hj212.Packet(
        st="21",
        cn=draw(st.sampled_from(["2061", "2011", "2051", "2031", "1011"])),
        mn=device_id,
        qn=draw(st.none() | st.from_regex(r"\A[0-9]{17}\Z")),
        pw="123456",
        flag=draw(st.sampled_from([4, 5])),
        data_time=draw(_TIMES),
        readings=readings,
    )
    return hj212.encode_packet(packet).encode("ascii")


@st.composite
def _json(draw: st.DrawFn, device_id: str) -> bytes:
    codes = st.sampled_from(["Z", "Q", "PN05", "P1", "PD", "ZU", "QA", "VA", "w01001", "w21003", "x1"])
    reading = _HOSTILE | _NUMBERS.map(float) | st.fixed_dictionaries({"value": _HOSTILE, "flag": _HOSTILE})
    report: dict[str, object] = {
        "station": draw(st.just(device_id) | _HOSTILE),
        "observed_at": draw(_ODD_TIMES | _HOSTILE),
        "readings": draw(st.dictionaries(codes, reading, max_size=3)),
    }
    if draw(st.booleans()):
        report["device_time"] = draw(_ODD_TIMES)
    try:
        return json.dumps(report).encode("utf-8", "surrogatepass")
    except ValueError:  # nesting too deep for the encoder: the bytes are hostile enough
        return b'{"station": ' * 2000


@st.composite
def _message(draw: st.DrawFn, protocol: Literal["sl651", "hj212", "json"], device_id: str) -> bytes:
    template = _TEMPLATES[protocol]
    mutated = st.builds(
        _mutated,
        st.just(template),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
        st.booleans(),
    )
    drawn = {"sl651": _sl651(device_id), "hj212": _hj212(device_id), "json": _json(device_id)}[protocol]
    return draw(st.binary(max_size=200) | mutated | drawn)


def _device(protocol: str) -> Device:
    station = f"{next(_STATIONS)}"
    device_id = {"sl651": f"00{station}", "hj212": f"HOSTILE{station}", "json": f"J{station}"}[protocol]
    return Device(device_id, protocol, station, 3600)  # type: ignore[arg-type]  # one of the three


@st.composite
def _batch(draw: st.DrawFn) -> list[tuple[Device, bytes]]:
    """A few devices, each sending one message or several (whose keys may meet within the batch)."""
    protocols = draw(st.lists(st.sampled_from(["sl651", "hj212", "json"]), min_size=1, max_size=3))
    devices = [_device(protocol) for protocol in protocols]
    senders = draw(st.lists(st.sampled_from(devices), min_size=1, max_size=6))
    return [(device, draw(_message(device.protocol, device.device_id))) for device in senders]


_SETTINGS = settings(
    max_examples=40,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example commits to PostgreSQL: no shrinking
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.usefixtures("hub")
@_SETTINGS
@given(batch=_batch())
def test_every_hostile_message_is_stored_or_quarantined(pg_engine: Engine, batch: list[tuple[Device, bytes]]) -> None:
    _register(pg_engine, {device for device, _ in batch})
    messages = [
        Message(mid, 1, up_topic(device.protocol, device.device_id), payload, NOW + timedelta(seconds=mid))
        for mid, (device, payload) in enumerate(batch)
    ]
    commit_batch(pg_engine, messages, run_id=f"hostile:{uuid.uuid4().hex[:8]}", now=NOW)  # raises nothing

    for (device, payload), message in zip(batch, messages, strict=True):
        meant = interpret(message.topic, payload, device, now=message.received_at)
        quarantined = _quarantined(pg_engine, device.station_code, message.topic)
        for contract in {row.contract for row in meant.rows}:
            stored = _stored(pg_engine, contract, device.station_code)
            assert stored or contract.meta.key in quarantined, f"{contract.meta.key} rows of {payload!r} vanished"
        if not meant.rows:
            accounted = quarantined or _keep_alive(payload) or _held(pg_engine, device.device_id, payload)
            assert accounted, f"{payload!r} neither stored, quarantined nor held for its transfer"


def _register(engine: Engine, network: Iterable[Device]) -> None:
    with engine.begin() as conn:
        register_devices(conn, network, expected_interval_s=3600, now=NOW)


def _keep_alive(payload: bytes) -> bool:
    """An SL 651 link report (function 2F) says only that the station is there: nothing to store."""
    try:
        return sl651.decode_frame(payload).header.function == 0x2F
    except DecodeError:
        return False


def _held(engine: Engine, device_id: str, payload: bytes) -> bool:
    """A packet of a multi-packet transfer waits for the rest of it."""
    with engine.connect() as conn:
        held = conn.execute(select(device_packets.c.payload).where(device_packets.c.device_id == device_id))
        return payload.hex() in held.scalars().all()


def _stored(engine: Engine, contract: type, station: str) -> int:
    table = dataset_table(contract)
    column = table.c[contract.meta.primary_key[0]]  # type: ignore[attr-defined]  # a contract's station field
    with engine.connect() as conn:
        return len(conn.execute(select(column).where(column == station)).all())


def _quarantined(engine: Engine, station: str, topic: str) -> set[str]:
    """Datasets holding a quarantine entry of this message: its topic or its station is in the entry."""
    with engine.connect() as conn:
        rows = conn.execute(select(quarantine.c.dataset, quarantine.c.payload)).all()
    return {dataset for dataset, payload in rows if topic in payload or f'"{station}"' in payload}


def _hourly(device: Device, sampled_at: datetime, sent_at: str, ph: str) -> Message:
    packet = hj212.Packet(
        st="21",
        cn="2061",
        mn=device.device_id,
        qn=sent_at,
        pw="123456",
        flag=4,
        data_time=sampled_at,
        readings=(hj212.Reading("w01001", avg=Decimal(ph), flag="N"),),
    )
    payload = hj212.encode_packet(packet).encode("ascii")
    return Message(1, 1, up_topic("hj212", device.device_id), payload, NOW)


@pytest.mark.usefixtures("hub")
def test_two_stamps_of_one_hour_in_one_batch_are_one_sample(pg_engine: Engine) -> None:
    """A drifting logger clock stamps one hour's sample a second after the hour, then its resend a second before
    (trap 20): the contract reads both as the 08:00 sample, so they are one row, the later sent winning."""
    device = _device("hj212")
    _register(pg_engine, [device])
    hour = datetime(2026, 11, 1, 0, tzinfo=UTC)  # 08:00 in Beijing
    late = _hourly(device, hour + timedelta(seconds=1), "20261101090500000", "7.1")
    early = _hourly(device, hour - timedelta(seconds=1), "20261101091000000", "7.4")
    outcome = commit_batch(pg_engine, [late, early], run_id="drift", now=NOW)
    assert (outcome.published, outcome.quarantined) == (1, 0)
    table = dataset_table(WaterQualitySample)
    with pg_engine.connect() as conn:
        rows = conn.execute(select(table.c.sampled_at, table.c.ph)).all()
    assert [tuple(row) for row in rows] == [(hour, 7.4)]


@pytest.mark.usefixtures("hub")
def test_an_impossible_reading_is_withheld_and_its_sample_published(pg_engine: Engine) -> None:
    """pH 99 cannot be (the contract's range is 0-14): the factor is withheld with the value as sent, exactly as
    decoded, and the rest of the sample is published."""
    device = _device("hj212")
    _register(pg_engine, [device])
    hour = datetime(2026, 11, 1, 0, tzinfo=UTC)
    outcome = commit_batch(pg_engine, [_hourly(device, hour, "20261101090500000", "99.125")], run_id="ph", now=NOW)
    assert outcome.published == 1
    with pg_engine.connect() as conn:
        kept = conn.execute(select(withheld.c.factor, withheld.c.raw)).all()
        ph = conn.execute(select(dataset_table(WaterQualitySample).c.ph)).scalar_one()
    assert ph is None
    assert [(factor, json.loads(raw)["ph"]) for factor, raw in kept] == [("ph", "99.125")]


@pytest.mark.usefixtures("hub")
def test_a_sample_a_domain_rule_quarantines_keeps_no_withheld_value(pg_engine: Engine) -> None:
    """Both samples carry pH 99 (withheld); the first was reported before its hour was over, so the domain rule
    quarantines it whole: only the published sample's pH is kept as withheld, under its own key."""
    device = _device("hj212")
    _register(pg_engine, [device])
    early_report = _hourly(device, datetime(2026, 11, 1, 2, tzinfo=UTC), "20261101100500000", "99")  # 10:05 of 10:00
    on_time = _hourly(device, datetime(2026, 11, 1, 0, tzinfo=UTC), "20261101090500000", "99")  # 09:05 of 08:00
    outcome = commit_batch(pg_engine, [early_report, on_time], run_id="domain", now=NOW)
    assert (outcome.published, outcome.quarantined) == (1, 1)
    with pg_engine.connect() as conn:
        kept = conn.execute(select(withheld.c.key, withheld.c.factor)).all()
        reasons = conn.execute(select(quarantine.c.reasons)).scalars().all()
    assert [(json.loads(key), factor) for key, factor in kept] == [
        ([device.station_code, "2026-11-01T00:00:00+00:00"], "ph")
    ]
    assert [json.loads(text) for text in reasons] == [["updated_before_sample_ended"]]
