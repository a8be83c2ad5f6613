"""What /rows and /changes share: request filters from query parameters, and rows read in chunks.

A request filter is ``?field=value`` (``eq``; the parameter repeated means ``in``) or ``?field.op=value`` with
``op`` one of ``gt``, ``gte``, ``lt``, ``lte`` (time ranges, number ranges). Each is checked against the contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, Executable, and_, true

from contracts import Contract
from exchange.access.filters import Condition, parse_condition, sql_clause
from exchange.api.deps import GrantedDataset
from exchange.errors import InvalidQueryError

__all__ = ["MAX_FILTERS", "read_chunks", "request_conditions", "visible_rows"]

MAX_FILTERS = 20


def request_conditions(
    contract: type[Contract], items: Iterable[tuple[str, str]], reserved: Sequence[str]
) -> tuple[Condition, ...]:
    """The request's own filters from its query parameters, other than the ``reserved`` ones."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for name, value in items:
        if name in reserved:
            continue
        field, _, op = name.partition(".")
        grouped.setdefault((field, op or "eq"), []).append(value)
    if len(grouped) > MAX_FILTERS:
        raise InvalidQueryError(f"at most {MAX_FILTERS} filters per request, got {len(grouped)}", slug="invalid-filter")
    conditions = []
    for (field, op), values in grouped.items():
        if op == "in":
            raise InvalidQueryError(f"repeat ?{field[:60]}=… to ask for several values", slug="invalid-filter")
        if op == "eq" and len(values) > 1:
            op = "in"
        conditions.append(parse_condition(contract, field, op, values))
    return tuple(conditions)


def visible_rows(dataset: GrantedDataset, conditions: Sequence[Condition]) -> ColumnElement[bool]:
    """The grant's filter and the request's, ANDed: the grant always applies, whatever the request says."""
    clauses = [
        clause
        for clause in (sql_clause(dataset.table, dataset.grant_filter), sql_clause(dataset.table, conditions))
        if clause is not None
    ]
    return and_(true(), *clauses)


def read_chunks(engine: Engine, statement: Executable, chunk_rows: int) -> Iterator[Sequence[Sequence[Any]]]:
    """Rows of ``statement`` in chunks from a server-side cursor: one chunk in memory at a time."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL extra_float_digits = 3")  # floats as their shortest exact text
        result = conn.execution_options(yield_per=chunk_rows).execute(statement)
        for partition in result.partitions():
            yield [tuple(row) for row in partition]
