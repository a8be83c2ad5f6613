"""HJ 212-2017 packets (and the 2025 revision's version bits): decode what a water-quality logger sends, encode
what the platform answers.

A packet is ``##`` + 4-digit length + data segment + 4 hex CRC + optional CRLF (reference 2.1). Over MQTT a payload
may lack the CRLF or join several packets, so ``split_packets`` frames on ``##`` and the length field, never on line
ends. A packet wrapped in JSON is the gateway's to unwrap.

Choices the standard leaves to the reader, each made once here:

- The CRC is the standard's own (Appendix A, reference 2.8), not MODBUS; upper or lower case hex is accepted.
- ``Flag`` is never a reason to reject: version 0, 1 or 2 (``Flag >> 2``) is kept as sent, and so is the 2025
  resend marker ``RF``. Unknown header fields are kept in order, after the known ones.
- A CP whose first item is not ``key=value`` text is taken for SM4 ciphertext (HJ 212-2025) and raises
  ``EncryptedCpError`` (``hj212_encrypted_cp``), with or without a matching CRC, since the CRC covers the plaintext.
- In data packets (2011, 2051, 2061, 2031) ``code-Rtd/Avg/Min/Max/Cou`` must be numbers and ``DataTime`` must be
  there; it is the *start* of the interval (trap 9), Beijing time, returned in UTC. Other suffixes (``ZsRtd``,
  ``EFlag``...) are kept as text. In other commands every CP item is a parameter, kept as text in order.
- Values are ``Decimal``, as sent: ``7.40`` stays two decimals.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final

from connectors.protocols.crc import A001_TABLE
from connectors.protocols.errors import (
    BadFieldError,
    BadFrameError,
    BadLengthError,
    CrcMismatchError,
    EncryptedCpError,
    TruncatedFrameError,
)
from contracts.types import BEIJING, as_utc

__all__ = [
    "DATA_COMMANDS",
    "INTERVALS",
    "UPLOAD_COMMANDS",
    "Packet",
    "Reading",
    "crc_hj212",
    "decode_packet",
    "decode_payload",
    "encode_packet",
    "required_response",
    "split_packets",
]

_PROTOCOL: Final = "hj212"
_HEAD = b"##"
_LENGTH_DIGITS = 4
_CRC_CHARS = 4
_CP_OPEN = b"CP=&&"
_CP_CLOSE = b"&&"
_KNOWN_HEADER = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO", "RF")
_KEY = re.compile(r"[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20})?")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?", re.ASCII)
_NUMERIC_FIELDS = ("Rtd", "Avg", "Min", "Max", "Cou")
_FLAG_FIELD = "Flag"

DATA_COMMANDS = frozenset({"2011", "2051", "2061", "2031"})
"""Real-time, minute, hourly and daily data: the commands whose CP holds readings."""

UPLOAD_COMMANDS = DATA_COMMANDS | {"2021", "2041", "2081"}
"""What a logger uploads on its own; with the A bit set the platform answers each with a 9014 data answer."""

INTERVALS: Mapping[str, timedelta] = {"2061": timedelta(hours=1), "2031": timedelta(days=1)}
"""The span an interval packet's ``DataTime`` starts. Minute data (2051) spans the logger's ``MinInterval``."""


@dataclass(frozen=True)
class Reading:
    """One factor's fields in a data packet, e.g. ``w21003-Avg=0.405,w21003-Flag=N``."""

    code: str
    rtd: Decimal | None = None
    avg: Decimal | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    cou: Decimal | None = None
    flag: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    """Other suffixes as sent (``ZsRtd``, ``SampleTime``...): (suffix, text)."""


@dataclass(frozen=True)
class Packet:
    """A decoded packet. Field names keep the standard's spelling in lower case (STYLE rule 13)."""

    st: str
    cn: str
    mn: str
    qn: str | None = None
    pw: str | None = field(default=None, repr=False)
    """The access password: kept for answering, never shown (``repr`` leaves it out)."""
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    rf: str | None = None
    """HJ 212-2025 resend marker (``RF=1``), absent on live data."""
    extra_header: tuple[tuple[str, str], ...] = ()
    data_time: datetime | None = None
    readings: tuple[Reading, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def version(self) -> int | None:
        """0 HJ/T 212-2005, 1 HJ 212-2017, 2 HJ 212-2025; None when the packet has no Flag."""
        return None if self.flag is None else self.flag >> 2

    @property
    def is_answer_required(self) -> bool:
        """The A bit: the receiver must answer (9014 for uploaded data)."""
        return self.flag is not None and bool(self.flag & 0b01)

    @property
    def is_split(self) -> bool:
        """The D bit: one of several packets, numbered by PNUM/PNO."""
        return self.flag is not None and bool(self.flag & 0b10)


def crc_hj212(data: bytes) -> int:
    """Appendix A of the standard: unlike MODBUS, the old high byte is shifted down before the data byte goes in
    (trap 2). Check value for ``123456789``: 0x2F80."""
    crc = 0xFFFF
    table = A001_TABLE
    for byte in data:
        crc = table[(crc >> 8) ^ byte]  # below 256: eight rounds of it are one table entry
    return crc


# --- decoding -------------------------------------------------------------------------------------------------


def _payload_bytes(payload: bytes | str) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)


def split_packets(payload: bytes | str) -> tuple[tuple[int, bytes], ...]:
    """Each packet of a payload with the offset it starts at; CR, LF and spaces between packets are skipped.

    Lets the gateway quarantine one bad packet of a payload and keep the others.
    """
    return tuple(_packets(_payload_bytes(payload)))


def _packets(raw: bytes) -> Iterator[tuple[int, bytes]]:
    """Lazily, so a fault in the first packet is reported before anything about the bytes after it."""
    pos, found = 0, 0
    while pos < len(raw):
        if raw[pos] in b" \t\r\n":
            pos += 1
            continue
        end = _packet_end(raw, pos)
        yield pos, raw[pos:end]
        found += 1
        pos = end
    if not found:
        raise TruncatedFrameError(_PROTOCOL, "no packet in the input", offset=len(raw))


def _packet_end(raw: bytes, at: int) -> int:
    head = raw[at : at + 2]
    if head != _HEAD[: len(head)]:
        raise BadFrameError(_PROTOCOL, f"a packet starts with ##, not {_shown(raw[at : at + 2])}", offset=at)
    digits_at = at + len(_HEAD)
    if len(raw) < digits_at + _LENGTH_DIGITS:
        raise TruncatedFrameError(_PROTOCOL, "input ends inside ## and the 4-digit length", offset=len(raw))
    digits = raw[digits_at : digits_at + _LENGTH_DIGITS]
    if not (digits.isascii() and digits.isdigit()):
        raise BadFrameError(_PROTOCOL, f"length field {_shown(digits)} is not 4 decimal digits", offset=digits_at)
    end = digits_at + _LENGTH_DIGITS + int(digits) + _CRC_CHARS
    if len(raw) < end:
        raise TruncatedFrameError(
            _PROTOCOL,
            f"length field {digits.decode()} makes the packet {end - at} bytes with its CRC; input has {len(raw) - at}",
            offset=len(raw),
        )
    return end


def decode_payload(payload: bytes | str) -> tuple[Packet, ...]:
    """Every packet of an MQTT payload (or a TCP read); the first bad one raises."""
    return tuple(_decode_framed(packet, at) for at, packet in _packets(_payload_bytes(payload)))


def decode_packet(data: bytes | str) -> Packet:
    """Exactly one packet, with or without its CRLF. Raises only ``DecodeError`` subclasses, whatever the input."""
    packets = _packets(_payload_bytes(data))
    at, packet = next(packets)
    decoded = _decode_framed(packet, at)
    second = next(packets, None)
    if second is not None:
        raise BadLengthError(_PROTOCOL, "more than one packet where one was expected", offset=second[0])
    return decoded


def _decode_framed(packet: bytes, at: int) -> Packet:
    """``packet`` spans ``##`` to the CRC, as ``split_packets`` cut it; ``at`` is its offset in the payload."""
    segment_at = len(_HEAD) + _LENGTH_DIGITS
    segment, crc_text = packet[segment_at:-_CRC_CHARS], packet[-_CRC_CHARS:]
    crc_at = at + len(packet) - _CRC_CHARS
    if not segment.endswith(_CP_CLOSE) or not _is_hex(crc_text):
        raise BadLengthError(
            _PROTOCOL,
            f"a data segment of {len(segment)} characters should end with && and be followed by 4 hex CRC digits, "
            f"found {_shown(packet[-_CRC_CHARS - 2 :])}; the length field is likely wrong",
            offset=crc_at,
        )
    cp_at = segment.find(_CP_OPEN)
    if cp_at < 0:
        raise BadFieldError(_PROTOCOL, "the data segment has no CP=&&", offset=at + segment_at)
    content_at = cp_at + len(_CP_OPEN)
    if len(segment) < content_at + len(_CP_CLOSE):
        raise BadFieldError(_PROTOCOL, "CP=&& is never closed by &&", offset=at + segment_at + cp_at)
    content = segment[content_at : -len(_CP_CLOSE)]
    if _looks_encrypted(content):
        raise EncryptedCpError(
            _PROTOCOL,
            "the CP content is not key=value text: taken for HJ 212-2025 SM4 ciphertext, unreadable without a key",
            offset=at + segment_at + content_at,
        )
    sent_crc, computed_crc = int(crc_text, 16), crc_hj212(segment)
    if sent_crc != computed_crc:
        raise CrcMismatchError(
            _PROTOCOL, f"CRC {crc_text.decode()} sent, {computed_crc:04X} computed over the data segment", offset=crc_at
        )
    header = _header_fields(segment[:cp_at], at + segment_at)
    cn = header.get("CN", "")
    data_time, readings, parameters = _decode_cp(content, cn, at + segment_at + content_at)
    if cn in DATA_COMMANDS and data_time is None:
        raise BadFieldError(_PROTOCOL, f"CN {cn} data without DataTime", offset=at + segment_at + content_at)
    return Packet(
        st=header["ST"],
        cn=cn,
        mn=header["MN"],
        qn=header.get("QN"),
        pw=header.get("PW"),
        flag=_optional_int(header, "Flag", at + segment_at),
        pnum=_optional_int(header, "PNUM", at + segment_at),
        pno=_optional_int(header, "PNO", at + segment_at),
        rf=header.get("RF"),
        extra_header=tuple((key, value) for key, value in header.items() if key not in _KNOWN_HEADER),
        data_time=data_time,
        readings=readings,
        parameters=parameters,
    )


def _looks_encrypted(content: bytes) -> bool:
    """Plain CP content starts with a key of the standard's shape and ``=``; SM4 ciphertext, binary or hex, does not
    (a tail shorter than one block may be left in clear, so only the start is telling)."""
    first = re.split(rb"[;,]", content, maxsplit=1)[0]
    key, equals, _ = first.partition(b"=")
    return bool(content) and (not equals or _KEY.fullmatch(key.decode("latin-1")) is None)


def _header_fields(text: bytes, at: int) -> dict[str, str]:
    """``QN=..;ST=..;...;`` before ``CP=&&``: each field once, ST, CN and MN present, ST and CN numeric."""
    fields: dict[str, str] = {}
    for key, value, offset in _pairs(text, b";", at, allow_trailing=True):
        if key in fields:
            raise BadFieldError(_PROTOCOL, f"header field {key} given twice", offset=offset)
        fields[key] = value
    for key, digits in (("ST", 2), ("CN", 4), ("MN", 0)):
        if key not in fields:
            raise BadFieldError(_PROTOCOL, f"header field {key} is missing", offset=at)
        if digits and not (len(fields[key]) == digits and fields[key].isascii() and fields[key].isdigit()):
            raise BadFieldError(_PROTOCOL, f"{key}={fields[key]!r} is not {digits} digits", offset=at)
    return fields


def _optional_int(fields: Mapping[str, str], key: str, at: int) -> int | None:
    text = fields.get(key)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 4):
        raise BadFieldError(_PROTOCOL, f"{key}={text!r} is not a small decimal number", offset=at)
    return int(text)


def _pairs(text: bytes, separator: bytes, at: int, *, allow_trailing: bool) -> Iterator[tuple[str, str, int]]:
    """``key=value`` items of ASCII text, with the offset of each; the keys follow the standard's pattern."""
    pos = 0
    items = text.split(separator)
    if allow_trailing and items and not items[-1]:
        items.pop()
    for item in items:
        key, equals, value = item.partition(b"=")
        if not equals or not item.isascii() or _KEY.fullmatch(key.decode("ascii", "replace")) is None:
            raise BadFieldError(_PROTOCOL, f"{_shown(item[:24])} is not a key=value item", offset=at + pos)
        yield key.decode(), value.decode(), at + pos
        pos += len(item) + len(separator)


def _decode_cp(
    content: bytes, cn: str, at: int
) -> tuple[datetime | None, tuple[Reading, ...], tuple[tuple[str, str], ...]]:
    data_time: datetime | None = None
    parameters: list[tuple[str, str]] = []
    fields: dict[str, dict[str, tuple[str, int]]] = {}
    pos = 0
    for group in content.split(b";") if content else []:
        for key, value, offset in _pairs(group, b",", at + pos, allow_trailing=False):
            if key == "DataTime":
                if data_time is not None:
                    raise BadFieldError(_PROTOCOL, "DataTime given twice", offset=offset)
                data_time = _decode_time(value, offset)
            elif cn in DATA_COMMANDS and "-" in key:
                code, _, suffix = key.partition("-")
                if suffix in fields.setdefault(code, {}):
                    raise BadFieldError(_PROTOCOL, f"{key} given twice", offset=offset)
                fields[code][suffix] = (value, offset)
            else:
                parameters.append((key, value))
        pos += len(group) + 1
    readings = tuple(_reading(code, sent) for code, sent in fields.items())
    return data_time, readings, tuple(parameters)


def _reading(code: str, sent: Mapping[str, tuple[str, int]]) -> Reading:
    numbers = {suffix: _number(code, suffix, *sent[suffix]) for suffix in _NUMERIC_FIELDS if suffix in sent}
    flag = sent.get(_FLAG_FIELD)
    extra = tuple(
        (suffix, value) for suffix, (value, _) in sent.items() if suffix not in (*_NUMERIC_FIELDS, _FLAG_FIELD)
    )
    return Reading(
        code=code,
        rtd=numbers.get("Rtd"),
        avg=numbers.get("Avg"),
        min=numbers.get("Min"),
        max=numbers.get("Max"),
        cou=numbers.get("Cou"),
        flag=None if flag is None else flag[0],
        extra=extra,
    )


def _number(code: str, suffix: str, text: str, offset: int) -> Decimal:
    if _NUMBER.fullmatch(text) is None:
        raise BadFieldError(_PROTOCOL, f"{code}-{suffix}={text[:24]!r} is not a number", offset=offset)
    try:
        return Decimal(text)
    except InvalidOperation:  # the pattern admits only what Decimal reads; kept as the one exit for bad numbers
        raise BadFieldError(_PROTOCOL, f"{code}-{suffix}={text[:24]!r} is not a number", offset=offset) from None


def _decode_time(text: str, offset: int) -> datetime:
    """``YYYYMMDDhhmmss`` in Beijing time (trap 5), returned in UTC."""
    try:
        if len(text) != 14 or not text.isdigit():
            raise ValueError(text)
        month, day, hour, minute, second = (int(text[i : i + 2]) for i in range(4, 14, 2))
        return as_utc(datetime(int(text[:4]), month, day, hour, minute, second, tzinfo=BEIJING))
    except ValueError:
        raise BadFieldError(_PROTOCOL, f"DataTime={text[:24]!r} is not a YYYYMMDDhhmmss time", offset=offset) from None


def _is_hex(text: bytes) -> bool:
    return len(text) == _CRC_CHARS and all(char in b"0123456789abcdefABCDEF" for char in text)


def _shown(data: bytes) -> str:
    """A short piece of the input, printable in a one-line message."""
    return repr(data.decode("ascii", "backslashreplace"))


# --- encoding and answers ---------------------------------------------------------------------------------------


def encode_packet(packet: Packet, *, line_end: bool = True) -> str:
    """The packet's text, with length and CRC; CRLF unless ``line_end`` is False. Raises ValueError for a value
    the standard's syntax cannot carry (``;``, ``,``, ``=`` or ``&`` inside it, non-ASCII text)."""
    header = [
        ("QN", packet.qn),
        ("ST", packet.st),
        ("CN", packet.cn),
        ("PW", packet.pw),
        ("MN", packet.mn),
        ("Flag", None if packet.flag is None else str(packet.flag)),
        ("PNUM", None if packet.pnum is None else str(packet.pnum)),
        ("PNO", None if packet.pno is None else str(packet.pno)),
        ("RF", packet.rf),
        *packet.extra_header,
    ]
    groups: list[str] = []
    if packet.data_time is not None:
        groups.append(f"DataTime={packet.data_time.astimezone(BEIJING):%Y%m%d%H%M%S}")
    groups.extend(_item(key, value) for key, value in packet.parameters)
    groups.extend(_reading_group(reading) for reading in packet.readings)
    head = "".join(f"{_item(key, value)};" for key, value in header if value is not None)
    segment = f"{head}CP=&&{';'.join(groups)}&&"
    if not segment.isascii() or len(segment) > 9999:
        raise ValueError("an HJ 212 data segment is ASCII text of at most 9999 characters")
    crc = crc_hj212(segment.encode("ascii"))
    return f"##{len(segment):04d}{segment}{crc:04X}" + ("\r\n" if line_end else "")


def _reading_group(reading: Reading) -> str:
    numbers = zip(_NUMERIC_FIELDS, (reading.rtd, reading.avg, reading.min, reading.max, reading.cou), strict=True)
    fields = [(suffix, format(value, "f")) for suffix, value in numbers if value is not None]
    if reading.flag is not None:
        fields.append((_FLAG_FIELD, reading.flag))
    fields.extend(reading.extra)
    if not fields:
        raise ValueError(f"reading {reading.code} has no field to send")
    return ",".join(_item(f"{reading.code}-{suffix}", value) for suffix, value in fields)


def _item(key: str, value: str) -> str:
    if _KEY.fullmatch(key) is None or any(char in value for char in ";,=&\r\n"):
        raise ValueError(f"{key}={value!r} cannot be written as an HJ 212 item")
    return f"{key}={value}"


def required_response(packet: Packet) -> Packet | None:
    """What the platform must send back, if anything: a 9014 data answer to an upload with the A bit set, same QN,
    PW and MN, ST 91, the sender's version and no answer wanted (reference 2.7). Other commands need none from us."""
    if not packet.is_answer_required or packet.cn not in UPLOAD_COMMANDS:
        return None
    return Packet(st="91", cn="9014", mn=packet.mn, qn=packet.qn, pw=packet.pw, flag=(packet.version or 0) << 2)
