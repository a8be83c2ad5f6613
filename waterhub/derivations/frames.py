"""The hub's tables as derivations read them: a query's rows as a frame, its times aware UTC on both databases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["read_frame"]


def read_frame(conn: Connection, query: Any, times: tuple[str, ...] = ()) -> pd.DataFrame:
    """``query``'s rows; the ``times`` columns as UTC timestamps (SQLite hands back naive UTC, PostgreSQL aware)."""
    import pandas as pd

    result = conn.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()), dtype=object)
    for name in times:
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame
