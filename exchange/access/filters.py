"""Row filters as data: a field, an operator and typed values, checked against the dataset's contract.

A grant's filter (a district bureau sees only its district) and a request's filters (``?district=天河区``,
``?sampled_at.gte=…``) are both lists of ``Condition``. They never become SQL text: each is turned into a bound
SQLAlchemy expression on a column the contract declares, or into an Arrow expression for a snapshot, so a value
such as ``' OR 1=1 --`` is only ever compared with, never executed.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, get_args

from sqlalchemy import ColumnElement, Table, and_

from contracts import Contract, FieldSpec
from exchange.errors import InvalidQueryError

if TYPE_CHECKING:
    import pyarrow.compute as pc

__all__ = [
    "Condition",
    "Operator",
    "arrow_expression",
    "conditions_from_json",
    "conditions_to_json",
    "field_specs_by_name",
    "parse_condition",
    "parse_value",
    "sql_clause",
]

Operator = Literal["eq", "in", "gt", "gte", "lt", "lte"]
_OPERATORS: tuple[str, ...] = get_args(Operator)
_ORDERED_TYPES = ("datetime", "number", "integer")
_MAX_VALUES = 100
_MAX_VALUE_CHARS = 200
FilterValue = str | int | float | bool | datetime


@dataclass(frozen=True)
class Condition:
    """``field op values``: ``eq`` and the comparisons take one value, ``in`` one or more."""

    field: str
    op: Operator
    values: tuple[FilterValue, ...]

    def as_json(self) -> dict[str, object]:
        return {"field": self.field, "op": self.op, "values": [_json_value(value) for value in self.values]}


def _json_value(value: FilterValue) -> object:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def parse_value(spec: FieldSpec, text: str) -> FilterValue:
    """A value as the contract types the field; a value that does not fit is refused, naming field and type."""
    if len(text) > _MAX_VALUE_CHARS:
        raise InvalidQueryError(f"a value for {spec.name} is {len(text)} characters; at most {_MAX_VALUE_CHARS}")
    try:
        if spec.type == "integer":
            return int(text)
        if spec.type == "number":
            number = float(text)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError("not finite")
            return number
        if spec.type == "boolean":
            return {"true": True, "false": False}[text.lower()]
        if spec.type == "datetime":
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError("no UTC offset")
            return moment.astimezone(UTC)
    except (ValueError, KeyError) as exc:
        shown = text if len(text) <= 40 else f"{text[:40]}…"
        example = {"datetime": "2026-03-01T00:00:00Z", "boolean": "true or false"}.get(spec.type, "a " + spec.type)
        raise InvalidQueryError(
            f"{shown!r} is not a valid {spec.type} for field {spec.name}; give {example}", slug="invalid-filter"
        ) from exc
    return text


def parse_condition(contract: type[Contract], field: str, op: str, texts: Sequence[str]) -> Condition:
    """One condition from text (a query parameter, a CLI option), checked against ``contract``'s fields."""
    specs = field_specs_by_name(contract)
    spec = specs.get(field)
    if spec is None:
        shown = field if len(field) <= 60 else f"{field[:60]}…"
        raise InvalidQueryError(
            f"{contract.meta.key} has no field {shown!r}; filter on one of: {', '.join(specs)}", slug="invalid-filter"
        )
    if op not in _OPERATORS:
        raise InvalidQueryError(
            f"unknown operator {op[:20]!r}; use one of {', '.join(_OPERATORS)}", slug="invalid-filter"
        )
    if op in ("gt", "gte", "lt", "lte") and spec.type not in _ORDERED_TYPES:
        raise InvalidQueryError(
            f"{field} is a {spec.type}: ranges ({op}) apply to datetime and number fields only", slug="invalid-filter"
        )
    if not texts or (op != "in" and len(texts) != 1) or len(texts) > _MAX_VALUES:
        raise InvalidQueryError(
            f"{field} {op} takes {'1 to ' + str(_MAX_VALUES) if op == 'in' else 'exactly one'} value(s), "
            f"got {len(texts)}",
            slug="invalid-filter",
        )
    return Condition(field, op, tuple(parse_value(spec, text) for text in texts))  # type: ignore[arg-type]  # op checked above


@cache
def field_specs_by_name(contract: type[Contract]) -> dict[str, FieldSpec]:
    """A contract's fields by name, derived once: deriving them builds the model's JSON Schema, which is slow."""
    return {spec.name: spec for spec in contract.field_specs()}


def conditions_to_json(conditions: Sequence[Condition]) -> str | None:
    return json.dumps([c.as_json() for c in conditions], ensure_ascii=False) if conditions else None


def conditions_from_json(contract: type[Contract], text: str | None) -> tuple[Condition, ...]:
    """A stored grant filter, re-checked against the contract as it is now (a field may have gone in a new major)."""
    if not text:
        return ()
    return tuple(
        parse_condition(contract, item["field"], item["op"], [_text_of(value) for value in item["values"]])
        for item in json.loads(text)
    )


def _text_of(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def sql_clause(table: Table, conditions: Sequence[Condition]) -> ColumnElement[bool] | None:
    """The conditions ANDed as bound SQL on ``table``; None when there are none."""
    clauses: list[ColumnElement[bool]] = []
    for condition in conditions:
        column = table.c[condition.field]
        if condition.op == "in":
            clauses.append(column.in_(condition.values))
        else:
            clauses.append(_COMPARISONS[condition.op](column, condition.values[0]))
    return and_(*clauses) if clauses else None


def arrow_expression(conditions: Sequence[Condition]) -> pc.Expression | None:
    """The same conditions for filtering a snapshot table in Arrow; None when there are none."""
    import pyarrow.compute as pc

    expression: pc.Expression | None = None
    for condition in conditions:
        field = pc.field(condition.field)
        if condition.op == "in":
            term = field.isin(list(condition.values))
        else:
            term = _COMPARISONS[condition.op](field, condition.values[0])
        expression = term if expression is None else expression & term
    return expression


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
