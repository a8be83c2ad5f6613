"""Standard Webhooks signatures: what a receiver checks with any of the specification's libraries.

A secret is ``whsec_`` + base64 of 32 random bytes. Each attempt is signed as
``v1,base64(HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>"))``; the id stays the same across
attempts (the receiver dedupes on it), the timestamp is the attempt's own (the receiver refuses stale ones to stop
replays), so the signature differs per attempt while the body does not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["SECRET_PREFIX", "new_secret", "signed_headers"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix the standard gives secrets, not a secret
_SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt at ``timestamp`` (Unix seconds)."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": f"v1,{signature}"}
