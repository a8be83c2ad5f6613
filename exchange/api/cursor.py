"""Opaque keyset cursors for /rows: the last primary key sent, bound to the dataset and the request's filters.

Opaque so clients do not build them, and so the encoding can change; bound to the filters so a cursor taken
from one query is refused by another instead of silently skipping rows. A forged cursor gains nothing: the grant's
filter applies whatever the cursor says.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence

from contracts import Contract
from exchange.access.filters import Condition, FilterValue, field_specs_by_name, parse_value
from exchange.errors import InvalidQueryError

__all__ = ["decode_cursor", "encode_cursor", "filters_fingerprint"]

_MAX_CURSOR_CHARS = 2000


def filters_fingerprint(conditions: Sequence[Condition]) -> str:
    text = json.dumps([c.as_json() for c in conditions], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(dataset: str, fingerprint: str, key: Sequence[object]) -> str:
    values = [value.isoformat() if hasattr(value, "isoformat") else value for value in key]
    body = json.dumps({"d": dataset, "f": fingerprint, "k": values}, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_cursor(contract: type[Contract], fingerprint: str, cursor: str) -> tuple[FilterValue, ...]:
    """The primary key a cursor resumes after, typed as the contract types it; a bad cursor is a 400."""
    bad = InvalidQueryError(
        "the cursor is not one this API gave for this dataset; start without a cursor or use next_cursor as given",
        slug="invalid-cursor",
    )
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise bad
    try:
        body = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise bad from exc
    key_fields = contract.meta.primary_key
    if not isinstance(body, dict) or body.get("d") != contract.meta.key:
        raise bad
    if body.get("f") != fingerprint:
        raise InvalidQueryError(
            "the cursor belongs to a query with other filters; repeat the filters of the first page with it",
            slug="invalid-cursor",
        )
    values = body.get("k")
    if not isinstance(values, list) or len(values) != len(key_fields):
        raise bad
    typed = []
    for name, value in zip(key_fields, values, strict=True):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise bad
        try:
            typed.append(parse_value(field_specs_by_name(contract)[name], str(value)))
        except InvalidQueryError as exc:
            raise bad from exc
    return tuple(typed)
