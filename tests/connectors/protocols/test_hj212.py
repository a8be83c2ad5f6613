"""HJ 212 packets: the reference's examples decode to their listed values and CRCs, the platform's answer is the
reference's own 9014 text, faults are named with their offset, and no input raises anything but a DecodeError.

Expected values and packet texts are copied from the domain reference (sections 2.7-2.9).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.protocols.errors import (
    BadFieldError,
    BadFrameError,
    BadLengthError,
    CrcMismatchError,
    DecodeError,
    EncryptedCpError,
    TruncatedFrameError,
)
from connectors.protocols.hj212 import (
    DATA_COMMANDS,
    INTERVALS,
    Packet,
    Reading,
    crc_hj212,
    decode_packet,
    decode_payload,
    encode_packet,
    required_response,
    split_packets,
)

BEIJING = timezone(timedelta(hours=8))

SET_INTERVAL = (
    "##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&"
    "1C80\r\n"
)
REALTIME = (
    "##0292QN=20240601101500123;ST=21;CN=2011;PW=123456;MN=WHEXAMPLE000000000000001;Flag=4;CP=&&DataTime=20240601101500;"
    "w01001-Rtd=7.35,w01001-Flag=N;w01009-Rtd=6.82,w01009-Flag=N;w01010-Rtd=26.4,w01010-Flag=N;w01014-Rtd=412.5,"
    "w01014-Flag=N;w01003-Rtd=18.6,w01003-Flag=N;w21003-Rtd=0.412,w21003-Flag=N&&2340\r\n"
)
HOURLY = (
    "##0485QN=20240601110005456;ST=21;CN=2061;PW=123456;MN=WHEXAMPLE000000000000001;Flag=5;CP=&&DataTime=20240601100000;"
    "w01001-Avg=7.31,w01001-Min=7.22,w01001-Max=7.40,w01001-Flag=N;w01009-Avg=6.75,w01009-Min=6.41,w01009-Max=7.02,"
    "w01009-Flag=N;w01019-Avg=3.2,w01019-Min=3.2,w01019-Max=3.2,w01019-Flag=N;w21003-Avg=0.405,w21003-Min=0.405,"
    "w21003-Max=0.405,w21003-Flag=N;w21011-Avg=0.118,w21011-Min=0.118,w21011-Max=0.118,w21011-Flag=N;"
    "w21001-Avg=1.62,w21001-Min=1.62,w21001-Max=1.62,w21001-Flag=M&&A781\r\n"
)
DATA_ANSWER = "##0087QN=20240601110005456;ST=91;CN=9014;PW=123456;MN=WHEXAMPLE000000000000001;Flag=4;CP=&&&&3740\r\n"
GET_TIME_2025 = "##0087QN=20240601085857223;ST=32;CN=1011;PW=123456;MN=010000A8900016F000169DC0;Flag=9;CP=&&&&2200"
EXAMPLES = (SET_INTERVAL, REALTIME, HOURLY, DATA_ANSWER, GET_TIME_2025)


def _sealed(segment: str | bytes, crc: int | None = None) -> bytes:
    """A packet around a data segment, its CRC computed unless one is given (to plant a fault)."""
    data = segment.encode() if isinstance(segment, str) else segment
    crc = crc_hj212(data) if crc is None else crc
    return b"##%04d" % len(data) + data + b"%04X" % crc


def test_crc_matches_the_standards_check_value_not_modbus() -> None:
    assert crc_hj212(b"123456789") == 0x2F80


@pytest.mark.parametrize(
    ("packet", "crc"),
    [(SET_INTERVAL, "1C80"), (REALTIME, "2340"), (HOURLY, "A781"), (DATA_ANSWER, "3740"), (GET_TIME_2025, "2200")],
)
def test_every_example_carries_the_crc_of_its_data_segment(packet: str, crc: str) -> None:
    segment = packet.rstrip("\r\n")[6:-4]
    assert f"{crc_hj212(segment.encode()):04X}" == crc
    assert len(segment) == int(packet[2:6])


def test_the_standards_set_interval_example_decodes() -> None:
    packet = decode_packet(SET_INTERVAL)
    assert (packet.qn, packet.st, packet.cn, packet.pw, packet.mn) == (
        "20160801085857223",
        "32",
        "1062",
        "100000",
        "010000A8900016F000169DC0",
    )
    assert (packet.flag, packet.version, packet.is_answer_required, packet.is_split) == (5, 1, True, False)
    assert packet.parameters == (("RtdInterval", "30"),)
    assert packet.readings == ()


def test_a_realtime_packet_gives_each_factors_value_and_flag() -> None:
    packet = decode_packet(REALTIME)
    assert packet.data_time == datetime(2024, 6, 1, 10, 15, tzinfo=BEIJING)
    assert packet.data_time.tzinfo is UTC
    assert [(r.code, r.rtd, r.flag) for r in packet.readings] == [
        ("w01001", Decimal("7.35"), "N"),
        ("w01009", Decimal("6.82"), "N"),
        ("w01010", Decimal("26.4"), "N"),
        ("w01014", Decimal("412.5"), "N"),
        ("w01003", Decimal("18.6"), "N"),
        ("w21003", Decimal("0.412"), "N"),
    ]
    assert not packet.is_answer_required


def test_an_hourly_packet_is_stamped_at_the_start_of_its_hour() -> None:
    packet = decode_packet(HOURLY)
    assert packet.data_time == datetime(2024, 6, 1, 10, 0, tzinfo=BEIJING)
    assert INTERVALS[packet.cn] == timedelta(hours=1)
    assert [(r.code, r.avg, r.min, r.max, r.flag) for r in packet.readings] == [
        ("w01001", Decimal("7.31"), Decimal("7.22"), Decimal("7.40"), "N"),
        ("w01009", Decimal("6.75"), Decimal("6.41"), Decimal("7.02"), "N"),
        ("w01019", Decimal("3.2"), Decimal("3.2"), Decimal("3.2"), "N"),
        ("w21003", Decimal("0.405"), Decimal("0.405"), Decimal("0.405"), "N"),
        ("w21011", Decimal("0.118"), Decimal("0.118"), Decimal("0.118"), "N"),
        ("w21001", Decimal("1.62"), Decimal("1.62"), Decimal("1.62"), "M"),
    ]
    assert str(packet.readings[0].max) == "7.40"  # as sent: two decimals


def test_the_2025_example_is_version_2_and_accepted_without_crlf() -> None:
    packet = decode_packet(GET_TIME_2025)
    assert (packet.cn, packet.flag, packet.version, packet.is_answer_required) == ("1011", 9, 2, True)


@pytest.mark.parametrize("text", EXAMPLES)
def test_every_example_encodes_back_to_its_own_text(text: str) -> None:
    assert encode_packet(decode_packet(text), line_end=text.endswith("\r\n")) == text


def test_the_platform_answers_an_hourly_upload_with_the_reference_9014() -> None:
    answer = required_response(decode_packet(HOURLY))
    assert answer is not None
    assert encode_packet(answer) == DATA_ANSWER


@pytest.mark.parametrize("text", [REALTIME, SET_INTERVAL, DATA_ANSWER])
def test_no_answer_when_the_a_bit_is_clear_or_the_packet_is_no_upload(text: str) -> None:
    assert required_response(decode_packet(text)) is None


def test_a_2025_upload_is_answered_in_version_2() -> None:
    upload = Packet(st="21", cn="2061", mn="M1", qn="20240601110005456", pw="123456", flag=9)
    answer = required_response(upload)
    assert answer is not None
    assert answer.flag == 8


@pytest.mark.parametrize("flag", range(12))
def test_no_flag_version_is_rejected(flag: int) -> None:
    packet = decode_packet(encode_packet(Packet(st="21", cn="9015", mn="M1", flag=flag, rf="1")))
    assert (packet.flag, packet.version, packet.rf) == (flag, flag >> 2, "1")


def test_several_packets_in_one_payload_without_line_ends() -> None:
    payload = REALTIME.strip() + HOURLY.strip() + DATA_ANSWER
    assert [p.cn for p in decode_payload(payload)] == ["2011", "2061", "9014"]
    assert [at for at, _ in split_packets(payload)] == [0, len(REALTIME) - 2, len(REALTIME) + len(HOURLY) - 4]


def test_a_bad_packet_in_a_payload_is_named_at_its_own_offset() -> None:
    damaged = HOURLY.replace("A781", "A782")
    with pytest.raises(CrcMismatchError) as raised:
        decode_payload(REALTIME + damaged)
    assert raised.value.offset == len(REALTIME) + damaged.index("A782")
    assert "A782 sent, A781 computed" in str(raised.value)


def test_lower_case_crc_is_accepted() -> None:
    assert decode_packet(HOURLY.replace("A781", "a781")) == decode_packet(HOURLY)


def test_an_encrypted_cp_is_recognised_whatever_its_crc() -> None:
    header = "QN=20240601085857223;ST=32;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=9;"
    plain = f"{header}CP=&&DataTime=20240601085800;w01018-Rtd=12.5&&"
    ciphertext = bytes(range(0x80, 0x90))  # an SM4 block: binary, same length as the plaintext it hides
    cipher_hex = "9F3A" * 8  # or sent as hex text
    for hidden in (ciphertext, cipher_hex.encode()):
        segment = f"{header}CP=&&".encode() + hidden + b"&&"
        with pytest.raises(EncryptedCpError) as raised:
            decode_packet(_sealed(segment, crc_hj212(plain.encode())))
        assert raised.value.reason == "hj212_encrypted_cp"
        assert raised.value.offset == 6 + len(header) + len("CP=&&")


def _packet_with(segment: str) -> bytes:
    return _sealed(segment)


HEAD = "QN=20240601101500123;ST=21;CN=2011;PW=123456;MN=M1;Flag=4;"
FAULTS = [
    (REALTIME.replace("2340", "2341"), CrcMismatchError, REALTIME.index("2340"), "2341 sent, 2340 computed"),
    (REALTIME[:100], TruncatedFrameError, 100, "length field 0292 makes the packet 302 bytes"),
    ("##02a2" + REALTIME[6:], BadFrameError, 2, "length field '02a2' is not 4 decimal digits"),
    ("##0291" + REALTIME[6:], BadLengthError, 297, "should end with &&"),
    ("#!" + REALTIME[2:], BadFrameError, 0, "starts with ##"),
    ("", TruncatedFrameError, 0, "no packet"),
    (REALTIME + REALTIME, BadLengthError, len(REALTIME), "more than one packet where one was expected"),
    (_packet_with("QN=1;ST=21;MN=M1;CP=&&&&"), BadFieldError, 6, "header field CN is missing"),
    (_packet_with("QN=1;ST=21;CN=2011;MN=M1;CP=&&&&"), BadFieldError, 36, "CN 2011 data without DataTime"),
    (_packet_with("ST=21;CN=2011;ST=21;MN=M1;CP=&&&&"), BadFieldError, 20, "header field ST given twice"),
    (_packet_with("ST=2x;CN=2011;MN=M1;CP=&&&&"), BadFieldError, 6, "ST='2x' is not 2 digits"),
    (_packet_with("ST=21;CN=9014;MN=M1;Flag=x;CP=&&&&"), BadFieldError, 6, "Flag='x' is not a small decimal"),
    (_packet_with("ST=21;CN=9014;MN;CP=&&&&"), BadFieldError, 20, "'MN' is not a key=value item"),
    (_packet_with("ST=21;CN=2011;MN=M1;XX=&&"), BadFieldError, 6, "has no CP=&&"),
    (
        _packet_with(f"{HEAD}CP=&&DataTime=20241301101500;w01001-Rtd=7.3&&"),
        BadFieldError,
        6 + len(HEAD) + 5,
        "DataTime='20241301101500' is not a YYYYMMDDhhmmss time",
    ),
    (
        _packet_with(f"{HEAD}CP=&&DataTime=20240601101500;w01001-Rtd=7,3&&"),
        BadFieldError,
        6 + len(HEAD) + 5 + 24 + 13,
        "'3' is not a key=value item",
    ),
    (
        _packet_with(f"{HEAD}CP=&&DataTime=20240601101500;w01001-Rtd=abc&&"),
        BadFieldError,
        6 + len(HEAD) + 5 + 24,
        "w01001-Rtd='abc' is not a number",
    ),
    (
        _packet_with(f"{HEAD}CP=&&DataTime=20240601101500;w01001-Rtd=1,w01001-Rtd=2&&"),
        BadFieldError,
        6 + len(HEAD) + 5 + 24 + 13,
        "w01001-Rtd given twice",
    ),
]


@pytest.mark.parametrize(("packet", "error", "offset", "words"), FAULTS, ids=[words for *_, words in FAULTS])
def test_each_fault_is_named_with_its_offset(
    packet: str | bytes, error: type[DecodeError], offset: int, words: str
) -> None:
    with pytest.raises(error) as raised:
        decode_packet(packet)
    assert raised.value.offset == offset
    assert words in str(raised.value)
    assert str(raised.value).startswith("hj212: ")


def test_the_password_stays_out_of_repr() -> None:
    assert "123456" not in repr(decode_packet(HOURLY))


# --- properties -------------------------------------------------------------------------------------------------

_text = st.text(st.characters(codec="ascii", exclude_characters=";,=&\r\n"), max_size=12)
_key = st.from_regex(r"\A[A-Za-z0-9]{1,8}\Z")
_number = st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**6), max_value=10**6)
_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)).map(  # noqa: DTZ001
    lambda t: t.replace(microsecond=0, tzinfo=BEIJING).astimezone(UTC)
)
_suffixes = _key.filter(lambda s: s not in ("Rtd", "Avg", "Min", "Max", "Cou", "Flag"))


@st.composite
def _readings(draw: st.DrawFn, code: str) -> Reading:
    rtd, avg, low, high, cou = (draw(st.none() | _number) for _ in range(5))
    reading = Reading(
        code,
        rtd,
        avg,
        low,
        high,
        cou,
        flag=draw(st.none() | _text),
        extra=tuple(draw(st.dictionaries(_suffixes, _text, max_size=2)).items()),
    )
    if reading == Reading(code):
        return Reading(code, flag="N")
    return reading


@st.composite
def _packets(draw: st.DrawFn) -> Packet:
    cn = draw(st.sampled_from(sorted(DATA_COMMANDS)) | st.sampled_from(["1062", "9014", "9011", "2021", "1011"]))
    is_data = cn in DATA_COMMANDS
    codes = draw(st.lists(_key, unique=True, max_size=4)) if is_data else []
    parameter_keys = _key.filter(lambda k: k != "DataTime")
    return Packet(
        st=draw(st.from_regex(r"\A[0-9]{2}\Z")),
        cn=cn,
        mn=draw(_text),
        qn=draw(st.none() | st.from_regex(r"\A[0-9]{17}\Z")),
        pw=draw(st.none() | _text),
        flag=draw(st.none() | st.integers(0, 255)),
        pnum=draw(st.none() | st.integers(0, 9999)),
        pno=draw(st.none() | st.integers(0, 9999)),
        rf=draw(st.none() | st.just("1")),
        extra_header=tuple(
            draw(
                st.dictionaries(
                    _key.filter(lambda k: k not in ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO", "RF")),
                    _text,
                    max_size=2,
                )
            ).items()
        ),
        data_time=draw(_times) if is_data else draw(st.none() | _times),
        readings=tuple(draw(_readings(code)) for code in codes),
        parameters=tuple(draw(st.lists(st.tuples(parameter_keys, _text), max_size=3))),
    )


@given(_packets(), st.booleans())
@settings(max_examples=300)
def test_decoding_an_encoded_packet_gives_the_packet_back(packet: Packet, line_end: bool) -> None:
    assert decode_packet(encode_packet(packet, line_end=line_end)) == packet


@given(st.binary(max_size=300) | st.binary(max_size=300).map(lambda tail: b"##0" + tail))
def test_arbitrary_bytes_raise_only_decode_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError):  # anything else fails the test
        decode_payload(data)


@given(st.text(max_size=300))
def test_arbitrary_text_raises_only_decode_errors(text: str) -> None:
    with contextlib.suppress(DecodeError):
        decode_payload(text)


@given(
    st.sampled_from(EXAMPLES),
    st.lists(
        st.tuples(st.integers(0, 500), st.characters(codec="utf-8"), st.sampled_from(("set", "insert", "delete")))
    ),
    st.booleans(),
)
def test_mutated_examples_decode_or_raise_only_decode_errors(
    example: str, edits: list[tuple[int, str, str]], reseal: bool
) -> None:
    segment = list(example.rstrip("\r\n")[6:-4])
    for at, char, how in edits:
        at %= len(segment) + 1
        if how == "insert":
            segment.insert(at, char)
        elif at < len(segment):
            if how == "set":
                segment[at] = char
            else:
                del segment[at]
    text = "".join(segment)
    # Re-sealed, the length and CRC fit again, so the mutation reaches the header and CP parsers.
    data = _sealed(text) if reseal else (example[:6] + text + example.rstrip("\r\n")[-4:]).encode()
    with contextlib.suppress(DecodeError):
        decode_payload(data)
