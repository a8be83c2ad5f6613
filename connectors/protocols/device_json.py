"""The hub's own JSON for modern devices: for loggers that can send JSON, so nobody invents a format per vendor.

One message is one report of one station at one time::

    {
      "station": "WHEXAMPLE000000000000001",
      "observed_at": "2024-06-01T10:00:00+08:00",
      "device_time": "2024-06-01T10:00:05+08:00",
      "readings": {
        "w01001": 7.35,
        "w21003": {"value": 0.412, "flag": "N", "unit": "mg/L"},
        "Z": null
      }
    }

- ``station``: the station's id as the device registry knows it (1-64 characters).
- ``observed_at``: ISO 8601; without an offset it is Beijing time, like every protocol here (trap 5).
- ``device_time`` (optional): the device's clock when it sent, so the hub can see a clock drift (trap 20).
- ``readings``: at least one, keyed by factor or element code (HJ 212 ``w01001``, SL 651 mnemonic ``Z``...). A
  value is a JSON number or null (not measured); the object form adds a data flag (HJ 212 letters) and a unit.
  Numbers are read exactly, as ``Decimal``: strings, booleans and NaN are refused.

Unknown keys are refused, so a typo (``reading``) is an error and not a silently empty report. The pydantic model is
the schema: ``JsonReport.model_json_schema()``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from connectors.protocols.errors import BadFieldError, BadFrameError
from contracts.types import BEIJING, BeijingTime

__all__ = ["JsonReading", "JsonReport", "decode_report", "encode_report"]

_PROTOCOL: Final = "json"


class JsonReading(BaseModel):
    """One reading; a bare number in the message is ``JsonReading(value=number)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Annotated[Decimal | None, Field(strict=True, allow_inf_nan=False, description="The value, null if missing")]
    flag: Annotated[str | None, Field(min_length=1, max_length=4, description="Data flag, e.g. HJ 212 N/F/M")] = None
    unit: Annotated[str | None, Field(min_length=1, max_length=32, description="Unit as the device writes it")] = None


def _bare_values(readings: object) -> object:
    """``{"w01001": 7.35}`` means ``{"w01001": {"value": 7.35}}``."""
    if not isinstance(readings, Mapping):
        return readings
    return {
        code: value if isinstance(value, Mapping | JsonReading) else {"value": value}
        for code, value in readings.items()
    }


def _text_only(value: object) -> object:
    """JSON numbers arrive as Decimal here, which pydantic would read as Unix seconds: a time must be text."""
    if isinstance(value, Decimal | int | float):
        raise ValueError("a time must be ISO 8601 text, not a number")
    return value


_Time = Annotated[BeijingTime, BeforeValidator(_text_only)]


class JsonReport(BaseModel):
    """A device's report: the schema of the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    station: Annotated[str, Field(min_length=1, max_length=64, description="Station id in the device registry")]
    observed_at: Annotated[_Time, Field(description="When the readings were observed (stored in UTC)")]
    device_time: Annotated[_Time | None, Field(description="Device clock at send time (UTC)")] = None
    readings: Annotated[
        dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")], JsonReading],
        BeforeValidator(_bare_values),
        Field(min_length=1, description="Readings by factor or element code"),
    ]


def decode_report(data: bytes | str) -> JsonReport:
    """One JSON report. Raises only ``DecodeError`` subclasses, whatever the input."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadFrameError(_PROTOCOL, "not UTF-8 text", offset=exc.start) from None
    try:
        # NaN and Infinity stay text, so the model refuses them as values: they are not JSON numbers.
        parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=str)
    except json.JSONDecodeError as exc:
        raise BadFrameError(_PROTOCOL, f"not JSON: {exc.msg}", offset=exc.pos, unit="character") from None
    except RecursionError:
        raise BadFrameError(_PROTOCOL, "not a report: nested too deeply to read", offset=None) from None
    try:
        return JsonReport.model_validate(parsed)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        path = ".".join(str(part) for part in first["loc"]) or "the message"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        # Values are parsed as Decimal before the model sees them, so "not a Decimal" means "not a JSON number".
        message = "should be a JSON number or null" if first["type"] == "is_instance_of" else first["msg"]
        raise BadFieldError(_PROTOCOL, f"{path}: {message}{more}", offset=None) from None


def encode_report(report: JsonReport) -> bytes:
    """The message a device sends. Numbers are written from the Decimal's own digits, never through a float."""
    readings = ", ".join(f"{json.dumps(code)}: {_reading(reading)}" for code, reading in report.readings.items())
    fields = [f'"station": {json.dumps(report.station)}', f'"observed_at": {_time(report.observed_at)}']
    if report.device_time is not None:
        fields.append(f'"device_time": {_time(report.device_time)}')
    fields.append(f'"readings": {{{readings}}}')
    return ("{" + ", ".join(fields) + "}").encode()


def _reading(reading: JsonReading) -> str:
    value = "null" if reading.value is None else str(reading.value)
    if reading.flag is None and reading.unit is None:
        return value
    extra = {key: text for key, text in (("flag", reading.flag), ("unit", reading.unit)) if text is not None}
    return (
        "{" + ", ".join([f'"value": {value}', *(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in extra.items())]) + "}"
    )


def _time(moment: datetime) -> str:
    return json.dumps(moment.astimezone(BEIJING).isoformat())
