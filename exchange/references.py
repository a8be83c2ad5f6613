"""Which keys a batch's references point at are already published: read for the batch, not for the table.

Quality checks each reference (a sample's station) against the keys of the referenced dataset. Reading every key
of that dataset on every run costs a scan that grows with the dataset; instead the batch's distinct referencing
values go to a temporary table and one join says which of them are published. Keys may be composite: candidates
are tuples in the referenced dataset's primary-key order.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Column, Connection, MetaData, Table, and_, select

from contracts import Contract, FieldSpec
from contracts.types import is_storable_text
from exchange.tables import dataset_table

__all__ = ["published_keys_among"]


def published_keys_among(
    conn: Connection, target: type[Contract], candidates: Iterable[tuple[str, ...]]
) -> set[tuple[str, ...]]:
    """The candidate keys (as text, in ``target``'s primary-key order) that ``target``'s table holds.

    A candidate that cannot be a key at all (``"abc"`` for an integer key) is simply not published; the reference
    check then quarantines the record that carries it with the reference's reason.
    """
    primary_key = target.meta.primary_key
    specs = [target.field_spec(name) for name in primary_key]
    rows = []
    for candidate in set(candidates):
        typed = [_typed(spec, text) for spec, text in zip(specs, candidate, strict=True)]
        if all(value is not None for value in typed):
            rows.append(dict(zip(primary_key, typed, strict=True)))
    if not rows:
        return set()
    table = dataset_table(target)
    keys = Table(
        "_wh_reference_keys",
        MetaData(),
        *(Column(name, table.c[name].type, nullable=False) for name in primary_key),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    keys.drop(conn, checkfirst=True)
    keys.create(conn)
    try:
        conn.execute(keys.insert(), rows)
        same = and_(*(keys.c[name] == table.c[name] for name in primary_key))
        found = conn.execute(select(*(table.c[name] for name in primary_key)).join_from(keys, table, same)).all()
    finally:
        keys.drop(conn)
    return {tuple(str(value) for value in row) for row in found}


def _typed(spec: FieldSpec, text: str) -> object:
    """A candidate's text as the key column stores it, or None when it cannot be such a value: not a number for a
    numeric key, longer than the column, or text no database stores (NUL, a lone surrogate)."""
    if not is_storable_text(text) or (spec.max_length is not None and len(text) > spec.max_length):
        return None
    try:
        if spec.type == "integer":
            return int(text)
        if spec.type == "number":
            return float(text)
    except ValueError:
        return None
    if spec.type in ("integer", "number", "string"):
        return text
    raise TypeError(f"{spec.name}: a {spec.type} key cannot be referenced yet; reference string or numeric keys")
