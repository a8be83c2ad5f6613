"""SL 651-2014 frames: the reference's real samples decode to the values it lists, every kind of damage is named
with its place, and any input at all gives a frame or a DecodeError, never anything else.

Expected values are copied from the domain reference (section 1.13), not produced by the decoder.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.protocols.errors import (
    BadBcdDigitError,
    BadFieldError,
    BadFrameError,
    BadLengthError,
    CrcMismatchError,
    DecodeError,
    TruncatedFrameError,
    UnsupportedFrameError,
)
from connectors.protocols.sl651 import (
    ELEMENTS,
    REPORT_FUNCTIONS,
    Direction,
    EndChar,
    Frame,
    Header,
    ManualEntry,
    ObservationTime,
    PacketPosition,
    RawBody,
    RawElement,
    Report,
    Series,
    StartChar,
    StationGuide,
    StatusAlarm,
    StatusWord,
    Value,
    acknowledgement,
    crc16_modbus,
    decode_frame,
    encode_frame,
    join_packets,
    split_packets,
)

BEIJING = timezone(timedelta(hours=8))

KEEP_ALIVE = "7e7e011090330853a0002f000802009f26020209410003bde3"
ACKNOWLEDGEMENT = "7e7e109033085301a00032800802009e2602020940241b8c37"
TIMED_P = (
    "7e7e011090330853a00032004d02009e260202094021f1f1109033085350f0f026020209402219000000272b0000000000392300000138"
    "371b000000302b000004300020190000001f1900000026190000001a1900000038121197035f3c"
)
TIMED_H = (
    "7E7E011000000006000032002B022F7C221202133716F1F1100000000648F0F02212021335201900000026190031963923000289603812"
    "131203367C"
)
HOURLY_ARRAYS = (
    "7E7E0100123456781234340053020010240601100005F1F1001234567848F0F02406011000F4600000030C19281205000000FFF5C004D2"
    "04D404D804DD04E304EA04EE04F104F204F204F1FFFF2619001523392300012650381212650319FF0015039EBC"
)
SAMPLES = (KEEP_ALIVE, ACKNOWLEDGEMENT, TIMED_P, TIMED_H, HOURLY_ARRAYS)


def _beijing(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=BEIJING)  # type: ignore[arg-type,misc]  # year, month, day... from the reference


def _resealed(frame: bytes) -> bytes:
    """A frame whose content was changed on purpose, with a valid CRC again so the content check is reached."""
    body = frame[:-2]
    return body + crc16_modbus(body).to_bytes(2, "big")


def _values(frame: Frame) -> list[tuple[str | None, Decimal | None]]:
    assert isinstance(frame.body, Report)
    return [(o.mnemonic, o.value) for o in frame.body.observations()]


def test_crc_matches_the_modbus_check_value() -> None:
    assert crc16_modbus(b"123456789") == 0x4B37


def test_keep_alive_sample_decodes_to_the_reference_fields() -> None:
    frame = decode_frame(KEEP_ALIVE)
    assert frame.header == Header(Direction.UP, 1, "1090330853", "A000", 0x2F)
    assert frame.body == Report(serial=159, sent_at=_beijing(2026, 2, 2, 9, 41, 0))
    assert frame.end is EndChar.ETX


def test_acknowledgement_sample_uses_the_downlink_layout() -> None:
    frame = decode_frame(ACKNOWLEDGEMENT)
    assert frame.header == Header(Direction.DOWN, 1, "1090330853", "A000", 0x32)
    assert frame.body == Report(serial=158, sent_at=_beijing(2026, 2, 2, 9, 40, 24))
    assert frame.end is EndChar.ESC


def test_the_centre_acknowledges_the_timed_report_with_the_reference_frame() -> None:
    report = decode_frame(TIMED_P)
    answer = acknowledgement(report, sent_at=_beijing(2026, 2, 2, 9, 40, 24))
    assert encode_frame(answer).hex() == ACKNOWLEDGEMENT


def test_timed_report_of_a_rainfall_station_decodes_every_element() -> None:
    frame = decode_frame(TIMED_P)
    assert isinstance(frame.body, Report)
    assert (frame.body.serial, frame.body.sent_at) == (158, _beijing(2026, 2, 2, 9, 40, 21))
    assert frame.body.station == StationGuide("1090330853", "P")
    assert _values(frame) == [
        ("PN05", Decimal("0.0")),
        ("Q", Decimal("0.000")),
        ("Z", Decimal("0.138")),
        ("VJ", Decimal("0.000")),
        ("QA", Decimal("43.000")),
        ("PJ", Decimal("0.0")),
        ("PD", Decimal("0.0")),
        ("PT", Decimal("0.0")),
        ("P1", Decimal("0.0")),
        ("VT", Decimal("11.97")),
    ]
    observed = {o.observed_at for o in frame.body.observations()}
    assert observed == {datetime(2026, 2, 2, 1, 40, tzinfo=UTC)}


def test_timed_report_of_a_river_station_decodes_every_element() -> None:
    frame = decode_frame(TIMED_H)
    assert frame.header == Header(Direction.UP, 1, "1000000006", "0000", 0x32)
    assert isinstance(frame.body, Report)
    assert (frame.body.serial, frame.body.sent_at) == (12156, _beijing(2022, 12, 2, 13, 37, 16))
    assert frame.body.station == StationGuide("1000000006", "H")
    assert _values(frame) == [
        ("PJ", Decimal("0.0")),
        ("PT", Decimal("319.6")),
        ("Z", Decimal("28.960")),
        ("VT", Decimal("13.12")),
    ]
    assert {o.observed_at for o in frame.body.observations()} == {_beijing(2022, 12, 2, 13, 35)}


def test_hourly_arrays_expand_into_twelve_five_minute_observations() -> None:
    frame = decode_frame(HOURLY_ARRAYS)
    assert isinstance(frame.body, Report)
    observations = frame.body.observations()
    rain = [o for o in observations if o.identifier == "F4"]
    level = [o for o in observations if o.identifier == "F5"]
    expected_rain = ["0.0", "0.0", "0.3", "1.2", "2.5", "4.0", "1.8", "0.5", "0.0", "0.0", "0.0", None]
    expected_level = ["12.34", "12.36", "12.40", "12.45", "12.51", "12.58", "12.62", "12.65", "12.66", "12.66"]
    assert [o.value for o in rain] == [None if v is None else Decimal(v) for v in expected_rain]
    assert [o.value for o in level] == [*map(Decimal, expected_level), Decimal("12.65"), None]
    assert {o.unit for o in rain} == {"mm"}
    assert {o.unit for o in level} == {"m"}
    # The module's [U] assumption: the twelve values cover the hour ending at the observation time (10:00).
    five_minutes = [_beijing(2024, 6, 1, 9, 5) + timedelta(minutes=5 * i) for i in range(12)]
    assert [o.observed_at for o in rain] == five_minutes
    assert [o.observed_at for o in level] == five_minutes
    others = [(o.mnemonic, o.value, o.observed_at) for o in observations if o.identifier not in ("F4", "F5")]
    ten = _beijing(2024, 6, 1, 10, 0)
    assert others == [
        ("PT", Decimal("152.3"), ten),
        ("Z", Decimal("12.650"), ten),
        ("VT", Decimal("12.65"), ten),
        ("C", Decimal("-1.5"), ten),
    ]


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_sample_encodes_back_to_its_own_bytes(sample: str) -> None:
    assert encode_frame(decode_frame(sample)) == bytes.fromhex(sample)


def test_frames_arrive_as_bytes_or_as_spaced_hex_text() -> None:
    spaced = " ".join(KEEP_ALIVE[i : i + 2].upper() for i in range(0, len(KEEP_ALIVE), 2))
    assert decode_frame(spaced) == decode_frame(bytes.fromhex(KEEP_ALIVE))


def test_missing_values_unknown_identifiers_extensions_and_the_status_word() -> None:
    header = bytes.fromhex("7e7e011090330853a00032")
    body = bytes.fromhex(
        "009e260202094021"  # serial, send time
        "f0f02602020940"  # observation time
        "3923ffffffff"  # Z missing: all FF
        "7612abcd"  # identifier 76 is not in the table: kept raw
        "ff38121234"  # extension FF 38, definition 12
        "452000000081"  # ZT: bits 0 and 7
    )
    unsigned = header + len(body).to_bytes(2, "big") + b"\x02" + body + b"\x03"
    frame = decode_frame(_resealed(unsigned + b"\0\0"))
    assert isinstance(frame.body, Report)
    assert frame.body.items[1:] == (
        Value(0x39, 0x23, None),
        RawElement(0x76, 0x12, bytes.fromhex("abcd")),
        RawElement(0xFF38, 0x12, bytes.fromhex("1234")),
        StatusWord(0x20, 0x81),
    )
    assert frame.body.items[-1].alarms == StatusAlarm.POWER_CUT | StatusAlarm.DOOR_CLOSED  # type: ignore[union-attr]
    assert [(o.identifier, o.value) for o in frame.body.observations()] == [("39", None), ("45", Decimal(0x81))]


def test_later_packets_of_a_multi_packet_transfer_keep_their_body_raw() -> None:
    header = Header(Direction.UP, 1, "0012345678", "1234", 0x36, StartChar.SYN, PacketPosition(3, 2))
    frame = Frame(header, RawBody(b"\x01\x02\x03"), EndChar.ETB)
    encoded = encode_frame(frame)
    assert encoded[13:17] == bytes.fromhex("16 00 30 02")  # SYN, total 3 and sequence 2 in 12 bits each
    assert decode_frame(encoded) == frame


# --- every kind of fault, with where it is ---------------------------------------------------------------------

TIMED_P_BYTES = bytes.fromhex(TIMED_P)


def _changed(at: int, new: str) -> bytes:
    patch = bytes.fromhex(new)
    return _resealed(TIMED_P_BYTES[:at] + patch + TIMED_P_BYTES[at + len(patch) :])


FAULTS = [
    (TIMED_P_BYTES[:-1] + b"\x00", CrcMismatchError, 92, "CRC 5F00 sent, 5F3C computed"),
    (TIMED_P_BYTES[:60], TruncatedFrameError, 60, "body length 77 makes the frame 94"),
    (TIMED_P_BYTES + b"\x00", BadLengthError, 94, "1 bytes follow the CRC"),
    (b"\x7e\x7d" + TIMED_P_BYTES[2:], BadFrameError, 1, "not 7E 7E"),
    (b"\x01" + TIMED_P_BYTES[1:], UnsupportedFrameError, 0, "ASCII variant"),
    (b"", TruncatedFrameError, 0, "empty input"),
    (_changed(91, "1a"), BadFrameError, 91, "end character 1A"),
    (_changed(13, "03"), BadFrameError, 13, "start character 03"),
    (_changed(11, "40"), BadFieldError, 11, "direction nibble 4"),
    (_changed(4, "9a"), BadBcdDigitError, 4, "remote station address has nibble A"),
    (_changed(51, "00c1"), BadBcdDigitError, 52, "value of element 39 has nibble C"),
    (_changed(32, "2613"), BadFieldError, 32, "observation time 26-13-02-09-40"),
    (_changed(29, "70"), BadFieldError, 29, "station type 70"),
    (_changed(30, "f000"), BadFieldError, 30, "guide F0 is not doubled"),
    (_changed(88, "3f"), BadLengthError, 89, "value of element 38 needs 7 bytes, 2 remain"),
]


@pytest.mark.parametrize(("frame", "error", "offset", "words"), FAULTS, ids=[words for *_, words in FAULTS])
def test_each_fault_is_named_with_its_offset(frame: bytes, error: type[DecodeError], offset: int, words: str) -> None:
    with pytest.raises(error) as raised:
        decode_frame(frame)
    assert raised.value.offset == offset
    assert words in str(raised.value)
    assert str(raised.value).startswith("sl651: ")


def test_an_element_before_any_observation_time_is_refused() -> None:
    # Move Z (39 23 00000138, bytes 49-54) in front of the F0 F0 guide (byte 30).
    moved = TIMED_P_BYTES[:30] + TIMED_P_BYTES[49:55] + TIMED_P_BYTES[30:49] + TIMED_P_BYTES[55:]
    with pytest.raises(BadFieldError, match="element 39 comes before any F0 F0") as raised:
        decode_frame(_resealed(moved))
    assert raised.value.offset == 30


def test_reason_codes_name_protocol_and_fault() -> None:
    with pytest.raises(CrcMismatchError) as raised:
        decode_frame(TIMED_P_BYTES[:-1] + b"\x00")
    assert raised.value.reason == "sl651_crc_mismatch"


def test_non_hex_text_names_the_character() -> None:
    with pytest.raises(BadFrameError, match="'g' is not a hex digit") as raised:
        decode_frame("7e7eg0")
    assert raised.value.offset == 4


# --- properties -------------------------------------------------------------------------------------------------

# Hypothesis takes naive bounds; every drawn time becomes Beijing time, then UTC, as the decoder returns it.
_local = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59))  # noqa: DTZ001
_minutes = _local.map(lambda t: t.replace(second=0, microsecond=0, tzinfo=BEIJING).astimezone(UTC))
_seconds = _local.map(lambda t: t.replace(microsecond=0, tzinfo=BEIJING).astimezone(UTC))
_digits10 = st.text("0123456789", min_size=10, max_size=10)
_plain_ids = sorted(i for i in ELEMENTS if i != 0x45 and i < 0xF4)


@st.composite
def _bcd_values(draw: st.DrawFn) -> Value:
    size, decimals = draw(st.integers(1, 6)), draw(st.integers(0, 7))
    definition = size << 3 | decimals
    negative = size > 1 and draw(st.booleans())
    digits = 2 * (size - 1 if negative else size)
    units = draw(st.none() | st.integers(0, 10**digits - 1))
    value = None if units is None else Decimal((int(negative), tuple(map(int, str(units))), -decimals))
    return Value(draw(st.sampled_from(_plain_ids)), definition, value)


@st.composite
def _series(draw: st.DrawFn) -> Series:
    identifier = draw(st.sampled_from(range(0xF4, 0xFD)))
    width, decimals = (1, 1) if identifier == 0xF4 else (2, 2)
    missing = (1 << 8 * width) - 1
    units = draw(st.lists(st.none() | st.integers(0, missing - 1), min_size=1, max_size=31 // width))
    values = tuple(None if u is None else Decimal((0, tuple(map(int, str(u))), -decimals)) for u in units)
    return Series(identifier, len(units) * width << 3, values)


@st.composite
def _status(draw: st.DrawFn) -> StatusWord:
    size = draw(st.integers(1, 4))
    return StatusWord(size << 3, draw(st.none() | st.integers(0, 256**size - 2)))


@st.composite
def _raw(draw: st.DrawFn) -> RawElement:
    identifier = draw(st.sampled_from(range(0x76, 0xF0)) | st.integers(0, 255).map(lambda b: 0xFF00 | b))
    data = draw(st.binary(max_size=8))
    return RawElement(identifier, len(data) << 3 | draw(st.integers(0, 7)), data)


@st.composite
def _reports(draw: st.DrawFn) -> Report:
    items: list[object] = []
    if draw(st.booleans()):
        items.append(StationGuide(draw(_digits10), draw(st.sampled_from("PHKZDTMGQIO"))))
    for _ in range(draw(st.integers(0, 3))):
        items.append(ObservationTime(draw(_minutes)))
        items.extend(draw(st.lists(_bcd_values() | _series() | _status() | _raw(), max_size=5)))
    if draw(st.booleans()):
        items.append(ManualEntry(draw(st.binary(max_size=20))))
    return Report(draw(st.integers(0, 0xFFFF)), draw(_seconds), tuple(items))  # type: ignore[arg-type]


@st.composite
def _frames(draw: st.DrawFn) -> Frame:
    is_syn = draw(st.booleans())
    packet = None
    if is_syn:
        total = draw(st.integers(1, 0xFFF))
        packet = PacketPosition(total, draw(st.integers(1, total)))
    function = draw(st.sampled_from(sorted(REPORT_FUNCTIONS)) | st.integers(0, 255))
    is_report = function in REPORT_FUNCTIONS and (packet is None or packet.total == 1)
    body = draw(_reports()) if is_report else RawBody(draw(st.binary(max_size=40)))
    header = Header(
        draw(st.sampled_from(Direction)),
        draw(st.integers(0, 255)),
        draw(_digits10),
        draw(st.binary(min_size=2, max_size=2)).hex().upper(),
        function,
        StartChar.SYN if is_syn else StartChar.STX,
        packet,
    )
    return Frame(header, body, draw(st.sampled_from(EndChar)))


@given(_frames())
@settings(max_examples=300)
def test_decoding_an_encoded_frame_gives_the_frame_back(frame: Frame) -> None:
    assert decode_frame(encode_frame(frame)) == frame


@given(_reports(), st.integers(1, 40), st.sampled_from(sorted(REPORT_FUNCTIONS)), st.randoms(use_true_random=False))
@settings(max_examples=100)
def test_a_report_split_into_packets_joins_back_whatever_their_order(
    report: Report, body_bytes: int, function: int, shuffler: random.Random
) -> None:
    frame = Frame(Header(Direction.UP, 1, "0012345678", "1234", function), report)
    packets = [decode_frame(encode_frame(packet)) for packet in split_packets(frame, body_bytes)]
    assert all(isinstance(packet.body, RawBody) for packet in packets) or len(packets) == 1
    assert [packet.end for packet in packets] == [EndChar.ETB] * (len(packets) - 1) + [EndChar.ETX]
    shuffler.shuffle(packets)
    assert join_packets(packets) == frame


def test_the_first_packet_of_a_transfer_is_not_read_as_a_whole_report() -> None:
    """Its body stops wherever the RTU cut it, mid-element as likely as not: read alone it would be wrong."""
    items = (ObservationTime(datetime(2024, 6, 1, 2, tzinfo=UTC)), Value(0x39, 0x23, Decimal("12.345")))
    frame = Frame(
        Header(Direction.UP, 1, "0012345678", "1234", 0x32), Report(7, datetime(2024, 6, 1, 2, tzinfo=UTC), items)
    )
    first, second = split_packets(frame, 12)
    assert decode_frame(encode_frame(first)).body == RawBody(encode_frame(frame)[14:26])
    with pytest.raises(BadFrameError, match="not one whole transfer"):
        join_packets([decode_frame(encode_frame(first))])  # the second is missing
    other = replace(second, header=replace(second.header, remote_address="0012345679"))
    with pytest.raises(BadFrameError, match="not one whole transfer"):
        join_packets([first, other])  # another station's packet


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError):  # anything else fails the test
        decode_frame(data)


@given(st.binary(max_size=120).map(lambda tail: b"\x7e\x7e" + tail))
def test_bytes_after_a_valid_start_raise_only_decode_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError):  # anything else fails the test
        decode_frame(data)


@given(st.text(max_size=200))
def test_arbitrary_text_raises_only_decode_errors(text: str) -> None:
    with contextlib.suppress(DecodeError):  # anything else fails the test
        decode_frame(text)


@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255), st.sampled_from(("set", "insert", "delete")))),
    st.booleans(),
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mutated_samples_decode_or_raise_only_decode_errors(
    sample: str, edits: list[tuple[int, int, str]], reseal: bool
) -> None:
    data = bytearray.fromhex(sample)
    for at, byte, how in edits:
        at %= len(data) + 1
        if how == "insert":
            data.insert(at, byte)
        elif at < len(data):
            if how == "set":
                data[at] = byte
            else:
                del data[at]
    mutated = _resealed(bytes(data)) if reseal and len(data) >= 2 else bytes(data)
    with contextlib.suppress(DecodeError):  # anything else fails the test
        decode_frame(mutated)
