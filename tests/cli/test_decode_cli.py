"""`waterhub decode`: a field engineer's view of a frame, as tables or JSON, and one line naming a bad frame's fault.

Expected values come from the domain reference's samples (sections 1.13 and 2.7).
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from waterhub.cli.main import app

runner = CliRunner()

TIMED_H = (
    "7E7E011000000006000032002B022F7C221202133716F1F1100000000648F0F02212021335201900000026190031963923000289603812"
    "131203367C"
)
REALTIME = (
    "##0292QN=20240601101500123;ST=21;CN=2011;PW=123456;MN=WHEXAMPLE000000000000001;Flag=4;CP=&&DataTime=20240601101500;"
    "w01001-Rtd=7.35,w01001-Flag=N;w01009-Rtd=6.82,w01009-Flag=N;w01010-Rtd=26.4,w01010-Flag=N;w01014-Rtd=412.5,"
    "w01014-Flag=N;w01003-Rtd=18.6,w01003-Flag=N;w21003-Rtd=0.412,w21003-Flag=N&&2340"
)
DATA_ANSWER = "##0087QN=20240601110005456;ST=91;CN=9014;PW=123456;MN=WHEXAMPLE000000000000001;Flag=4;CP=&&&&3740"


def test_sl651_json_gives_the_frame_and_its_observations() -> None:
    result = runner.invoke(app, ["decode", "sl651", TIMED_H, "--json"])
    assert result.exit_code == 0, result.output
    decoded = json.loads(result.stdout)
    frame = decoded["frame"]
    assert (frame["remote_address"], frame["function"], frame["serial"]) == ("1000000006", "32", 12156)
    assert frame["station_type"] == "H (river)"
    assert frame["sent_at"] == "2022-12-02T05:37:16+00:00"
    assert [(o["mnemonic"], o["value"], o["unit"]) for o in decoded["observations"]] == [
        ("PJ", "0.0", "mm"),
        ("PT", "319.6", "mm"),
        ("Z", "28.960", "m"),
        ("VT", "13.12", "V"),
    ]
    assert {o["observed_at"] for o in decoded["observations"]} == {"2022-12-02T05:35:00+00:00"}


def test_sl651_table_shows_values_for_people() -> None:
    result = runner.invoke(app, ["decode", "sl651", TIMED_H])
    assert result.exit_code == 0, result.output
    assert "28.960" in result.stdout
    assert "timed report" in result.stdout
    assert "2022-12-02 05:35:00Z" in result.stdout


def test_a_damaged_sl651_frame_is_one_line_naming_fault_and_place() -> None:
    result = runner.invoke(app, ["decode", "sl651", TIMED_H[:-2] + "7D"])
    assert result.exit_code == 1
    assert "error: sl651: CRC 367D sent, 367C computed over bytes 0-57 at byte 58" in result.output
    assert "take it again" in result.output
    assert "Traceback" not in result.output


def test_hj212_json_gives_each_packet_without_the_password() -> None:
    result = runner.invoke(app, ["decode", "hj212", REALTIME + DATA_ANSWER, "--json"])
    assert result.exit_code == 0, result.output
    first, second = json.loads(result.stdout)
    assert (first["cn"], first["data_time"], first["answer"]) == ("2011", "2024-06-01T02:15:00+00:00", None)
    assert [(r["code"], r["rtd"], r["flag"]) for r in first["readings"]][-1] == ("w21003", "0.412", "N")
    assert (second["cn"], second["st"]) == ("9014", "91")
    assert "123456" not in result.stdout


def test_a_malformed_hj212_packet_names_the_field() -> None:
    result = runner.invoke(app, ["decode", "hj212", REALTIME.replace("2340", "9999")])
    assert result.exit_code == 1
    assert "hj212: CRC 9999 sent, 2340 computed over the data segment at byte 298" in result.output


def test_an_encrypted_cp_points_to_quarantine() -> None:
    packet = "##0043ST=32;CN=2011;MN=M1;CP=&&9F3A9F3A9F3A9F3A&&1234"
    result = runner.invoke(app, ["decode", "hj212", packet])
    assert result.exit_code == 1
    assert "not key=value text" in result.output
    assert "quarantine" in result.output


def test_device_json_decodes_and_refuses_a_string_value() -> None:
    report = '{"station": "S1", "observed_at": "2024-06-01T10:00:00", "readings": {"w01001": 7.35}}'
    result = runner.invoke(app, ["decode", "json", report, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["readings"] == [{"code": "w01001", "value": "7.35", "flag": None, "unit": None}]
    bad = runner.invoke(app, ["decode", "json", report.replace("7.35", '"7.35"')])
    assert bad.exit_code == 1
    assert "readings.w01001.value: should be a JSON number or null" in bad.output
