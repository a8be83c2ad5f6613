"""`--debug` shows every log line of ours and none that carries a secret: the HTTP libraries' own DEBUG lines
repeat header values and whole URLs, so they stay quiet (checked with real requests against the simulator)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from connectors.water_quality import WaterQualitySimulator
from connectors.water_quality.simulator import RunningSimulator

API_KEY = "logs-test-key-4711"

# A child process, so logging is configured as the CLI configures it and nothing leaks into pytest's own logging.
PROBE = """
import sys
import httpx
from pydantic import SecretStr
from connectors.http.auth import ApiKeyHeader
from waterhub.logs import configure_logging

configure_logging(debug=True, as_json=False)
base_url, key = sys.argv[1], sys.argv[2]
with httpx.Client(base_url=base_url, auth=ApiKeyHeader("X-Api-Key", SecretStr(key))) as client:
    try:
        print(client.get("/api/v1/stations").status_code)
    except httpx.HTTPError as exc:
        print(type(exc).__name__)
"""


@pytest.fixture
def simulator() -> WaterQualitySimulator:
    return WaterQualitySimulator(seed=2, api_key=API_KEY, stations=2, hours=1)


def _probe(base_url: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter running our own probe
        [sys.executable, "-c", PROBE, base_url, key], capture_output=True, text=True, check=True, timeout=60
    )


def test_debug_logging_never_shows_a_key_the_http_layer_refused(running: RunningSimulator) -> None:
    # Settings refuse such a key; this is the second line of defence, for a key that reaches the client anyway.
    done = _probe(running.base_url, API_KEY + "\n")
    assert done.stdout.strip() == "LocalProtocolError"
    assert API_KEY not in done.stderr


def test_debug_logging_leaves_out_the_http_libraries_request_lines(running: RunningSimulator) -> None:
    done = _probe(running.base_url, API_KEY)
    assert done.stdout.strip() == "200"
    assert [line for line in done.stderr.splitlines() if "httpcore" in line or "httpx" in line] == []
