"""What one device message means for the hub: contract rows, readings to quarantine, and the replies it asks for.

Pure functions of the message and the device's registry entry, so a redelivered message means exactly what it
meant the first time. Observations are keyed by station, element and observation time (trap 8); in the SL 323
tables that is a column of the row keyed (``stcd``, ``tm``), so the readings of one message that share a time are
one row.

Mapping choices (reference 1.9, marked [P] there), each made once here:

- Rainfall: ``F4`` and ``PN05`` give five-minute ``drp`` (``intv`` 0.05), ``P1`` hourly ``drp`` (``intv`` 1.00), ``PD``
  the day's total ``dyp``. Where a five-minute and an hourly value share a time, the five-minute one is kept: the
  hourly value is their sum, and SL 323 keys the table by time alone.
- Levels and flows go to the reservoir table at a reservoir (station type ``K``, or a message with ``ZU``, ``ZB``
  or ``QA``) and to the river table elsewhere. ``F5`` (DRZ1) fills the stage at its five-minute times; an explicit
  ``Z``/``ZU`` at the same time wins.
- HJ 212 hourly data (2061) becomes a ``water_quality.samples`` row (``-Avg`` and ``-Flag`` per factor). Other
  packets (real-time, minute and daily data, status and run-time uploads, any other command) have no dataset yet
  and are quarantined whole, to be replayed when one exists; the answer they ask for is still sent.
- A row's ``updated_at`` is when the device sent it (SL 651 send time, HJ 212 ``QN``, JSON ``device_time``, else the
  observation time), never when the hub received it: a redelivery is then the same row, and a later correction
  from another system is newer.
- Elements with no column (battery voltage, status word...) are not published; a report carrying nothing else is
  quarantined with ``no_mapped_element`` so it is not silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

from connectors.protocols import BadFieldError, BadFrameError, DecodeError, device_json, hj212, sl651
from contracts import Contract
from contracts.hydrology import RainfallRecord, ReservoirRecord, RiverRecord
from contracts.types import BEIJING, as_utc
from contracts.water_quality import FACTOR_CODES, WaterQualitySample
from exchange.gateway.registry import Device
from exchange.gateway.topics import DeviceTopic, down_topic, parse_up_topic

__all__ = ["Interpretation", "Row", "interpret", "interpret_transfer", "sl651_packet"]

_FIVE_MINUTES: Final = Decimal("0.05")
_ONE_HOUR: Final = Decimal("1.00")
_RESERVOIR_MARKERS: Final = frozenset({"ZU", "ZB", "QA"})
_RAINFALL: Final[Mapping[str, tuple[str, Decimal | None, int]]] = {
    # mnemonic: (column, intv, priority); a higher priority wins a shared time
    "P1": ("drp", _ONE_HOUR, 0),
    "DRP": ("drp", _FIVE_MINUTES, 1),
    "PN05": ("drp", _FIVE_MINUTES, 2),
    "PD": ("dyp", None, 2),
}
_RIVER: Final[Mapping[str, tuple[str, int]]] = {"DRZ1": ("z", 0), "Z": ("z", 1), "Q": ("q", 1), "AC": ("xsa", 1)}
_RIVER_VELOCITY: Final = {"VA": ("xsavv", 1)}
_RESERVOIR: Final[Mapping[str, tuple[str, int]]] = {
    "DRZ1": ("rz", 0),
    "ZU": ("rz", 1),
    "ZB": ("blrz", 1),
    "Q": ("inq", 1),
    "QA": ("otq", 1),
}
_DATA_HOURLY: Final = "2061"
_KEEP_ALIVE: Final = 0x2F


@dataclass(frozen=True)
class Row:
    """A record for ``contract`` by field name, raw values (Decimal as decoded): quality judges it next."""

    contract: type[Contract]
    record: dict[str, object]


@dataclass(frozen=True)
class Interpretation:
    """``rows`` to judge and publish; ``rejected`` (reasons, payload) to quarantine under ``devices.<protocol>``;
    ``replies`` (topic, payload) the protocol requires, sent once the message is committed."""

    rows: tuple[Row, ...] = ()
    rejected: tuple[tuple[tuple[str, ...], dict[str, object]], ...] = ()
    replies: tuple[tuple[str, bytes], ...] = ()
    device_id: str | None = field(default=None)


def interpret(topic: str, payload: bytes, device: Device | None, *, now: datetime) -> Interpretation:
    """Everything one message means; poison (bad topic, unknown device, undecodable, spoofed) is one rejection."""
    where = parse_up_topic(topic)
    if where is None:
        return _poison(topic, payload, "bad_topic", "not waterhub/devices/<sl651|hj212|json>/<device id>/up")
    if device is None or device.protocol != where.protocol:
        return _poison(
            topic, payload, "unknown_device", f"no {where.protocol} device {where.device_id} in the registry"
        )
    if where.protocol == "sl651":
        return _guarded(topic, payload, where, lambda: _sl651(where, _frame(payload), payload, device, now))
    if where.protocol == "hj212":
        return _guarded(topic, payload, where, lambda: _hj212(where, payload, device, now))
    return _guarded(topic, payload, where, lambda: _json(where, payload, device))


def sl651_packet(topic: str, payload: bytes) -> sl651.Frame | None:
    """The frame, when ``payload`` on an SL 651 uplink is one packet of a multi-packet transfer (reference 1.11):
    it means something only with the rest (``interpret_transfer``). None for anything else, poison included."""
    where = parse_up_topic(topic)
    if where is None or where.protocol != "sl651":
        return None
    try:
        raw = sl651.frame_bytes(_hex_text_or_bytes(payload))
        if raw[13:14] != bytes([sl651.StartChar.SYN]):  # what starts the body of a packet of a transfer
            return None
        frame = sl651.decode_frame(raw)
    except DecodeError:
        return None
    return frame if frame.header.packet is not None and frame.header.packet.total > 1 else None


def interpret_transfer(topic: str, packets: Sequence[bytes], device: Device, *, now: datetime) -> Interpretation:
    """What a whole SL 651 multi-packet transfer means (``packets``: each as received), read as one report."""
    where = DeviceTopic("sl651", device.device_id)
    payload = b"".join(packets)

    def read() -> _Found:
        frame = sl651.join_packets([_frame(packet) for packet in packets])
        return _sl651(where, frame, payload, device, now)

    return _guarded(topic, payload, where, read)


def _guarded(topic: str, payload: bytes, where: DeviceTopic, read: Callable[[], _Found]) -> Interpretation:
    try:
        rows, rejected, replies = read()
    except DecodeError as exc:
        return _poison(topic, payload, exc.reason, str(exc))
    except _SpoofedError as exc:
        return _poison(topic, payload, "station_address_mismatch", str(exc))
    entries = tuple((reasons, {"topic": topic, **detail}) for reasons, detail in rejected)
    return Interpretation(tuple(rows), entries, tuple(replies), where.device_id)


class _SpoofedError(Exception):
    """The frame names another station than the topic's device: a device (or its credentials) misused."""


_Found = tuple[list[Row], list[tuple[tuple[str, ...], dict[str, object]]], list[tuple[str, bytes]]]


def _poison(topic: str, payload: bytes, reason: str, detail: str) -> Interpretation:
    where = parse_up_topic(topic)
    entry: dict[str, object] = {"topic": topic, "payload_hex": payload.hex(), "detail": detail}
    return Interpretation(rejected=(((reason,), entry),), device_id=where.device_id if where else None)


def _frame(payload: bytes) -> sl651.Frame:
    return sl651.decode_frame(_hex_text_or_bytes(payload))


def _sl651(where: DeviceTopic, frame: sl651.Frame, payload: bytes, device: Device, now: datetime) -> _Found:
    header = frame.header
    if header.remote_address != where.device_id:
        raise _SpoofedError(f"frame from station {header.remote_address} on device {where.device_id}'s topic")
    if header.direction is not sl651.Direction.UP:
        raise BadFrameError("sl651", "a downlink frame on an uplink topic", offset=11)
    body = frame.body
    if not isinstance(body, sl651.Report):
        unsupported: dict[str, object] = {"payload_hex": payload.hex(), "detail": f"function {header.function:02X}"}
        return [], [(("sl651_unsupported_function",), unsupported)], []
    station = body.station
    if station is not None and station.address != where.device_id:
        raise _SpoofedError(f"report of station {station.address} on device {where.device_id}'s topic")
    try:
        observations = body.observations()
    except ValueError as exc:
        raise BadFieldError("sl651", str(exc), offset=None) from None
    reply = sl651.encode_frame(sl651.acknowledgement(frame, sent_at=now.replace(microsecond=0)))
    replies = [(down_topic("sl651", where.device_id), reply)]
    if header.function == _KEEP_ALIVE:
        return [], [], []
    named = [(obs.mnemonic or obs.identifier, obs.value, obs.observed_at) for obs in observations]
    reservoir = (station is not None and station.station_type == "K") or any(
        m in _RESERVOIR_MARKERS for m, _, _ in named
    )
    rows = _hydrology_rows(device.station_code, named, reservoir, updated_at=body.sent_at, source="device:sl651")
    if not rows:  # nothing mapped, or nothing sent at all: kept, not silently dropped
        detail: dict[str, object] = {"payload_hex": payload.hex(), "detail": "no element of this report has a column"}
        return [], [(("no_mapped_element",), detail)], replies
    return rows, [], replies


def _hex_text_or_bytes(payload: bytes) -> bytes | str:
    """RTUs behind MQTT bridges send the frame as bytes or as its hex text (reference 1.1); text starts ``7E7E``."""
    head = payload[:4].upper()
    return payload.decode("ascii", "replace") if head == b"7E7E" else payload


def _hydrology_rows(
    station: str,
    observations: Iterable[tuple[str, Decimal | None, datetime]],
    reservoir: bool,
    *,
    updated_at: datetime,
    source: str,
) -> list[Row]:
    levels = {**(_RESERVOIR if reservoir else {**_RIVER, **_RIVER_VELOCITY})}
    table: type[Contract] = ReservoirRecord if reservoir else RiverRecord
    records: dict[tuple[type[Contract], datetime], dict[str, object]] = {}
    priorities: dict[tuple[type[Contract], datetime, str], int] = {}

    def put(contract: type[Contract], at: datetime, column: str, value: object, priority: int) -> bool:
        key = (contract, at, column)
        if priorities.get(key, -1) > priority:
            return False
        priorities[key] = priority
        record = records.setdefault((contract, at), {"stcd": station, "tm": at})
        record[column] = value
        return True

    for mnemonic, value, at in observations:
        if value is None:
            continue  # all-FF: not measured
        if mnemonic in _RAINFALL:
            column, interval, priority = _RAINFALL[mnemonic]
            if put(RainfallRecord, at, column, value, priority) and interval is not None:
                records[(RainfallRecord, at)]["intv"] = interval
        elif mnemonic in levels:
            column, priority = levels[mnemonic]
            put(table, at, column, value, priority)
    stamp = {"updated_at": updated_at, "source": source}
    return [Row(contract, record | stamp) for (contract, _), record in records.items()]


def _hj212(where: DeviceTopic, payload: bytes, device: Device, now: datetime) -> _Found:
    rows: list[Row] = []
    rejected: list[tuple[tuple[str, ...], dict[str, object]]] = []
    replies: list[tuple[str, bytes]] = []
    for packet in hj212.decode_payload(payload):
        if packet.mn != where.device_id:
            raise _SpoofedError(f"packet from MN {packet.mn} on device {where.device_id}'s topic")
        answer = hj212.required_response(packet)
        if answer is not None:
            replies.append((down_topic("hj212", where.device_id), hj212.encode_packet(answer).encode("ascii")))
        if packet.cn != _DATA_HOURLY:
            detail: dict[str, object] = {"packet": hj212.encode_packet(packet, line_end=False), "detail": "no dataset"}
            rejected.append((("hj212_no_dataset_for_cn",), detail))
            continue
        record: dict[str, object] = {
            "station_code": device.station_code,
            "sampled_at": packet.data_time,
            "updated_at": _qn_time(packet.qn) or now,
        }
        for reading in packet.readings:
            name = FACTOR_CODES.get(reading.code)
            if name is None:
                raw = {"code": reading.code, "avg": str(reading.avg), "flag": reading.flag, "qn": packet.qn}
                rejected.append((("unknown_factor_code",), {"reading": raw, "station_code": device.station_code}))
                continue
            record[name] = reading.avg
            record[f"{name}_flag"] = reading.flag
        rows.append(Row(WaterQualitySample, record))
    return rows, rejected, replies


def _qn_time(qn: str | None) -> datetime | None:
    """``QN`` is the request's time to the millisecond, ``YYYYMMDDhhmmsszzz`` in Beijing time."""
    if qn is None or len(qn) != 17 or not qn.isdigit():
        return None
    try:  # sliced, not strptime: several times cheaper, and every HJ 212 message has a QN
        year, month, day, hour, minute, second = int(qn[:4]), *(int(qn[i : i + 2]) for i in range(4, 14, 2))
        local = datetime(year, month, day, hour, minute, second, int(qn[14:]) * 1000, tzinfo=BEIJING)
    except ValueError:
        return None
    return as_utc(local)


def _json(where: DeviceTopic, payload: bytes, device: Device) -> _Found:
    report = device_json.decode_report(payload)
    if report.station != where.device_id:
        raise _SpoofedError(f"report of station {report.station} on device {where.device_id}'s topic")
    updated_at = report.device_time or report.observed_at
    quality: dict[str, object] = {}
    named: list[tuple[str, Decimal | None, datetime]] = []
    rejected: list[tuple[tuple[str, ...], dict[str, object]]] = []
    for code, reading in report.readings.items():
        if code in FACTOR_CODES:
            quality[FACTOR_CODES[code]] = reading.value
            quality[f"{FACTOR_CODES[code]}_flag"] = reading.flag
        elif code in _RAINFALL or code in _RIVER or code in _RIVER_VELOCITY or code in _RESERVOIR:
            named.append((code, reading.value, report.observed_at))
        else:
            raw = {"code": code, "value": None if reading.value is None else str(reading.value)}
            rejected.append((("unknown_element_code",), {"reading": raw, "station": report.station}))
    reservoir = any(code in _RESERVOIR_MARKERS for code, _, _ in named)
    rows = _hydrology_rows(device.station_code, named, reservoir, updated_at=updated_at, source="device:json")
    if quality:
        sample = {"station_code": device.station_code, "sampled_at": report.observed_at, "updated_at": updated_at}
        rows.append(Row(WaterQualitySample, sample | quality))
    return rows, rejected, []
