"""Reading the hub's dataset tables inside a derivation's transaction: rows by key, and what a recomputation really
changed.

A derivation often recomputes more keys than changed (every segment a renamed chief holds, every record at an
address whose grid did not move, every station when the rainfall window moves, every alert of a replayed station).
Publishing those rows unchanged would still log an update each, because the runner gives every row the run's
``input_seq``; ``changed_only`` keeps the rows whose content differs from what is stored, version aside, so the
change log and the events say what changed and nothing else (and a closed alert is not sent to a WeCom group
twice).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, false, select, tuple_

from contracts import Contract
from exchange.hashing import key_json, row_hashes
from exchange.tables import dataset_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["changed_only", "read_frame", "rows_where_in"]

CHUNK = 500
"""Keys per ``IN`` list: SQLite allows 32,766 bound parameters, and short lists plan well on PostgreSQL."""


def read_frame(conn: Connection, query: Any, times: Sequence[str] = ()) -> pd.DataFrame:
    """A query's rows as a frame of Python objects (no type guessing: a code stays a string, a null stays None),
    the ``times`` columns as UTC timestamps (SQLite hands back naive UTC, PostgreSQL aware)."""
    import pandas as pd

    result = conn.execute(query)
    frame = pd.DataFrame(result.all(), columns=list(result.keys()), dtype=object)
    for name in times:
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


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
    stored row with their key. Stored rows are looked up by the key's columns that are not times (a time compares
    unreliably across the two databases' drivers), and matched by the change log's key spelling."""
    if frame.empty:
        return frame
    version = contract.meta.version_field
    specs = [spec for spec in contract.field_specs() if spec.name != version]
    times = [spec.name for spec in specs if spec.type == "datetime"]
    lookup = [name for name in contract.meta.primary_key if name not in times] or list(contract.meta.primary_key)
    found = rows_where_in(conn, contract, lookup, frame[lookup].itertuples(index=False, name=None))
    if found.empty:
        return frame
    stored = found.assign(**{name: _utc(found[name]) for name in times}, **{version: 0})
    known = dict(zip(key_json(contract, stored), row_hashes(contract, stored).tolist(), strict=True))
    fresh = zip(key_json(contract, frame), row_hashes(contract, frame.assign(**{version: 0})).tolist(), strict=True)
    return frame.loc[[known.get(key) != content for key, content in fresh]].reset_index(drop=True)


def _utc(column: pd.Series) -> pd.Series:
    """A stored time column as UTC timestamps, whichever database it came from."""
    import pandas as pd

    return pd.to_datetime(column, utc=True)
