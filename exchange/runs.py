"""What a run has committed to each dataset, read back from the change record rather than remembered by a process.

A publish writes one outbox row per changed dataset in the same transaction as the rows and the change log, with
the run id, the sequence range and the event id. So the outbox, not the memory of the attempt that happened to
commit, is the truth about a run: a retried or cleared publish task finds nothing left to change, yet the run's
summary must still show the sequence range and the event it produced.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from exchange.tables import outbox

__all__ = ["RunPublication", "run_publication"]


@dataclass(frozen=True)
class RunPublication:
    """The changes one run committed to one dataset: counts summed over its outbox rows, the sequence range they
    span, and the event id of the latest (a run has one row per dataset unless a retry found more to change)."""

    dataset: str
    run_id: str
    inserted: int
    updated: int
    deleted: int
    first_seq: int
    last_seq: int
    event_id: str

    @property
    def changed(self) -> int:
        return self.inserted + self.updated + self.deleted


def run_publication(conn: Connection, dataset: str, run_id: str) -> RunPublication | None:
    """What run ``run_id`` committed to ``dataset`` as seen by ``conn`` (inside a publish transaction, that includes
    the publish being made); None when the run changed nothing there."""
    rows = conn.execute(
        select(
            outbox.c.event_id,
            outbox.c.first_seq,
            outbox.c.last_seq,
            outbox.c.inserted,
            outbox.c.updated,
            outbox.c.deleted,
        )
        .where(outbox.c.run_id == run_id, outbox.c.dataset == dataset)
        .order_by(outbox.c.id)
    ).all()
    if not rows:
        return None
    return RunPublication(
        dataset=dataset,
        run_id=run_id,
        inserted=sum(int(row.inserted) for row in rows),
        updated=sum(int(row.updated) for row in rows),
        deleted=sum(int(row.deleted) for row in rows),
        first_seq=min(int(row.first_seq) for row in rows),
        last_seq=max(int(row.last_seq) for row in rows),
        event_id=str(rows[-1].event_id),
    )
