"""A Mosquitto of the test's own, started from the production configuration (infra/mosquitto) on a free loopback
port with a temporary persistence folder, a password file written from the device registry's hash, and the ACL."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange.gateway.registry import credential_hash

ROOT = Path(__file__).resolve().parents[3]
HUB_PASSWORD = "hub-secret"  # a test broker's password


@dataclass
class Broker:
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://waterhub:{HUB_PASSWORD}@127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603  # our own broker binary and config
            [shutil.which("mosquitto") or "mosquitto", "-c", str(self.folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: mosquitto saves its persistence file on the way out
            self.process.wait(timeout=10)
            self.process = None


def broker_config(port: int, folder: Path) -> str:
    """infra/mosquitto/mosquitto.conf with the test's port and paths; every other line as in production."""
    replaced = {
        "listener": f"listener {port} 127.0.0.1",
        "persistence_location": f"persistence_location {folder}/data/",
        "password_file": f"password_file {folder}/passwd",
        "acl_file": f"acl_file {ROOT / 'infra/mosquitto/acl'}",
        "log_dest": "log_dest none",
    }
    lines = []
    for line in (ROOT / "infra/mosquitto/mosquitto.conf").read_text().splitlines():
        name = line.split(" ", 1)[0]
        lines.append(replaced.get(name, line))
    # Run as whoever runs the tests: as root, mosquitto would switch to its own user and not read the temp folder.
    lines.append(f"user {getpass.getuser()}")
    text = "\n".join(lines) + "\n"
    for name in replaced:
        assert f"\n{name} " in "\n" + text, f"production config lost its {name} line"
    return text


def write_passwords(folder: Path, users: dict[str, str]) -> None:
    (folder / "passwd").write_text("".join(f"{user}:{credential_hash(pw)}\n" for user, pw in users.items()))
    (folder / "passwd").chmod(0o600)


@pytest.fixture
def broker(tmp_path: Path, free_port: int) -> Iterator[Broker]:
    folder = tmp_path / "mosquitto"
    (folder / "data").mkdir(parents=True)
    (folder / "mosquitto.conf").write_text(broker_config(free_port, folder))
    write_passwords(folder, {"waterhub": HUB_PASSWORD, "0010000000": "d0", "0010000001": "d1"})
    running = Broker(free_port, folder)
    running.start()
    yield running
    running.stop()
