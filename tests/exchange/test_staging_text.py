"""Staged raw records read back exactly as the connector produced them, whatever text they hold (the line
separators, lone surrogates and deep nesting a source may send)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from exchange.objects import LocalObjectStore
from exchange.staging import BatchStaging

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def staging(engine: Engine, tmp_path: Path) -> BatchStaging:
    return BatchStaging(engine, LocalObjectStore(tmp_path / "objects"))


def _nested(depth: int) -> object:
    value: object = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"level": value}
    return value


@pytest.mark.parametrize(
    "text",
    ["line\u2028separator", "paragraph\u2029separator", "next\x85line", "form\x0cfeed\x1cfile\x1dgroup\x1erecord"],
    ids=["U+2028", "U+2029", "U+0085", "other line breaks"],
)
def test_a_character_python_breaks_lines_at_stays_inside_its_record(staging: BatchStaging, text: str) -> None:
    """JSON escapes a newline inside a string, but not these: ``str.splitlines`` would cut the record in two."""
    records: list[dict[str, object]] = [
        {"station_code": "44010001", "note": text},
        {"station_code": "44010002", "unknown_field": text},
    ]
    batch = staging.open(source="water_quality", run_id="run-1", interval_end=NOW, now=NOW)

    keys = staging.put_records(batch, "samples", records, chunk=len(records))

    assert list(staging.iter_records(keys)) == [records]


def test_a_lone_surrogate_nul_and_deep_nesting_are_staged_and_read_back_exactly(staging: BatchStaging) -> None:
    """``json.loads`` turns the escape ``"\\ud800"`` into a lone surrogate, which no UTF-8 encoder takes."""
    records: list[dict[str, object]] = [
        {"station_code": "44010001\ud800", "name": "\udfff tail", "key\udc00": "\\ud800 is text here"},
        {"station_code": "\x00", "deep": _nested(400)},
    ]
    batch = staging.open(source="water_quality", run_id="run-1", interval_end=NOW, now=NOW)

    keys = staging.put_records(batch, "samples", records, chunk=len(records))

    assert list(staging.iter_records(keys)) == [records]
    assert staging.store.get(keys[0]).decode("utf-8")  # the object is plain UTF-8


def test_numbers_and_text_read_back_as_the_standard_parser_reads_them(staging: BatchStaging) -> None:
    """Parts are written and read by msgspec; a reader of single lines (``record_lines``, quarantine) uses
    ``json.loads``: both must give back the very values staged, types included (``1`` is not ``1.0``)."""
    records: list[dict[str, object]] = [
        {"big": 10**30, "negative": -(2**63) - 1, "one": 1, "one_point_zero": 1.0, "tiny": 5e-324, "zero": -0.0},
        {"large": 1e16, "small": 1.5e-07, "flag": True, "none": None, "text": '小关 "北"\n\t\u2028', "list": [1, {}]},
    ]
    batch = staging.open(source="water_quality", run_id="run-1", interval_end=NOW, now=NOW)

    keys = staging.put_records(batch, "samples", records, chunk=len(records))

    assert [repr(record) for part in staging.iter_records(keys) for record in part] == [repr(r) for r in records]
    assert [repr(json.loads(line)) for line in staging.record_lines(keys[0])] == [repr(r) for r in records]
