"""``waterhub simulate sources`` serves until Ctrl-C, prints where, and accepts the settings' default key."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys

import httpx

from connectors.water_quality.settings import WaterQualitySourceSettings


def _first_line(process: subprocess.Popen[str], timeout_s: float = 30) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    assert ready, "the simulator printed nothing"
    return process.stdout.readline()


def test_the_command_serves_the_bureau_api_with_the_default_key_until_interrupted() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATERHUB_")}
    command = [sys.executable, "-c", "from waterhub.cli.simulate import app; app()", "sources", "--port", "0"]
    command += ["--stations", "3", "--hours", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # noqa: S603
    try:
        line = _first_line(process)
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        default_key = WaterQualitySourceSettings().api_key.get_secret_value()
        answer = httpx.get(f"{match.group(0)}/api/v1/stations", headers={"X-Api-Key": default_key}, timeout=10)
        assert answer.status_code == 200
        assert answer.json()["data"]["total"] == 3
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
