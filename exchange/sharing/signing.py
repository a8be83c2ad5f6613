"""Signed, expiring download URLs for files of the local object store, which has no presigning of its own.

A URL carries the object key, its expiry (Unix seconds) and an HMAC-SHA256 of both under the hub's key: whoever
holds it may fetch that one object until it expires, without the bearer token, as with an S3 presigned URL. The
Delta Sharing client hands these URLs to pyarrow and fsspec, which send no token.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

__all__ = ["UrlSigner"]


@dataclass(frozen=True)
class UrlSigner:
    key: bytes
    base_url: str
    """Where the API's ``/delta-sharing/files/`` route is reached, without a trailing slash."""

    def url(self, object_key: str, expires_at: datetime) -> str:
        expires = int(expires_at.timestamp())
        signature = self.signature(object_key, expires)
        return f"{self.base_url}/delta-sharing/files/{quote(object_key)}?expires={expires}&signature={signature}"

    def signature(self, object_key: str, expires: int) -> str:
        signed = f"{object_key}\n{expires}".encode("utf-8", "surrogatepass")  # any path a client sends is judged
        return hmac.new(self.key, signed, hashlib.sha256).hexdigest()

    def is_valid(self, object_key: str, expires: int, signature: str, *, now: datetime) -> bool:
        """True when the signature is ours for this key and expiry, and the expiry has not passed."""
        # Bytes, not text: compare_digest refuses non-ASCII strings, and a forged signature may hold any character.
        given = signature.encode("utf-8", "surrogatepass")
        return hmac.compare_digest(self.signature(object_key, expires).encode(), given) and now.timestamp() < expires
