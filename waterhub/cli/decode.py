"""``waterhub decode sl651|hj212|json``: what a field engineer runs when a station misbehaves.

Paste the frame as the device sent it (SL 651 as hex, HJ 212 and JSON as text): the decoded fields come back as
tables, or as JSON with ``--json`` (values as exact decimal strings, times in UTC). A frame that cannot be decoded
gives one line naming what is wrong and where, and exit code 1. Passwords are never printed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from connectors.protocols import DamagedFrameError, DecodeError, MalformedFrameError, device_json, hj212, sl651
from waterhub.cli.output import emit_json, fail, print_table, stdout

__all__ = ["app", "decode_hj212", "decode_json", "decode_sl651"]

app = typer.Typer(help="Decode a device frame (SL 651, HJ 212, the hub's JSON) to check what a station sends.")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
_MASKED = "****"


@app.callback(no_args_is_help=True)
def _group() -> None:
    """Decode a device frame (SL 651, HJ 212, the hub's JSON) to check what a station sends."""


def _refused(exc: DecodeError) -> typer.Exit:
    """One line with what and where, and a hint chosen by what the caller should do (the error tree's groups)."""
    if isinstance(exc, DamagedFrameError):
        hint = "the frame was cut or changed on the way: take it again from the device or the broker log"
    elif isinstance(exc, MalformedFrameError):
        hint = "the device breaks the standard here (offsets count from 0): tell the device's owner"
    else:
        hint = "a valid frame we do not read yet: the gateway keeps it in quarantine for a replay"
    return fail(str(exc), hint)


@app.command("sl651")
def decode_sl651(
    frame: Annotated[str, typer.Argument(help="The frame as hex text, spaces allowed")], as_json: JsonFlag = False
) -> None:
    """An SL 651-2014 HEX/BCD frame: header, report body and observations."""
    try:
        decoded = sl651.decode_frame(frame)
    except DecodeError as exc:
        raise _refused(exc) from exc
    raw = sl651.frame_bytes(frame)
    header = decoded.header
    fields: dict[str, object] = {
        "direction": header.direction.value,
        "central_address": header.central_address,
        "remote_address": header.remote_address,
        "password": _MASKED,
        "function": f"{header.function:02X}",
        "function_name": sl651.FUNCTIONS.get(header.function),
        "start": header.start.name,
        "packet": None if header.packet is None else f"{header.packet.sequence} of {header.packet.total}",
        "end": decoded.end.name,
        "crc": f"{int.from_bytes(raw[-2:], 'big'):04X} (checked)",
    }
    body = decoded.body
    observations: list[dict[str, object]] = []
    raw_items: list[dict[str, object]] = []
    if isinstance(body, sl651.Report):
        station = body.station
        fields |= {
            "serial": body.serial,
            "sent_at": body.sent_at,
            "station": None if station is None else station.address,
            "station_type": None if station is None else _station_type(station.station_type),
        }
        observations = [
            {
                "identifier": o.identifier,
                "mnemonic": o.mnemonic,
                "value": _exact(o.value),
                "unit": o.unit,
                "observed_at": o.observed_at,
            }
            for o in body.observations()
        ]
        raw_items = [_raw_item(item) for item in body.items if isinstance(item, sl651.RawElement | sl651.ManualEntry)]
    else:
        fields["body"] = body.data.hex().upper()
    if as_json:
        emit_json({"frame": fields, "observations": observations, "raw_elements": raw_items})
        return
    print_table("SL 651 frame", ["field", "value"], [[key, value] for key, value in fields.items()])
    if observations:
        columns = ["identifier", "mnemonic", "value", "unit", "observed_at"]
        print_table("Observations (UTC)", columns, [[row[c] for c in columns] for row in observations])
    if raw_items:
        print_table("Kept raw", ["identifier", "definition", "bytes"], [list(row.values()) for row in raw_items])


def _station_type(letter: str) -> str:
    meaning = sl651.STATION_TYPES.get(letter)
    return letter if meaning is None else f"{letter} ({meaning})"


def _raw_item(item: sl651.RawElement | sl651.ManualEntry) -> dict[str, object]:
    if isinstance(item, sl651.ManualEntry):
        return {"identifier": "F2F2", "definition": None, "bytes": item.data.hex().upper()}
    identifier = f"{item.identifier:04X}" if item.identifier > 0xFF else f"{item.identifier:02X}"
    return {"identifier": identifier, "definition": f"{item.definition:02X}", "bytes": item.data.hex().upper()}


@app.command("hj212")
def decode_hj212(
    text: Annotated[str, typer.Argument(help="One or more packets as text; the CRLF may be missing")],
    as_json: JsonFlag = False,
) -> None:
    """HJ 212 packets: header, flag bits, readings, parameters and the answer the platform owes."""
    try:
        packets = hj212.decode_payload(text)
    except DecodeError as exc:
        raise _refused(exc) from exc
    shown = [_packet_view(packet) for packet in packets]
    if as_json:
        emit_json(shown)
        return
    for number, view in enumerate(shown, start=1):
        header = {key: value for key, value in view.items() if key not in ("readings", "parameters")}
        print_table(f"HJ 212 packet {number} of {len(shown)}", ["field", "value"], list(header.items()))
        readings = view["readings"]
        if isinstance(readings, list) and readings:
            columns = ["code", "rtd", "avg", "min", "max", "cou", "flag", "extra"]
            print_table("Readings", columns, [[row[c] for c in columns] for row in readings])
        parameters = view["parameters"]
        if isinstance(parameters, list) and parameters:
            print_table("Parameters", ["key", "value"], parameters)
    stdout.print(f"{len(shown)} packet(s)")


def _packet_view(packet: hj212.Packet) -> dict[str, object]:
    answer = hj212.required_response(packet)
    return {
        "qn": packet.qn,
        "st": packet.st,
        "cn": packet.cn,
        "pw": None if packet.pw is None else _MASKED,
        "mn": packet.mn,
        "flag": packet.flag,
        "version": packet.version,
        "is_answer_required": packet.is_answer_required,
        "is_split": packet.is_split,
        "pnum": packet.pnum,
        "pno": packet.pno,
        "rf": packet.rf,
        "extra_header": dict(packet.extra_header) or None,
        "data_time": packet.data_time,
        "interval": None if packet.cn not in hj212.INTERVALS else str(hj212.INTERVALS[packet.cn]),
        "answer": None if answer is None else f"CN {answer.cn}",
        "readings": [
            {
                "code": r.code,
                "rtd": _exact(r.rtd),
                "avg": _exact(r.avg),
                "min": _exact(r.min),
                "max": _exact(r.max),
                "cou": _exact(r.cou),
                "flag": r.flag,
                "extra": dict(r.extra) or None,
            }
            for r in packet.readings
        ],
        "parameters": [list(pair) for pair in packet.parameters],
    }


@app.command("json")
def decode_json(
    text: Annotated[str, typer.Argument(help="One report in the hub's device JSON")], as_json: JsonFlag = False
) -> None:
    """A report in the hub's device JSON: station, times and readings."""
    try:
        report = device_json.decode_report(text)
    except DecodeError as exc:
        raise _refused(exc) from exc
    readings = [
        {"code": code, "value": _exact(r.value), "flag": r.flag, "unit": r.unit} for code, r in report.readings.items()
    ]
    fields = {"station": report.station, "observed_at": report.observed_at, "device_time": report.device_time}
    if as_json:
        emit_json({**fields, "readings": readings})
        return
    print_table("Device JSON report", ["field", "value"], list(fields.items()))
    print_table("Readings", ["code", "value", "flag", "unit"], [list(row.values()) for row in readings])


def _exact(value: Decimal | None) -> str | None:
    """Decimal text as sent: JSON numbers would go through a float in most readers."""
    return None if value is None else str(value)
