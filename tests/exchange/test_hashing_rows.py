"""The row-by-row form of the content hash and change-log key (small publishes) gives exactly what the column form
(large publishes) gives, for every field type: stored hashes are compared across both, so one differing bit would
rewrite unchanged rows or miss changed ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import Contract, FieldSpec
from contracts.drainage import DrainageHousehold
from contracts.flood_warnings import FloodAlertRecord
from exchange.hashing import (
    canonical_frame,
    canonical_records,
    canonical_row_hashes,
    key_json,
    record_hash,
    record_key_json,
)

_times = st.builds(
    lambda moment, hours, nanos: (
        pd.Timestamp(moment).tz_convert(timezone(timedelta(hours=hours))) + pd.Timedelta(nanoseconds=nanos)
    ),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),  # noqa: DTZ001  # hypothesis bounds are naive
    st.sampled_from([0, 8, -3]),
    st.sampled_from([0, 1, 999]),
)
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=8),
    "number": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.just(-0.0), st.integers(-5, 5)),
    "integer": st.integers(-(2**62), 2**62),
    "boolean": st.booleans(),
    "datetime": _times,
}


def _value(spec: FieldSpec) -> st.SearchStrategy[Any]:
    drawn = _VALUES[spec.type]
    return st.one_of(st.none(), drawn) if spec.nullable else drawn


def _rows(contract: type[Contract]) -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.fixed_dictionaries({spec.name: _value(spec) for spec in contract.field_specs()})
    return st.lists(row, min_size=1, max_size=6)


def _assert_same(contract: type[Contract], rows: list[dict[str, Any]]) -> None:
    canonical = canonical_frame(contract, pd.DataFrame(rows))
    records = canonical_records(contract, rows)
    assert [record_hash(contract, record) for record in records] == canonical_row_hashes(contract, canonical).tolist()
    assert [record_key_json(contract, record) for record in records] == key_json(contract, canonical).tolist()


@settings(max_examples=200, deadline=None)
@given(rows=_rows(FloodAlertRecord))
def test_rows_hash_as_frames_do_with_integers_and_times(rows: list[dict[str, Any]]) -> None:
    _assert_same(FloodAlertRecord, rows)


@settings(max_examples=200, deadline=None)
@given(rows=_rows(DrainageHousehold))
def test_rows_hash_as_frames_do_with_booleans(rows: list[dict[str, Any]]) -> None:
    _assert_same(DrainageHousehold, rows)
