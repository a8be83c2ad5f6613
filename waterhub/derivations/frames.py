"""The hub's tables as derivations read them, and what a recomputation really changed.

A derivation that recomputes more rows than changed (every station when the rainfall window moves, every alert of
a replayed station) must not republish the ones that came out the same: the runner stamps each row with a new
``input_seq``, which publish would take for a change, and each would be an update event (and, for an alert, a
second message to a WeCom group).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from contracts import Contract
from exchange.hashing import key_json, row_hashes
from exchange.tables import dataset_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["drop_unchanged", "read_frame"]


def read_frame(conn: Connection, query: Any, times: tuple[str, ...] = ()) -> pd.DataFrame:
    """``query``'s rows; the ``times`` columns as UTC timestamps (SQLite hands back naive UTC, PostgreSQL aware)."""
    import pandas as pd

    result = conn.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()), dtype=object)
    for name in times:
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def drop_unchanged(conn: Connection, contract: type[Contract], rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (every field but the version) without those equal to the stored row of their key."""
    if rows.empty:
        return rows
    meta = contract.meta
    fields = [spec.name for spec in contract.field_specs() if spec.name != meta.version_field]
    times = tuple(spec.name for spec in contract.field_specs() if spec.type == "datetime")
    table = dataset_table(contract)
    first = meta.primary_key[0]
    query = select(*(table.c[name] for name in fields)).where(table.c[first].in_(sorted(set(rows[first]))))
    stored = read_frame(conn, query, times)
    if stored.empty:
        return rows
    known = dict(zip(key_json(contract, stored), _content_hashes(contract, stored), strict=True))
    fresh = zip(key_json(contract, rows), _content_hashes(contract, rows), strict=True)
    return rows.loc[[known.get(key) != content for key, content in fresh]].reset_index(drop=True)


def _content_hashes(contract: type[Contract], rows: pd.DataFrame) -> Any:
    """Each row's hash with the version field held at 0: its content alone."""
    return row_hashes(contract, rows.assign(**{contract.meta.version_field: 0}))
