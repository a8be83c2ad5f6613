"""The hub's device JSON: the documented example decodes exactly, bad messages name what and where, and no input
raises anything but a DecodeError."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.protocols.device_json import JsonReading, JsonReport, decode_report, encode_report
from connectors.protocols.errors import BadFieldError, BadFrameError, DecodeError

BEIJING = timezone(timedelta(hours=8))

EXAMPLE = """{
  "station": "WHEXAMPLE000000000000001",
  "observed_at": "2024-06-01T10:00:00",
  "device_time": "2024-06-01T10:00:05+08:00",
  "readings": {"w01001": 7.35, "w21003": {"value": 0.412, "flag": "N", "unit": "mg/L"}, "Z": null, "n": 3}
}"""


def test_the_documented_example_decodes_exactly() -> None:
    report = decode_report(EXAMPLE.encode())
    assert report.station == "WHEXAMPLE000000000000001"
    assert report.observed_at == datetime(2024, 6, 1, 2, 0, tzinfo=UTC)  # no offset: Beijing time
    assert report.device_time == datetime(2024, 6, 1, 10, 0, 5, tzinfo=BEIJING)
    assert report.readings == {
        "w01001": JsonReading(value=Decimal("7.35")),
        "w21003": JsonReading(value=Decimal("0.412"), flag="N", unit="mg/L"),
        "Z": JsonReading(value=None),
        "n": JsonReading(value=Decimal(3)),
    }


def test_encoding_writes_exact_numbers() -> None:
    report = decode_report(EXAMPLE)
    assert json.loads(encode_report(report), parse_float=Decimal)["readings"]["w01001"] == Decimal("7.35")
    assert decode_report(encode_report(report)) == report


def _with(**changes: object) -> str:
    message = json.loads(EXAMPLE)
    message.update(changes)
    return json.dumps(message)


@pytest.mark.parametrize(
    ("message", "error", "offset", "words"),
    [
        ('{"station": "S1",', BadFrameError, 17, "not JSON: Expecting property name"),
        (b'{"station": "\xff"}', BadFrameError, 13, "not UTF-8"),
        ("[]", BadFieldError, None, "the message:"),
        ("[" * 100_000, BadFrameError, None, "nested too deeply"),
        (_with(readings={"w01001": "7.35"}), BadFieldError, None, "readings.w01001.value: should be a JSON number"),
        (_with(readings={"w01001": True}), BadFieldError, None, "readings.w01001.value: should be a JSON number"),
        (_with(readings={}), BadFieldError, None, "readings: "),
        (_with(readings={"bad code!": 1}), BadFieldError, None, "readings.bad code!.[key]"),
        (_with(observed_at=1717207200), BadFieldError, None, "observed_at: Value error, a time must be ISO 8601"),
        (_with(reading={"a": 1}), BadFieldError, None, "reading: Extra inputs are not permitted"),
        (EXAMPLE.replace("7.35", "NaN"), BadFieldError, None, "readings.w01001.value: should be a JSON number"),
    ],
)
def test_each_fault_is_named(message: str | bytes, error: type[DecodeError], offset: int | None, words: str) -> None:
    with pytest.raises(error) as raised:
        decode_report(message)
    assert raised.value.offset == offset
    assert words in str(raised.value)
    assert raised.value.reason.startswith("json_")


_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC))  # noqa: DTZ001
_readings = st.builds(
    JsonReading,
    value=st.none() | st.decimals(allow_nan=False, allow_infinity=False),
    flag=st.none() | st.text(min_size=1, max_size=4),
    unit=st.none() | st.text(min_size=1, max_size=32),
)
_reports = st.builds(
    JsonReport,
    station=st.text(min_size=1, max_size=64),
    observed_at=_times,
    device_time=st.none() | _times,
    readings=st.dictionaries(st.from_regex(r"\A[A-Za-z0-9_-]{1,32}\Z"), _readings, min_size=1, max_size=5),
)


@given(_reports)
@settings(max_examples=200)
def test_decoding_an_encoded_report_gives_the_report_back(report: JsonReport) -> None:
    assert decode_report(encode_report(report)) == report


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
)


@given(st.binary(max_size=200) | st.text(max_size=200) | _json.map(json.dumps))
def test_any_input_raises_only_decode_errors(message: bytes | str) -> None:
    with contextlib.suppress(DecodeError):  # anything else fails the test
        decode_report(message)


@given(st.dictionaries(st.sampled_from(["station", "observed_at", "device_time", "readings", "x"]), _json))
def test_hostile_reports_raise_only_decode_errors(fields: dict[str, object]) -> None:
    with contextlib.suppress(DecodeError):
        decode_report(json.dumps(fields))
