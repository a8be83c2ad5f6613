"""The object store seam: snapshots and staged batches are objects under keys like ``snapshots/<dataset>/...``.

The embedded default is a local folder (``file://``); an S3-compatible store (``s3://``, ``exchange.s3_store``) is
the one to share between machines. Writes to the folder go to a temporary name and are renamed into place, so a
reader never sees half an object; an S3 PUT is atomic by itself.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlparse

from exchange.urls import redacted_url

if TYPE_CHECKING:
    from exchange.s3_store import S3Credentials

__all__ = ["LocalObjectStore", "ObjectStore", "open_object_store"]


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key``, replacing what was there; returns the object's URI."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; a missing object raises ``FileNotFoundError`` (its ``filename`` names the object)."""
        ...

    def stream(self, key: str, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
        """The object's bytes in chunks, for sending a large object without holding it whole."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; removing one that is not there is no error (a retried cleanup)."""
        ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def uri(self, key: str) -> str: ...


class LocalObjectStore:
    """Objects as files under a root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"object key {key!r} escapes the store root")
        return path

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        # 0644 less the umask, as any written file: other services (a web server, a backup) read snapshots.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path.as_uri()

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def stream(self, key: str, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
        with self._path(key).open("rb") as handle:
            while chunk := handle.read(chunk_bytes):
                yield chunk

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Empty folders left behind would pile up, one per staged batch; the top folders (``staging/``) stay, so
        # a writer of another batch never finds the folder it just made gone.
        for folder in path.parents:
            if folder.parent == self.root or folder == self.root or any(folder.iterdir()):
                break
            try:
                folder.rmdir()
            except OSError:  # a file arrived meanwhile: the folder is in use again
                break

    def list(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        folder = base if base.is_dir() else base.parent
        if not folder.exists():
            return
        for path in sorted(folder.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and not path.name.startswith(".") and key.startswith(prefix):
                yield key

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()


def open_object_store(url: str, credentials: S3Credentials | None = None) -> ObjectStore:
    """The store behind ``url``: ``file:///path``, or ``s3://bucket/prefix?endpoint=…`` opened with ``credentials``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalObjectStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        from exchange.s3_store import S3ObjectStore

        return S3ObjectStore(url, credentials)
    raise ValueError(
        f"unsupported object store URL scheme {parsed.scheme!r} in {redacted_url(url)}; use file:///path or s3://bucket/prefix"
    )
