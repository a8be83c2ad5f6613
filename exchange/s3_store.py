"""Objects in an S3-compatible store (MinIO in production, SeaweedFS in the tests), through the minio SDK.

Tasks hand each other batches in the object store, so once they run on more than one machine the store must be
shared: this is that store. Its URL is ``s3://<bucket>[/<prefix>][?endpoint=http://host:port][&region=<region>]``
(the endpoint defaults to AWS); keys live under ``<prefix>/`` in the bucket, and an object's URI is
``s3://<bucket>/<prefix>/<key>``, the form pyarrow, DuckDB and the AWS CLI read. The keys to the store come from
settings (``S3Credentials``), never from the URL, so the URL can be logged and shown; errors name the store by its
URL and endpoint and the setting to fix, never a key.

Opening the store checks the credentials and creates the bucket if it is missing, so an empty MinIO needs no second
tool to be set up; an access key that may not create buckets needs the bucket made beforehand. An S3 PUT replaces an
object whole, so a reader sees the old object or the new one, never half of one: no temporary names are needed.
"""

from __future__ import annotations

import errno
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlparse

from pydantic import SecretStr

from exchange.errors import StoreConfigError, StoreUnavailableError

if TYPE_CHECKING:
    from minio import Minio

__all__ = ["S3Credentials", "S3ObjectStore"]

_AWS_ENDPOINT = "https://s3.amazonaws.com"
_MISSING = frozenset({"NoSuchKey", "NoSuchObject"})
_BUCKET_RACE = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_REFUSALS = {
    # S3 error code → what to fix; {access}/{secret} are the settings the keys came from.
    "SignatureDoesNotMatch": "the store refused the secret key; check {secret}",
    "InvalidAccessKeyId": "the store does not know the access key; check {access}",
    "AccessDenied": "the access key ({access}) may not do this; grant it read, write and list on the bucket",
}
_ANONYMOUS_REFUSAL = "no access key is set; set {access} and {secret}"


@dataclass(frozen=True)
class S3Credentials:
    """The keys of an S3-compatible store and the settings they came from: errors name the settings, never keys."""

    access_key: str | None = None
    secret_key: SecretStr | None = None
    settings: tuple[str, str] = ("the object store's access key", "the object store's secret key")
    """Where the access key and the secret key are configured, as errors should name them."""


class S3ObjectStore:
    """Objects under a prefix of one bucket."""

    def __init__(self, url: str, credentials: S3Credentials | None = None) -> None:
        from minio import Minio

        self._credentials = credentials or S3Credentials()
        self.bucket, self.prefix, endpoint, region = _parse_url(url)
        self.name = f"s3://{self.bucket}/{self.prefix} at {endpoint}"
        parsed = urlparse(endpoint)
        secret = self._credentials.secret_key
        self._client: Minio = Minio(
            parsed.netloc,
            access_key=self._credentials.access_key,
            secret_key=secret.get_secret_value() if secret is not None else None,
            secure=parsed.scheme == "https",
            region=region,
        )
        self._ensure_bucket()

    def put(self, key: str, data: bytes) -> str:
        with self._calling("write", key):
            self._client.put_object(self.bucket, self._object_name(key), io.BytesIO(data), len(data))
        return self.uri(key)

    def get(self, key: str) -> bytes:
        """The object's bytes; a missing object raises ``FileNotFoundError`` naming its URI, as a missing file does."""
        name = self._object_name(key)
        with self._calling("read", key):
            response = self._client.get_object(self.bucket, name)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def stream(self, key: str, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
        """The object's bytes in chunks, read from the open response as they arrive."""
        name = self._object_name(key)
        with self._calling("read", key):
            response = self._client.get_object(self.bucket, name)
        try:
            with self._calling("read", key):
                yield from response.stream(chunk_bytes)
        finally:
            response.close()
            response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            with self._calling("look up", key):
                self._client.stat_object(self.bucket, self._object_name(key))
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        """S3 answers a delete of a missing object with success, as the protocol asks."""
        with self._calling("delete", key):
            self._client.remove_object(self.bucket, self._object_name(key))

    def list(self, prefix: str) -> Iterator[str]:
        """Keys starting with ``prefix``, in key order (S3 lists by UTF-8 bytes)."""
        with self._calling("list", prefix):
            for item in self._client.list_objects(self.bucket, prefix=self.prefix + prefix, recursive=True):
                if item.object_name is not None and not item.is_dir:
                    yield item.object_name.removeprefix(self.prefix)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object_name(key)}"

    def _object_name(self, key: str) -> str:
        """Keys are relative paths, as in the local store: ``a/../b`` or ``/a`` would name two objects one way."""
        parts = key.split("/")
        if not key or any(part in {"", ".", ".."} for part in parts):
            raise ValueError(f"object key {key!r} is not a relative path of plain segments ({self.name})")
        return self.prefix + key

    def _ensure_bucket(self) -> None:
        from minio.error import S3Error

        with self._calling("open", ""):
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in _BUCKET_RACE:  # another worker created it meanwhile: just as good
                    raise

    @contextmanager
    def _calling(self, action: str, key: str) -> Iterator[None]:
        """Turn the SDK's and urllib3's errors into ours: what failed, on which store, and what to do."""
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError

        where = f"object store {self.name}: {action} {key!r}" if key else f"object store {self.name}: {action}"
        try:
            yield
        except S3Error as exc:
            if exc.code in _MISSING:
                raise FileNotFoundError(errno.ENOENT, f"{where}: no such object", self.uri(key)) from exc
            if exc.code in _REFUSALS:
                credentials = self._credentials
                hint = _ANONYMOUS_REFUSAL if credentials.access_key is None else _REFUSALS[exc.code]
                names = dict(zip(("access", "secret"), credentials.settings, strict=True))
                raise StoreConfigError(f"{where} refused ({exc.code}): {hint.format(**names)}") from exc
            raise StoreUnavailableError(f"{where} failed ({exc.code}: {exc.message})") from exc
        except (MinioException, HTTPError) as exc:
            raise StoreUnavailableError(
                f"{where} failed ({type(exc).__name__}); check that the store is up and the endpoint is right"
            ) from exc


def _parse_url(url: str) -> tuple[str, str, str, str | None]:
    """Bucket, key prefix (empty or ending in ``/``), endpoint URL and region of an ``s3://`` URL."""
    parsed = urlparse(url)
    shown = parsed._replace(netloc=parsed.hostname or "").geturl()  # whatever was put before an @ stays unshown
    if "@" in parsed.netloc:
        raise StoreConfigError(f"{shown}: put the object store's keys in settings, not in its URL")
    if not parsed.netloc:
        raise StoreConfigError(f"{shown}: name the bucket, as in s3://bucket/prefix?endpoint=http://host:port")
    query = parse_qs(parsed.query)
    unknown = set(query) - {"endpoint", "region"}
    if unknown:
        raise StoreConfigError(f"{shown}: unknown parameters {sorted(unknown)}; only endpoint and region are read")
    endpoint = query.get("endpoint", [_AWS_ENDPOINT])[-1].rstrip("/")
    target = urlparse(endpoint)
    if target.scheme not in {"http", "https"} or not target.netloc or target.path:
        raise StoreConfigError(f"{shown}: endpoint {endpoint!r} is not http(s)://host[:port]")
    prefix = parsed.path.strip("/")
    region = query.get("region", [None])[-1]
    return parsed.netloc, f"{prefix}/" if prefix else "", endpoint, region
