"""What a run already judged and published, kept in its batch manifest so that the next run does not judge it again.

An hourly run of a quiet source reads back what the last run published: a stream read whole each time (no cursor)
sends every record again, and a stream read from its watermark sends again the records at the watermark (the read
is inclusive, so a record sharing the last cursor value is never missed). Judging them again loads the quality
suite and Great Expectations (seconds of every validate task) to reach the verdict the last run reached.

So validate leaves, per stream, a memo in the manifest: the digest of the whole read when every record of it was
published, and the payload hashes of the valid records at each partition's highest cursor value. The next extract,
under the same contract version, leaves out the records at the start of a partition that the memo names (a feed is
read in cursor order, so these come first; hashing stops at the first record the memo does not name), and a whole
read whose digest is the memo's is not judged at all. Either is counted as ``already_published`` (and as
``unchanged`` in the publish summary). Quarantined records are never in a memo: they are judged every time they come.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Judged", "content_digest"]


@dataclass(frozen=True)
class Judged:
    """One stream's memo: ``content`` is the digest of a whole read all of whose records were published, and
    ``boundary`` the payload hashes of the published records a read from the watermark gets again."""

    contract_version: str
    content: str | None = None
    boundary: frozenset[str] = frozenset()

    @classmethod
    def from_manifest(cls, entry: Mapping[str, Any] | None, contract_version: str) -> Judged | None:
        """The memo a manifest entry holds, if it was judged under ``contract_version`` (another version may judge
        the same record differently)."""
        if not entry or entry.get("contract_version") != contract_version:
            return None
        return cls(contract_version, entry.get("content"), frozenset(entry.get("boundary", ())))

    def as_manifest(self) -> dict[str, Any]:
        return {"contract_version": self.contract_version, "content": self.content, "boundary": sorted(self.boundary)}


def content_digest(hashes: Iterable[str]) -> str:
    """One digest of a whole read's records, whatever order the source sent them in."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
