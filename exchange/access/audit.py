"""The audit of every data read: who (department and token), which dataset and filter, when, how many rows.

Written after the answer was sent, since a streamed answer knows its row count only at its end; a consumer that
hangs up halfway is audited with the rows it was sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, select

from exchange.tables import read_audit

__all__ = ["AuditEntry", "read_audit_entries", "record_read"]


@dataclass(frozen=True)
class AuditEntry:
    read_at: datetime
    department: str
    token_id: str
    dataset: str
    resource: str
    row_filter: str | None
    rows: int


_INSERT = read_audit.insert().values({field.name: bindparam(field.name) for field in fields(AuditEntry)})


def record_read(conn: Connection, entry: AuditEntry) -> None:
    """Within ``conn``'s transaction (the API's request connection commits each statement by itself)."""
    conn.execute(_INSERT, asdict(entry))


def read_audit_entries(engine: Engine, *, department: str | None = None) -> list[AuditEntry]:
    """Audit rows oldest first, optionally of one department."""
    query = select(read_audit).order_by(read_audit.c.id)
    if department is not None:
        query = query.where(read_audit.c.department == department)
    with engine.connect() as conn:
        return [
            AuditEntry(r.read_at, r.department, r.token_id, r.dataset, r.resource, r.row_filter, int(r.rows))
            for r in conn.execute(query)
        ]
