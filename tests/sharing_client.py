"""The official Delta Sharing client, in an environment of its own: it pins pandas below 3 and other old versions,
so it never joins the hub's environment. The tests create it once with uv under the repository's ignored ``var/``
(reused while the pinned requirement is unchanged) and drive it as a subprocess that writes what it read to files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENT = "delta-sharing==1.4.2"
ENV_DIR = ROOT / "var" / "delta-sharing-client"
DRIVER = Path(__file__).with_name("sharing_client_driver.py")


class ClientEnvError(RuntimeError):
    """The isolated environment could not be made: the message says what failed and how to fix it."""


def _uv() -> str:
    bundled = ROOT / ".tools" / "bin" / "uv"
    found = str(bundled) if bundled.exists() else shutil.which("uv")
    if found is None:
        raise ClientEnvError("uv is neither at .tools/bin/uv nor on PATH; `make .tools/bin/uv` installs it")
    return found


def client_python() -> Path:
    """The isolated interpreter with ``delta-sharing`` installed, made on first use."""
    python = ENV_DIR / "venv" / "bin" / "python"
    marker = ENV_DIR / "installed.txt"
    if python.exists() and marker.exists() and marker.read_text().strip() == REQUIREMENT:
        return python
    uv = _uv()
    ENV_DIR.mkdir(parents=True, exist_ok=True)
    steps = (
        [
            uv,
            "venv",
            "--quiet",
            "--clear",
            "--python",
            f"{sys.version_info.major}.{sys.version_info.minor}",
            str(python.parents[1]),
        ],
        [uv, "pip", "install", "--quiet", "--python", str(python), REQUIREMENT],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603 - our own argv
        if done.returncode != 0:
            raise ClientEnvError(
                f"`{' '.join(step[:3])} …` failed ({done.returncode}): {done.stderr.strip()[-2000:]}. The Delta "
                f"Sharing tests need PyPI access to install {REQUIREMENT} into {ENV_DIR}"
            )
    marker.write_text(REQUIREMENT + "\n")
    return python


def run_client(python: Path, jobs: Sequence[Mapping[str, object]]) -> None:
    """Run the driver with ``jobs``; each job writes its result to its ``out`` path."""
    done = subprocess.run(  # noqa: S603 - our own argv
        [str(python), str(DRIVER), json.dumps(list(jobs))], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise AssertionError(f"the official client failed ({done.returncode}):\n{done.stderr[-4000:]}")
