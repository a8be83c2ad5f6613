"""SL 651-2014 HEX/BCD frames: decode what a hydrological RTU sends, encode what the centre answers.

The layout follows the domain reference (section 1): ``7E 7E``, addresses (uplink: centre then station; downlink:
station then centre), password, function code, direction nibble and 12-bit body length, ``STX`` or ``SYN`` (with
packet total and sequence), the body, an end character and a CRC-16/MODBUS sent high byte first.

A report body is kept as sent (``Report.items``, in order), so ``encode_frame(decode_frame(x)) == x`` and
``decode_frame(encode_frame(f)) == f``; the observations a store wants are derived from it
(``Report.observations``), one per value, with Beijing time turned into UTC. Values are ``Decimal``: BCD carries
exact decimals and a float would turn 0.1 mm into 0.1000000000000000055.

What the decoder decides that the standard leaves open, each in one place:

- Elements are walked by their definition byte, never by the element table (trap 4). An identifier not in the
  table is kept as ``RawElement`` (identifier, definition byte, bytes), as the reference's checklist asks, and so
  is every ``FF xx`` extension element, whose content is vendor-defined.
- ``F2 F2`` (manual entry, function 35) runs to the end of the body, as one public server reads it; kept raw.
- ``F4``..``FC`` arrays: the last value is stamped at the observation time and each earlier one five minutes
  before it, so twelve values cover the hour ending at the observation time. The standard's interval order is
  **[U]** in the reference; ``SERIES_STEP`` and ``_series_times`` are the one place to change it.
- An element before any ``F0 F0`` observation time has no time and makes the frame malformed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import IntEnum, IntFlag, StrEnum
from typing import Final, TypeVar

from connectors.protocols.crc import A001_TABLE
from connectors.protocols.errors import (
    BadBcdDigitError,
    BadFieldError,
    BadFrameError,
    BadLengthError,
    CrcMismatchError,
    TruncatedFrameError,
    UnsupportedFrameError,
)
from contracts.types import BEIJING, as_utc

__all__ = [
    "ELEMENTS",
    "FUNCTIONS",
    "REPORT_FUNCTIONS",
    "SERIES_STEP",
    "STATION_TYPES",
    "BodyItem",
    "Direction",
    "ElementSpec",
    "EndChar",
    "Frame",
    "Header",
    "ManualEntry",
    "Observation",
    "ObservationTime",
    "PacketPosition",
    "RawBody",
    "RawElement",
    "Report",
    "Series",
    "StartChar",
    "StationGuide",
    "StatusAlarm",
    "StatusWord",
    "Value",
    "acknowledgement",
    "crc16_modbus",
    "decode_frame",
    "encode_frame",
    "frame_bytes",
    "join_packets",
    "split_packets",
]

_PROTOCOL: Final = "sl651"
_START = b"\x7e\x7e"
_HEADER_BYTES = 14  # 7E7E, centre, station, password, function, direction+length, start char
_OVERHEAD_BYTES = 17  # header + end char + 2 CRC bytes: a single-packet frame is 17 + L bytes
_MAX_BODY_LENGTH = 0x0FFF
_SERIAL_AND_SENT_BYTES = 8
_GUIDE_TIME = 0xF0
_GUIDE_STATION = 0xF1
_GUIDE_MANUAL = 0xF2
_EXTENSION = 0xFF
_STATUS_ID = 0x45
_RAINFALL_SERIES_ID = 0xF4
_LEVEL_SERIES_IDS = range(0xF5, 0xFD)

SERIES_STEP = timedelta(minutes=5)
"""Spacing of the values of an F4..FC array."""


class Direction(StrEnum):
    """The high nibble of byte 11: ``0`` station → centre, ``8`` centre → station."""

    UP = "up"
    DOWN = "down"


class StartChar(IntEnum):
    STX = 0x02
    SYN = 0x16


class EndChar(IntEnum):
    """Reference 1.3: ETX ends a normal uplink, ETB a block with more to come, EOT/ESC a centre's confirmation
    (ESC keeps the station online), ENQ a downlink query, ACK/NAK confirm packets of a multi-packet exchange."""

    ETX = 0x03
    EOT = 0x04
    ENQ = 0x05
    ACK = 0x06
    NAK = 0x15
    ETB = 0x17
    ESC = 0x1B


_Code = TypeVar("_Code", StartChar, EndChar)

FUNCTIONS: Mapping[int, str] = {
    0x2F: "link keep-alive",
    0x30: "test report",
    0x31: "equal-interval report",
    0x32: "timed report",
    0x33: "added report",
    0x34: "hourly report",
    0x35: "manual-entry report",
    0x36: "image report",
    0x37: "query real-time data",
    0x38: "query period data",
    0x39: "query manual-entry data",
    0x3A: "query specified elements",
}
"""Names for display (reference 1.6); a code missing here is still decoded, its body kept raw."""

REPORT_FUNCTIONS = frozenset(range(0x2F, 0x36))
"""Functions whose body we decode as a report; the centre's acknowledgement reuses the code, with an empty report."""

STATION_TYPES: Mapping[str, str] = {
    "P": "rainfall",
    "H": "river",
    "K": "reservoir or lake",
    "Z": "gate or dam",
    "D": "pumping station",
    "T": "tide",
    "M": "soil moisture",
    "G": "groundwater",
    "Q": "water quality",
    "I": "water intake",
    "O": "drainage outlet",
}


@dataclass(frozen=True)
class ElementSpec:
    """What an identifier means. ``mnemonic`` is None where the reference names no mnemonic; ``unit`` is None for
    counts, codes, dimensionless values and units the reference marks unverified."""

    mnemonic: str | None
    unit: str | None
    meaning: str


def _numbered(
    first: int, mnemonic: str, unit: str | None, meaning: str, labels: tuple[str, ...]
) -> dict[int, ElementSpec]:
    return {
        first + index: ElementSpec(f"{mnemonic}{label}", unit, f"{meaning} {label}")
        for index, label in enumerate(labels)
    }


_ONE_TO_EIGHT = tuple(str(n) for n in range(1, 9))

ELEMENTS: Mapping[int, ElementSpec] = {
    0x01: ElementSpec("AC", "m²", "cross-section area"),
    0x02: ElementSpec("AI", "°C", "air temperature"),
    0x03: ElementSpec("C", "°C", "water temperature"),
    0x04: ElementSpec("DRxnn", None, "time-step code (dd hh mm)"),
    0x05: ElementSpec("DT", None, "period length (h.mm)"),
    0x06: ElementSpec("ED", "mm", "daily evaporation"),
    0x07: ElementSpec("EJ", "mm", "current evaporation"),
    0x08: ElementSpec("FL", "hPa", "air pressure"),
    0x09: ElementSpec("GH", "m", "gate opening height"),
    0x0A: ElementSpec(None, None, "equipment or gate group number"),
    0x0B: ElementSpec(None, None, "equipment type"),
    0x0C: ElementSpec(None, None, "open gates"),
    0x0D: ElementSpec(None, "°C", "ground temperature"),
    0x0E: ElementSpec("H", "m", "groundwater depth below surface"),
    0x0F: ElementSpec(None, "m", "wave height"),
    **{
        0x10 + index: ElementSpec(f"M{depth}", "%", f"soil moisture at {depth} cm")
        for index, depth in enumerate((10, 20, 30, 40, 50, 60, 80, 100))
    },
    0x18: ElementSpec(None, "%", "humidity"),
    0x19: ElementSpec(None, None, "running units"),
    0x1A: ElementSpec("P1", "mm", "1-hour rainfall"),
    0x1B: ElementSpec("P2", "mm", "2-hour rainfall"),
    0x1C: ElementSpec("P3", "mm", "3-hour rainfall"),
    0x1D: ElementSpec("P6", "mm", "6-hour rainfall"),
    0x1E: ElementSpec("P12", "mm", "12-hour rainfall"),
    0x1F: ElementSpec("PD", "mm", "daily rainfall"),
    0x20: ElementSpec("PJ", "mm", "current (period) rainfall"),
    0x21: ElementSpec("PN01", "mm", "1-minute rainfall"),
    0x22: ElementSpec("PN05", "mm", "5-minute rainfall"),
    0x23: ElementSpec("PN10", "mm", "10-minute rainfall"),
    0x24: ElementSpec("PN30", "mm", "30-minute rainfall"),
    0x25: ElementSpec("PR", "mm", "storm rainfall"),
    0x26: ElementSpec("PT", "mm", "cumulative rainfall (running counter)"),
    0x27: ElementSpec("Q", "m³/s", "instantaneous flow"),
    **_numbered(0x28, "Q", "m³/s", "intake/outfall flow", _ONE_TO_EIGHT),
    0x30: ElementSpec("QA", "m³/s", "total outflow"),
    0x31: ElementSpec("QZ", "m³/s", "flow of one device or gate group"),
    0x32: ElementSpec("SW", "10⁴ t", "sediment discharge"),
    0x33: ElementSpec("UC", None, "wind direction"),
    0x34: ElementSpec("UE", None, "wind force (grade)"),
    0x35: ElementSpec("US", "m/s", "wind speed"),
    0x36: ElementSpec("VA", "m/s", "section mean velocity"),
    0x37: ElementSpec("VJ", "m/s", "instantaneous velocity"),
    0x38: ElementSpec("VT", "V", "supply voltage"),
    0x39: ElementSpec("Z", "m", "instantaneous river stage or tide level"),
    0x3A: ElementSpec("ZB", "m", "level below the dam, gate or station"),
    0x3B: ElementSpec("ZU", "m", "level above the dam, gate or station"),
    **_numbered(0x3C, "Z", "m", "intake/outfall level", _ONE_TO_EIGHT),
    0x44: ElementSpec("SQ", "kg/m³", "sediment concentration"),
    _STATUS_ID: ElementSpec("ZT", None, "status and alarm word"),
    0x46: ElementSpec("pH", None, "pH"),
    0x47: ElementSpec("DO", "mg/L", "dissolved oxygen"),
    0x48: ElementSpec("COND", "µS/cm", "conductivity"),
    0x49: ElementSpec("TURB", None, "turbidity"),
    0x4A: ElementSpec("CODMN", "mg/L", "permanganate index"),
    0x4B: ElementSpec("REDOX", "mV", "redox potential"),
    0x4C: ElementSpec("NH4N", "mg/L", "ammonia nitrogen"),
    0x4D: ElementSpec("TP", "mg/L", "total phosphorus"),
    0x4E: ElementSpec("TN", "mg/L", "total nitrogen"),
    0x4F: ElementSpec("TOC", "mg/L", "total organic carbon"),
    0x50: ElementSpec("CU", "mg/L", "copper"),
    0x51: ElementSpec("ZN", "mg/L", "zinc"),
    0x52: ElementSpec("SE", "mg/L", "selenium"),
    0x53: ElementSpec("AS", "mg/L", "arsenic"),
    0x54: ElementSpec("THG", "mg/L", "total mercury"),
    0x55: ElementSpec("CD", "mg/L", "cadmium"),
    0x56: ElementSpec("PB", "mg/L", "lead"),
    0x57: ElementSpec("CHLA", None, "chlorophyll a"),
    **_numbered(0x58, "WP", "kPa", "water pressure", _ONE_TO_EIGHT),
    **_numbered(0x60, "SYL", "m³", "water-meter remaining volume", _ONE_TO_EIGHT),
    **_numbered(0x68, "SBL", "m³/h", "water-meter hourly volume", _ONE_TO_EIGHT),
    0x70: ElementSpec("VTA", "V", "AC phase A voltage"),
    0x71: ElementSpec("VTB", "V", "AC phase B voltage"),
    0x72: ElementSpec("VTC", "V", "AC phase C voltage"),
    0x73: ElementSpec("VIA", "A", "AC phase A current"),
    0x74: ElementSpec("VIB", "A", "AC phase B current"),
    0x75: ElementSpec("VIC", "A", "AC phase C current"),
    _RAINFALL_SERIES_ID: ElementSpec("DRP", "mm", "5-minute rainfall"),
    **{
        identifier: ElementSpec(f"DRZ{channel}", "m", f"5-minute relative level, channel {channel}")
        for channel, identifier in enumerate(_LEVEL_SERIES_IDS, start=1)
    },
}
"""Reference 1.8. Decoding never depends on this table's formats: the definition byte decides (trap 4)."""


class StatusAlarm(IntFlag):
    """The ZT word's bits (reference 1.10), each named for what a 1 means; bits 12-31 are reserved."""

    POWER_CUT = 1 << 0
    BATTERY_LOW = 1 << 1
    LEVEL_ALARM = 1 << 2
    FLOW_ALARM = 1 << 3
    QUALITY_ALARM = 1 << 4
    FLOW_INSTRUMENT_FAULT = 1 << 5
    LEVEL_INSTRUMENT_FAULT = 1 << 6
    DOOR_CLOSED = 1 << 7
    MEMORY_FAULT = 1 << 8
    IC_CARD_VALID = 1 << 9
    PUMP_STOPPED = 1 << 10
    REMAINING_WATER_OVER_LIMIT = 1 << 11


@dataclass(frozen=True)
class PacketPosition:
    """The three bytes after ``SYN``: 12-bit packet total, then 12-bit sequence number from 1 (reference 1.11)."""

    total: int
    sequence: int


@dataclass(frozen=True)
class Header:
    """Everything before the body. The body length and the CRC are not kept: ``encode_frame`` derives them."""

    direction: Direction
    central_address: int
    remote_address: str
    """Ten BCD digits as text: leading zeros matter, and how an 8-character STCD maps into it is per registry."""
    password: str
    """Two bytes as four upper-case hex digits; opaque (the sample value A000 is not BCD)."""
    function: int
    start: StartChar = StartChar.STX
    packet: PacketPosition | None = None


@dataclass(frozen=True)
class StationGuide:
    """``F1 F1`` + address + type letter. The type does not limit the elements sent (trap 10)."""

    address: str
    station_type: str


@dataclass(frozen=True)
class ObservationTime:
    """``F0 F0`` + time: applies to every element after it, until the next one."""

    observed_at: datetime


@dataclass(frozen=True)
class Value:
    """One BCD element. ``definition`` is kept because it, not the table, fixes the length and decimals."""

    identifier: int
    definition: int
    value: Decimal | None


@dataclass(frozen=True)
class Series:
    """``F4`` (rainfall, 0.1 mm per byte) or ``F5``..``FC`` (levels, 0.01 m per two bytes): HEX, not BCD."""

    identifier: int
    definition: int
    values: tuple[Decimal | None, ...]


@dataclass(frozen=True)
class StatusWord:
    """``45`` (ZT): a HEX bit word, not BCD; None when every byte is ``FF``."""

    definition: int
    word: int | None

    @property
    def alarms(self) -> StatusAlarm:
        return StatusAlarm((self.word or 0) & 0xFFF)


@dataclass(frozen=True)
class RawElement:
    """An identifier we do not interpret: an extension (``FF xx``, kept as ``0xFFxx``) or one not in the table."""

    identifier: int
    definition: int
    data: bytes


@dataclass(frozen=True)
class ManualEntry:
    """``F2 F2`` and the rest of the body: a manual-entry report's content, kept as sent."""

    data: bytes


BodyItem = StationGuide | ObservationTime | Value | Series | StatusWord | RawElement | ManualEntry


@dataclass(frozen=True)
class Observation:
    """One value at one time, as the store keys it: station, element and observation time (trap 8)."""

    identifier: str
    mnemonic: str | None
    value: Decimal | None
    unit: str | None
    observed_at: datetime


@dataclass(frozen=True)
class Report:
    """Serial number, send time and the items in the order sent. Keep-alives and acknowledgements have no items."""

    serial: int
    sent_at: datetime
    items: tuple[BodyItem, ...] = ()

    @property
    def station(self) -> StationGuide | None:
        return next((item for item in self.items if isinstance(item, StationGuide)), None)

    def observations(self) -> tuple[Observation, ...]:
        """Every value with its time, arrays expanded into 5-minute observations; raw elements are left out."""
        found: list[Observation] = []
        observed_at: datetime | None = None
        for item in self.items:
            if isinstance(item, ObservationTime):
                observed_at = item.observed_at
                continue
            if not isinstance(item, Value | Series | StatusWord):
                continue
            if observed_at is None:
                raise ValueError("a report's elements need an F0 F0 observation time before them")
            found.extend(_observations_of(item, observed_at))
        return tuple(found)


@dataclass(frozen=True)
class RawBody:
    """A body we do not decode: later packets of a multi-packet transfer, or a function outside the reports."""

    data: bytes


@dataclass(frozen=True)
class Frame:
    header: Header
    body: Report | RawBody
    end: EndChar = EndChar.ETX


def _identifier_text(identifier: int) -> str:
    return f"{identifier:04X}" if identifier > 0xFF else f"{identifier:02X}"


def _series_times(observed_at: datetime, count: int) -> list[datetime]:
    """The [U] assumption of the module docstring: the last value at the observation time, 5 minutes apart."""
    return [observed_at - SERIES_STEP * (count - 1 - index) for index in range(count)]


def _observations_of(item: Value | Series | StatusWord, observed_at: datetime) -> Iterator[Observation]:
    if isinstance(item, StatusWord):
        spec = ELEMENTS[_STATUS_ID]
        word = None if item.word is None else Decimal(item.word)
        yield Observation(_identifier_text(_STATUS_ID), spec.mnemonic, word, spec.unit, observed_at)
        return
    spec = ELEMENTS[item.identifier]
    identifier = _identifier_text(item.identifier)
    if isinstance(item, Value):
        yield Observation(identifier, spec.mnemonic, item.value, spec.unit, observed_at)
        return
    for at, value in zip(_series_times(observed_at, len(item.values)), item.values, strict=True):
        yield Observation(identifier, spec.mnemonic, value, spec.unit, at)


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (reflected 0xA001, init 0xFFFF); SL 651 sends it high byte first (trap 1)."""
    crc = 0xFFFF
    table = A001_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


# --- decoding -------------------------------------------------------------------------------------------------


def frame_bytes(data: bytes | str) -> bytes:
    """Frames reach us as raw bytes or as hex text (reference 1.1); whitespace in the text is ignored."""
    if not isinstance(data, str):
        return bytes(data)
    digits: list[str] = []
    for index, char in enumerate(data):
        if char.isspace():
            continue
        if char not in "0123456789abcdefABCDEF":
            raise BadFrameError(_PROTOCOL, f"{char!r} is not a hex digit", offset=index, unit="character")
        digits.append(char)
    if len(digits) % 2:
        raise BadFrameError(
            _PROTOCOL, f"odd number of hex digits ({len(digits)}): half a byte", offset=len(data), unit="character"
        )
    return bytes.fromhex("".join(digits))


def decode_frame(data: bytes | str) -> Frame:
    """One whole frame, checked in the reference's order (1.14): start, length, CRC, then content.

    Raises only ``DecodeError`` subclasses, whatever the input.
    """
    raw = frame_bytes(data)
    _check_start(raw)
    if len(raw) < _HEADER_BYTES:
        raise TruncatedFrameError(_PROTOCOL, f"input ends inside the {_HEADER_BYTES}-byte header", offset=len(raw))
    length = ((raw[11] & 0x0F) << 8) | raw[12]
    total = _OVERHEAD_BYTES + length
    if len(raw) < total:
        raise TruncatedFrameError(
            _PROTOCOL,
            f"input ends after {len(raw)} bytes; body length {length} makes the frame {total}",
            offset=len(raw),
        )
    if len(raw) > total:
        raise BadLengthError(
            _PROTOCOL,
            f"{len(raw) - total} bytes follow the CRC; body length {length} makes the frame {total}",
            offset=total,
        )
    end_at = _HEADER_BYTES + length
    sent_crc = int.from_bytes(raw[end_at + 1 :], "big")
    computed_crc = crc16_modbus(raw[: end_at + 1])
    if sent_crc != computed_crc:
        raise CrcMismatchError(
            _PROTOCOL, f"CRC {sent_crc:04X} sent, {computed_crc:04X} computed over bytes 0-{end_at}", offset=end_at + 1
        )
    header = _decode_header(raw, length)
    end = _enum_at(raw, end_at, EndChar, "end character")
    body_at = _HEADER_BYTES if header.packet is None else _HEADER_BYTES + 3
    body: Report | RawBody
    if header.packet is not None and header.packet.total > 1:
        body = RawBody(raw[body_at:end_at])  # a piece of a report: read once joined (``join_packets``)
    elif header.function in REPORT_FUNCTIONS:
        body = _decode_report(raw, body_at, end_at)
    else:
        body = RawBody(raw[body_at:end_at])
    return Frame(header, body, end)


def _check_start(raw: bytes) -> None:
    if not raw:
        raise TruncatedFrameError(_PROTOCOL, "empty input", offset=0)
    if raw[0] == 0x01:
        raise UnsupportedFrameError(
            _PROTOCOL, "starts with SOH 01: the ASCII variant of SL 651, which we do not decode yet", offset=0
        )
    for index, byte in enumerate(raw[:2]):
        if byte != 0x7E:
            raise BadFrameError(_PROTOCOL, f"frame start is {raw[:2].hex(' ').upper()}, not 7E 7E", offset=index)
    if len(raw) < 2:
        raise TruncatedFrameError(_PROTOCOL, "input ends inside the frame start 7E 7E", offset=len(raw))


def _decode_header(raw: bytes, length: int) -> Header:
    nibble = raw[11] >> 4
    if nibble not in (0x0, 0x8):
        raise BadFieldError(_PROTOCOL, f"direction nibble {nibble:X} is neither 0 (up) nor 8 (down)", offset=11)
    direction = Direction.UP if nibble == 0 else Direction.DOWN
    central_at, remote_at = (2, 3) if direction is Direction.UP else (7, 2)
    start = _enum_at(raw, 13, StartChar, "start character")
    packet = None
    if start is StartChar.SYN:
        if length < 3:
            raise BadLengthError(_PROTOCOL, f"a SYN frame needs 3 packet bytes, its body length is {length}", offset=11)
        packet = _decode_packet(raw, _HEADER_BYTES)
    return Header(
        direction=direction,
        central_address=raw[central_at],
        remote_address=_bcd_digits(raw, remote_at, 5, "remote station address"),
        password=raw[8:10].hex().upper(),
        function=raw[10],
        start=start,
        packet=packet,
    )


def _enum_at(raw: bytes, at: int, kind: type[_Code], what: str) -> _Code:
    try:
        return kind(raw[at])
    except ValueError:
        allowed = ", ".join(f"{member.name} {member.value:02X}" for member in kind)
        raise BadFrameError(_PROTOCOL, f"{what} {raw[at]:02X} is none of {allowed}", offset=at) from None


def _decode_packet(raw: bytes, at: int) -> PacketPosition:
    b0, b1, b2 = raw[at : at + 3]
    total, sequence = (b0 << 4) | (b1 >> 4), ((b1 & 0x0F) << 8) | b2
    if not 1 <= sequence <= total:
        raise BadFieldError(_PROTOCOL, f"packet {sequence} of {total} is impossible", offset=at)
    return PacketPosition(total, sequence)


def _decode_report(raw: bytes, start: int, end: int) -> Report:
    if end - start < _SERIAL_AND_SENT_BYTES:
        raise BadLengthError(
            _PROTOCOL,
            f"function {raw[10]:02X} needs serial and send time ({_SERIAL_AND_SENT_BYTES} bytes), the body has "
            f"{end - start}",
            offset=start,
        )
    serial = int.from_bytes(raw[start : start + 2], "big")
    sent_at = _decode_time(raw, start + 2, 6, "send time")
    return Report(serial, sent_at, tuple(_walk_items(raw, start + _SERIAL_AND_SENT_BYTES, end)))


def _walk_items(raw: bytes, pos: int, end: int) -> Iterator[BodyItem]:
    has_time = False
    while pos < end:
        identifier = raw[pos]
        if identifier in (_GUIDE_TIME, _GUIDE_STATION, _GUIDE_MANUAL):
            if pos + 1 >= end or raw[pos + 1] != identifier:
                raise BadFieldError(
                    _PROTOCOL, f"guide {identifier:02X} is not doubled ({identifier:02X} {identifier:02X})", offset=pos
                )
            if identifier == _GUIDE_MANUAL:
                yield ManualEntry(raw[pos + 2 : end])
                return
            if identifier == _GUIDE_TIME:
                _need(pos + 2, 5, end, "observation time")
                yield ObservationTime(_decode_time(raw, pos + 2, 5, "observation time"))
                has_time = True
                pos += 7
            else:
                _need(pos + 2, 6, end, "station address and type")
                yield StationGuide(_bcd_digits(raw, pos + 2, 5, "station address"), _station_type(raw, pos + 7))
                pos += 8
            continue
        if identifier == _EXTENSION:
            _need(pos + 1, 2, end, "extension identifier and definition byte")
            identifier, value_at = 0xFF00 | raw[pos + 1], pos + 3
        else:
            _need(pos + 1, 1, end, f"definition byte of element {identifier:02X}")
            value_at = pos + 2
        definition = raw[value_at - 1]
        size = definition >> 3
        _need(value_at, size, end, f"value of element {_identifier_text(identifier)}")
        item = _decode_element(raw, identifier, definition, value_at)
        if not has_time and not isinstance(item, RawElement):
            raise BadFieldError(
                _PROTOCOL, f"element {_identifier_text(identifier)} comes before any F0 F0 observation time", offset=pos
            )
        yield item
        pos = value_at + size


def _need(at: int, size: int, end: int, what: str) -> None:
    if at + size > end:
        raise BadLengthError(
            _PROTOCOL, f"{what} needs {size} bytes, {max(end - at, 0)} remain before the end character", offset=at
        )


def _decode_element(raw: bytes, identifier: int, definition: int, at: int) -> BodyItem:
    size = definition >> 3
    chunk = raw[at : at + size]
    if identifier not in ELEMENTS:
        return RawElement(identifier, definition, chunk)
    name = _identifier_text(identifier)
    if size == 0:
        raise BadFieldError(
            _PROTOCOL, f"definition byte {definition:02X} of element {name} gives no value", offset=at - 1
        )
    if identifier == _RAINFALL_SERIES_ID:
        return Series(identifier, definition, tuple(None if b == 0xFF else _decimal(b, 1) for b in chunk))
    if identifier in _LEVEL_SERIES_IDS:
        if size % 2:
            raise BadFieldError(
                _PROTOCOL, f"element {name} holds 2-byte levels, its definition byte gives {size} bytes", offset=at - 1
            )
        words = (int.from_bytes(chunk[i : i + 2], "big") for i in range(0, size, 2))
        return Series(identifier, definition, tuple(None if w == 0xFFFF else _decimal(w, 2) for w in words))
    if identifier == _STATUS_ID:
        return StatusWord(definition, None if _all_ff(chunk) else int.from_bytes(chunk, "big"))
    return Value(identifier, definition, _decode_number(raw, at, definition, name))


def _decode_number(raw: bytes, at: int, definition: int, name: str) -> Decimal | None:
    """Packed BCD with the definition byte's decimals; a leading FF byte is a minus sign, all FF is missing."""
    size = definition >> 3
    if _all_ff(raw[at : at + size]):
        return None
    skip = 1 if raw[at] == 0xFF else 0
    digits = _bcd_digits(raw, at + skip, size - skip, f"value of element {name}")
    # Read from text: a tuple of digits costs several times more, and a frame carries dozens of values.
    return Decimal(f"{'-' if skip else ''}{digits}E-{definition & 0x07}")


def _decimal(units: int, decimals: int) -> Decimal:
    return Decimal(f"{units}E-{decimals}")


def _all_ff(chunk: bytes) -> bool:
    return chunk.count(0xFF) == len(chunk)


def _bcd_digits(raw: bytes, at: int, size: int, what: str) -> str:
    digits = raw[at : at + size].hex()
    if digits.isdigit():  # the usual case, checked in C; the walk below only says where a bad nibble is
        return digits
    for index, digit in enumerate(digits):
        if digit > "9":
            raise BadBcdDigitError(
                _PROTOCOL, f"{what} has nibble {digit.upper()}, not a BCD digit", offset=at + index // 2
            )
    return digits


def _decode_time(raw: bytes, at: int, size: int, what: str) -> datetime:
    """BCD ``YYMMDDhhmm[ss]`` in Beijing time, returned in UTC (trap 5)."""
    digits = _bcd_digits(raw, at, size, what)
    second = int(digits[10:12]) if size == 6 else 0  # the observation time (5 bytes) has no seconds
    try:
        local = datetime(
            2000 + int(digits[:2]),
            int(digits[2:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            second,
            tzinfo=BEIJING,
        )
    except ValueError:
        shown = "-".join(digits[i : i + 2] for i in range(0, len(digits), 2))
        raise BadFieldError(_PROTOCOL, f"{what} {shown} (YY-MM-DD-hh-mm-ss) is not a real time", offset=at) from None
    return as_utc(local)


def _station_type(raw: bytes, at: int) -> str:
    letter = raw[at]
    if not 0x41 <= letter <= 0x5A:
        raise BadFieldError(_PROTOCOL, f"station type {letter:02X} is not an ASCII capital letter", offset=at)
    return chr(letter)


# --- encoding -------------------------------------------------------------------------------------------------


def encode_frame(frame: Frame) -> bytes:
    """The bytes of a frame, with its body length and CRC. Raises ValueError for a frame that cannot be sent as
    given (a value with more digits than its definition byte allows, an element after a manual entry, ...)."""
    header = frame.header
    if (header.start is StartChar.SYN) != (header.packet is not None):
        raise ValueError("a SYN frame needs a packet position, and an STX frame has none")
    packet = b"" if header.packet is None else _encode_packet(header.packet)
    body = packet + _encode_body(frame.body)
    if len(body) > _MAX_BODY_LENGTH:
        raise ValueError(f"a body of {len(body)} bytes does not fit the 12-bit length field")
    station = _encode_bcd(header.remote_address, 10, "remote address")
    central = bytes([header.central_address])
    addresses = central + station if header.direction is Direction.UP else station + central
    password = bytes.fromhex(header.password)
    if len(password) != 2:
        raise ValueError(f"password {header.password!r} is not two bytes of hex")
    nibble = 0x0 if header.direction is Direction.UP else 0x8
    lead = _START + addresses + password + bytes([header.function, (nibble << 4) | (len(body) >> 8), len(body) & 0xFF])
    unsigned = lead + bytes([header.start]) + body + bytes([frame.end])
    return unsigned + crc16_modbus(unsigned).to_bytes(2, "big")


def acknowledgement(frame: Frame, *, sent_at: datetime, end: EndChar = EndChar.ESC) -> Frame:
    """The centre's confirmation of an uplink report (reference sample 2): downlink layout, same addresses, password
    and function, the report's serial echoed, the centre's clock as send time, ESC (stay online) or EOT."""
    if frame.header.direction is not Direction.UP or not isinstance(frame.body, Report):
        raise ValueError("only an uplink report (serial and send time decoded) can be acknowledged")
    up = frame.header
    header = Header(Direction.DOWN, up.central_address, up.remote_address, up.password, up.function)
    return Frame(header, Report(frame.body.serial, sent_at), end)


def split_packets(frame: Frame, body_bytes: int) -> list[Frame]:
    """A single-packet frame sent as a multi-packet transfer (reference 1.11): its body in pieces of at most
    ``body_bytes``, each after ``SYN`` and its position, ``ETB`` on every packet but the last, which keeps the
    frame's end character. Only the first carries serial and send time, as the body's first bytes."""
    if frame.header.packet is not None:
        raise ValueError("the frame is already one packet of a transfer")
    body = _encode_body(frame.body)
    pieces = [body[at : at + body_bytes] for at in range(0, len(body), body_bytes)] or [b""]
    total = len(pieces)
    return [
        Frame(
            replace(frame.header, start=StartChar.SYN, packet=PacketPosition(total, sequence)),
            RawBody(piece),
            frame.end if sequence == total else EndChar.ETB,
        )
        for sequence, piece in enumerate(pieces, start=1)
    ]


def join_packets(packets: Sequence[Frame]) -> Frame:
    """The frame a whole multi-packet transfer stands for: the packets' bodies in sequence order, read as one body
    (a report for a report function), under the first packet's header as a single packet. Raises ``DecodeError``
    when the packets are not one whole transfer of one station and function, or the joined body does not read."""
    ordered = sorted(packets, key=lambda packet: packet.header.packet.sequence if packet.header.packet else 0)
    first = ordered[0].header if ordered else None
    total = first.packet.total if first is not None and first.packet is not None else 0
    whole = bool(ordered) and all(
        first is not None
        and (packet.header.remote_address, packet.header.function) == (first.remote_address, first.function)
        and packet.header.packet == PacketPosition(total, sequence)
        for sequence, packet in enumerate(ordered, start=1)
    )
    if first is None or not whole or len(ordered) != total:
        raise BadFrameError(_PROTOCOL, "the packets are not one whole transfer of one station", offset=13)
    data = b"".join(_encode_body(packet.body) for packet in ordered)  # a transfer of one packet was read already
    body = _decode_report(data, 0, len(data)) if first.function in REPORT_FUNCTIONS else RawBody(data)
    return Frame(replace(first, start=StartChar.STX, packet=None), body, ordered[-1].end)


def _encode_packet(packet: PacketPosition) -> bytes:
    if not 1 <= packet.sequence <= packet.total <= 0xFFF:
        raise ValueError(f"packet {packet.sequence} of {packet.total} cannot be sent")
    total, sequence = packet.total, packet.sequence
    return bytes([total >> 4, ((total & 0x0F) << 4) | (sequence >> 8), sequence & 0xFF])


def _encode_body(body: Report | RawBody) -> bytes:
    if isinstance(body, RawBody):
        return body.data
    for item in body.items[:-1]:
        if isinstance(item, ManualEntry):
            raise ValueError("a manual entry runs to the end of the body, so it must be the last item")
    items = b"".join(_encode_item(item) for item in body.items)
    return body.serial.to_bytes(2, "big") + _encode_time(body.sent_at, with_seconds=True) + items


def _encode_item(item: BodyItem) -> bytes:
    if isinstance(item, StationGuide):
        if len(item.station_type) != 1 or not "A" <= item.station_type <= "Z":
            raise ValueError(f"station type {item.station_type!r} is not one capital letter")
        guide = bytes([_GUIDE_STATION, _GUIDE_STATION])
        return guide + _encode_bcd(item.address, 10, "station address") + item.station_type.encode()
    if isinstance(item, ObservationTime):
        return bytes([_GUIDE_TIME, _GUIDE_TIME]) + _encode_time(item.observed_at, with_seconds=False)
    if isinstance(item, ManualEntry):
        return bytes([_GUIDE_MANUAL, _GUIDE_MANUAL]) + item.data
    if isinstance(item, RawElement):
        return _encode_raw(item)
    size = item.definition >> 3
    if isinstance(item, StatusWord):
        word = b"\xff" * size if item.word is None else item.word.to_bytes(size, "big")
        return bytes([_STATUS_ID, item.definition]) + word
    if isinstance(item, Series):
        return bytes([item.identifier, item.definition]) + _encode_series(item)
    if item.identifier not in ELEMENTS or _is_special(item.identifier):
        raise ValueError(f"element {item.identifier:02X} is not a BCD value in the element table")
    return bytes([item.identifier, item.definition]) + _encode_number(item.value, item.definition)


def _is_special(identifier: int) -> bool:
    return identifier in (_STATUS_ID, _RAINFALL_SERIES_ID) or identifier in _LEVEL_SERIES_IDS


def _encode_raw(item: RawElement) -> bytes:
    if len(item.data) != item.definition >> 3:
        raise ValueError(f"definition byte {item.definition:02X} promises {item.definition >> 3} bytes")
    if item.identifier > 0xFF:
        if item.identifier >> 8 != _EXTENSION:
            raise ValueError(f"identifier {item.identifier:X} is neither one byte nor an FF extension")
        return bytes([_EXTENSION, item.identifier & 0xFF, item.definition]) + item.data
    if item.identifier in ELEMENTS or item.identifier in (_GUIDE_TIME, _GUIDE_STATION, _GUIDE_MANUAL, _EXTENSION):
        raise ValueError(f"identifier {item.identifier:02X} has a meaning; send it as its own item")
    return bytes([item.identifier, item.definition]) + item.data


def _encode_series(item: Series) -> bytes:
    if item.identifier == _RAINFALL_SERIES_ID:
        width, decimals = 1, 1
    elif item.identifier in _LEVEL_SERIES_IDS:
        width, decimals = 2, 2
    else:
        raise ValueError(f"element {item.identifier:02X} is not an F4..FC array")
    if len(item.values) * width != item.definition >> 3:
        raise ValueError(f"{len(item.values)} values do not fill definition byte {item.definition:02X}")
    missing = (1 << (8 * width)) - 1
    encoded = b""
    for value in item.values:
        units = missing if value is None else _scaled(value, decimals)
        if value is not None and not 0 <= units < missing:
            raise ValueError(f"{value} does not fit element {item.identifier:02X}")
        encoded += units.to_bytes(width, "big")
    return encoded


def _encode_number(value: Decimal | None, definition: int) -> bytes:
    size, decimals = definition >> 3, definition & 0x07
    if size == 0:
        raise ValueError(f"definition byte {definition:02X} leaves no room for a value")
    if value is None:
        return b"\xff" * size
    units = _scaled(abs(value), decimals)
    negative = value < 0 and units != 0
    width = 2 * (size - 1 if negative else size)
    digits = f"{units:0{width}d}"
    if len(digits) > width:
        raise ValueError(f"{value} needs more than {width} digits (definition byte {definition:02X})")
    return (b"\xff" if negative else b"") + bytes.fromhex(digits)


def _scaled(value: Decimal, decimals: int) -> int:
    """``value`` in units of 10^-decimals, exactly; computed on the digits, not in a 28-digit Decimal context."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent + decimals > 64:
        raise ValueError(f"{value} cannot be encoded")
    coefficient = int("".join(map(str, digits)))
    shift = exponent + decimals
    if shift >= 0:
        return (-1 if sign else 1) * coefficient * int(10**shift)
    units, rest = divmod(coefficient, int(10**-shift))
    if rest:
        raise ValueError(f"{value} has more than {decimals} decimals")
    return (-1 if sign else 1) * units


def _encode_bcd(digits: str, count: int, what: str) -> bytes:
    if len(digits) != count or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"{what} {digits!r} is not {count} decimal digits")
    return bytes.fromhex(digits)


def _encode_time(moment: datetime, *, with_seconds: bool) -> bytes:
    if moment.tzinfo is None:
        raise ValueError("times must be aware; SL 651 sends Beijing time")
    local = moment.astimezone(BEIJING)
    if not 2000 <= local.year <= 2099 or local.microsecond or (not with_seconds and local.second):
        raise ValueError(
            f"{moment} cannot be sent as a 2-digit-year BCD time to the {'second' if with_seconds else 'minute'}"
        )
    return bytes.fromhex(local.strftime("%y%m%d%H%M%S" if with_seconds else "%y%m%d%H%M"))
