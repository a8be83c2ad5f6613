"""The console script's process boundary: one line and a hint on failure, the traceback only with --debug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WATERHUB = str(Path(sys.executable).with_name("waterhub"))
UNREACHABLE_DB = {"WATERHUB_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"}


def _waterhub(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the venv's own console script
        [WATERHUB, *args], env=os.environ | UNREACHABLE_DB, capture_output=True, text=True, check=False, timeout=60
    )


def test_a_failing_command_prints_the_error_and_a_hint_without_a_traceback() -> None:
    done = _waterhub("datasets")
    assert done.returncode == 1
    assert "error: StoreUnavailableError" in done.stderr
    assert "rerun with --debug" in done.stderr
    assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback() -> None:
    done = _waterhub("--debug", "datasets")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
