"""The Delta Sharing protocol's answers in the parquet response format, and its paging and version arithmetic.

Every answer about a table is NDJSON: a ``protocol`` line, a ``metaData`` line, then one line per file (``file``
for a query, ``cdf`` for changes), each file with a signed URL that expires. Listings page by ``maxResults`` and an
opaque ``pageToken`` naming the last item sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from exchange.errors import InvalidQueryError
from exchange.sharing.files import ServedFile, stats_json
from exchange.sharing.signing import UrlSigner

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = [
    "CAPABILITIES",
    "change_line",
    "commit_times",
    "file_line",
    "metadata_line",
    "page",
    "protocol_line",
    "version_at",
]

CAPABILITIES = "responseformat=parquet"
"""What the hub answers in: the client's ``delta-sharing-capabilities`` may offer delta too; parquet is the default."""


def page(names: Sequence[str], max_results: int | None, token: str | None, limit: int) -> tuple[list[str], str | None]:
    """The sorted ``names`` after the token's, at most ``max_results``; the next token when more are left."""
    size = limit if max_results is None else max_results
    if not 0 <= size <= limit:
        raise InvalidQueryError(f"maxResults must be from 0 to {limit}", slug="invalid-limit")
    after = _token_name(token) if token else None
    remaining = [name for name in sorted(names) if after is None or name > after]
    chosen = remaining[:size]
    has_more = len(remaining) > size and bool(chosen)
    return chosen, _name_token(chosen[-1]) if has_more else None


def _name_token(name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": name}).encode()).decode()


def _token_name(token: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidQueryError(
            "pageToken is not one this hub gave out; start again without it", slug="invalid-cursor"
        ) from exc
    if not isinstance(after, str):
        raise InvalidQueryError("pageToken is not one this hub gave out; start again without it", slug="invalid-cursor")
    return after


def protocol_line() -> str:
    return json.dumps({"protocol": {"minReaderVersion": 1}})


def metadata_line(table: DeltaTable, version: int, *, files: Sequence[ServedFile] | None = None) -> str:
    metadata = table.metadata()
    body: dict[str, Any] = {
        "id": metadata.id,
        "name": metadata.name,
        "format": {"provider": "parquet"},
        "schemaString": table.schema().to_json(),
        "partitionColumns": [],
        "configuration": {"enableChangeDataFeed": "true"},
        "version": version,
    }
    if files is not None:
        body |= {"size": sum(file.size for file in files), "numFiles": len(files)}
    if metadata.description:
        body["description"] = metadata.description
    return json.dumps({"metaData": body}, ensure_ascii=False)


def file_line(file: ServedFile, signer: UrlSigner, expires_at: datetime) -> str:
    return json.dumps(
        {
            "file": {
                "url": signer.url(file.object_key, expires_at),
                "id": file.file_id,
                "partitionValues": {},
                "size": file.size,
                "stats": stats_json(file),
                "expirationTimestamp": int(expires_at.timestamp() * 1000),
            }
        }
    )


def change_line(file: ServedFile, signer: UrlSigner, expires_at: datetime, committed_ms: int) -> str:
    """A ``cdf`` action: its file holds ``_change_type``; the client adds the commit's version and time."""
    return json.dumps(
        {
            "cdf": {
                "url": signer.url(file.object_key, expires_at),
                "id": file.file_id,
                "partitionValues": {},
                "size": file.size,
                "version": file.version,
                "timestamp": committed_ms,
                "expirationTimestamp": int(expires_at.timestamp() * 1000),
            }
        }
    )


def commit_times(table: DeltaTable) -> dict[int, int]:
    """Each retained version's commit time, milliseconds since the epoch."""
    return {int(commit["version"]): int(commit["timestamp"]) for commit in table.history()}


def version_at(times: dict[int, int], moment: str, *, first_after: bool) -> int:
    """The version committed at ``moment`` (ISO 8601): the first at or after it, or the last at or before it."""
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidQueryError(f"{moment[:40]!r} is not an ISO 8601 timestamp", slug="invalid-timestamp") from exc
    if parsed.tzinfo is None:
        raise InvalidQueryError(f"{moment[:40]!r} has no UTC offset; end it with Z", slug="invalid-timestamp")
    ms = parsed.timestamp() * 1000
    if first_after:
        found = [version for version, at in times.items() if at >= ms]
        chosen = min(found, default=None)
    else:
        found = [version for version, at in times.items() if at <= ms]
        chosen = max(found, default=None)
    if chosen is None:
        raise InvalidQueryError(
            f"the table has no version {'after' if first_after else 'before'} {moment[:40]}", slug="invalid-timestamp"
        )
    return chosen
