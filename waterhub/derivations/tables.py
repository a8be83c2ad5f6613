"""Reading the hub's dataset tables inside a derivation's transaction: rows by key, and what a recomputation really
changed.

A derivation often recomputes more keys than changed (every segment a renamed chief holds, every record at an
address whose grid did not move). Publishing those rows unchanged would still log an update each, because the
runner gives every row the run's ``input_seq``; ``changed_only`` keeps the rows whose content differs from what is
stored, version aside, so the change log and the events say what changed and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, false, select, tuple_

from contracts import Contract
from exchange.hashing import row_hashes
from exchange.tables import dataset_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["changed_only", "read_frame", "rows_where_in"]

CHUNK = 500
"""Keys per ``IN`` list: SQLite allows 32,766 bound parameters, and short lists plan well on PostgreSQL."""


def read_frame(conn: Connection, query: Any) -> pd.DataFrame:
    """A query's rows as a frame of Python objects (no type guessing: a code stays a string, a null stays None)."""
    import pandas as pd

    result = conn.execute(query)
    return pd.DataFrame(result.all(), columns=list(result.keys()), dtype=object)


def rows_where_in(
    conn: Connection,
    contract: type[Contract],
    columns: Sequence[str],
    values: Iterable[tuple[object, ...]],
    fields: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The published rows of ``contract`` whose ``columns`` hold one of ``values`` (a tuple per row), with
    ``fields`` (default: every field of the contract)."""
    import pandas as pd

    table = dataset_table(contract)
    selected = [table.c[name] for name in (fields or [spec.name for spec in contract.field_specs()])]
    wanted = sorted(set(values), key=repr)
    frames = [read_frame(conn, select(*selected).where(_matches(table, columns, chunk))) for chunk in _chunks(wanted)]
    if not frames:
        return read_frame(conn, select(*selected).where(false()))  # no rows, but the columns
    return pd.concat(frames, ignore_index=True)


def _matches(table: Any, columns: Sequence[str], chunk: list[tuple[object, ...]]) -> ColumnElement[bool]:
    if len(columns) == 1:
        return table.c[columns[0]].in_([value for (value,) in chunk])  # type: ignore[no-any-return]
    return tuple_(*(table.c[name] for name in columns)).in_(chunk)


def _chunks(values: list[tuple[object, ...]]) -> Iterator[list[tuple[object, ...]]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def changed_only(conn: Connection, contract: type[Contract], frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` (every field of ``contract`` but its version field) that are new or differ from the
    stored row with their key."""
    key = list(contract.meta.primary_key)
    if frame.empty:
        return frame
    version = contract.meta.version_field
    stored = rows_where_in(conn, contract, key, frame[key].itertuples(index=False, name=None))
    if stored.empty:
        return frame
    stored = stored.assign(**{version: 0})
    ours = frame.assign(**{version: 0})
    stored_hash = dict(zip(_key_tuples(stored, key), row_hashes(contract, stored).tolist(), strict=True))
    new_hash = row_hashes(contract, ours).tolist()
    keep = [stored_hash.get(k) != h for k, h in zip(_key_tuples(ours, key), new_hash, strict=True)]
    return frame.loc[keep].reset_index(drop=True)


def _key_tuples(frame: pd.DataFrame, key: list[str]) -> list[tuple[object, ...]]:
    return [tuple(_plain(value) for value in row) for row in frame[key].itertuples(index=False, name=None)]


def _plain(value: object) -> object:
    """A key value as both a table read and a frame built by a derivation hold it: times as UTC ISO text."""
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        import pandas as pd

        return pd.Timestamp(value).tz_convert("UTC").isoformat()
    return value
