"""A Mosquitto of one's own, run from the production configuration (``infra/mosquitto``) on a chosen loopback port.

Tests that restart the broker and the gateway benchmark need a broker they can stop, configured as production is:
the machine's shared broker keeps Mosquitto's defaults (20 messages in flight per client, 1000 queued), which
would cap the gateway and drop what it has not acknowledged. Only the listener, the paths and the log destination
are replaced; every other line is production's, so a change there is tested here. Needs a source checkout (it
reads ``infra/``) and the ``mosquitto`` binary.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from exchange.gateway.registry import credential_hash

__all__ = ["LocalMosquitto", "broker_config"]

INFRA = Path(__file__).resolve().parents[2] / "infra" / "mosquitto"


def broker_config(port: int, folder: Path) -> str:
    """infra/mosquitto/mosquitto.conf with this port and ``folder``'s paths; every other line as in production."""
    replaced = {
        "listener": f"listener {port} 127.0.0.1",
        "persistence_location": f"persistence_location {folder}/data/",
        "password_file": f"password_file {folder}/passwd",
        "acl_file": f"acl_file {INFRA / 'acl'}",
        "log_dest": "log_dest none",
    }
    lines = []
    for line in (INFRA / "mosquitto.conf").read_text().splitlines():
        name = line.split(" ", 1)[0]
        lines.append(replaced.get(name, line))
    # Run as whoever starts it: as root, mosquitto would switch to its own user and not read the folder.
    lines.append(f"user {getpass.getuser()}")
    text = "\n".join(lines) + "\n"
    lost = [name for name in replaced if f"\n{name} " not in "\n" + text]
    if lost:
        raise ValueError(f"infra/mosquitto/mosquitto.conf lost its {', '.join(lost)} line(s)")
    return text


@dataclass
class LocalMosquitto:
    """``start()`` writes the configuration and the password file (``users``: name → password) into ``folder``;
    ``stop()`` ends it with SIGTERM, so it saves its persistence file and a later ``start()`` resumes from it."""

    port: int
    folder: Path
    users: dict[str, str]
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, *, timeout_s: float = 10.0) -> None:
        (self.folder / "data").mkdir(parents=True, exist_ok=True)
        (self.folder / "mosquitto.conf").write_text(broker_config(self.port, self.folder))
        passwords = self.folder / "passwd"
        passwords.write_text("".join(f"{user}:{credential_hash(pw)}\n" for user, pw in self.users.items()))
        passwords.chmod(0o600)
        self.process = subprocess.Popen(  # noqa: S603  # the mosquitto binary with the configuration written above
            [shutil.which("mosquitto") or "mosquitto", "-c", str(self.folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not start on 127.0.0.1:{self.port} (configuration in {self.folder})")

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password file and ACL again (what an operator does after a rotation)."""
        if self.process is None:
            raise RuntimeError("mosquitto is not running")
        self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def url(self, user: str) -> str:
        return f"mqtt://{user}:{self.users[user]}@127.0.0.1:{self.port}"
