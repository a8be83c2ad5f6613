"""The Delta Sharing profile file a recipient's client reads: endpoint, bearer token and its expiry."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["write_profile"]


def write_profile(path: Path, *, endpoint: str, token: str, expires_at: datetime) -> None:
    """Write the profile readable by its owner only: it holds the token, which is shown nowhere else."""
    body = {
        "shareCredentialsVersion": 1,
        "endpoint": endpoint,
        "bearerToken": token,
        "expirationTime": expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: narrow it too
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(body, handle, indent=2)
        handle.write("\n")
