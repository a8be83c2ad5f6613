"""Quarantine and validation-run rows on real PostgreSQL and SQLite: idempotent, replayable, upserted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from exchange.quarantine import quarantine_records, record_validation_run
from exchange.tables import quarantine, validation_runs

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SAMPLES = "water_quality.samples"
BAD_PH = {"station_code": "11000001", "sampled_at": "2026-03-01 08:00:00", "w01001": 15.2, "w01001-Flag": "N"}
BAD_CODE = {"station_code": "1100", "sampled_at": "2026-03-01 08:00:00", "w01001": 7.0, "w01001-Flag": "N"}
BAD_BOTH = {"station_code": "x", "sampled_at": "2026-03-01 09:00:00", "w01001": -1, "w01001-Flag": None}


def store(
    engine: Engine,
    entries: Sequence[tuple[Sequence[str], Mapping[str, object]]],
    *,
    dataset: str = SAMPLES,
    run_id: str = "run-1",
    now: datetime = NOW,
) -> int:
    with engine.begin() as conn:
        return quarantine_records(
            conn,
            dataset=dataset,
            contract_version="1.0.0",
            run_id=run_id,
            batch_id=f"water_quality-{run_id}",
            entries=entries,
            now=now,
        )


def held(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(quarantine).order_by(quarantine.c.id)).mappings()]


def test_records_are_stored_whole_with_their_reasons(engine: Engine) -> None:
    added = store(engine, [(["ph_out_of_range"], BAD_PH), (["station_code_pattern", "ph_out_of_range"], BAD_BOTH)])

    assert added == 2
    rows = held(engine)
    assert [json.loads(row["payload"]) for row in rows] == [BAD_PH, BAD_BOTH]  # replayable as received
    assert [json.loads(row["reasons"]) for row in rows] == [
        ["ph_out_of_range"],
        ["ph_out_of_range", "station_code_pattern"],
    ]
    assert {(r["dataset"], r["contract_version"], r["run_id"], r["batch_id"]) for r in rows} == {
        (SAMPLES, "1.0.0", "run-1", "water_quality-run-1")
    }
    assert {row["quarantined_at"] for row in rows} == {NOW}
    canonical = json.dumps(BAD_PH, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert rows[0]["payload_hash"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_quarantining_the_same_records_again_adds_nothing(engine: Engine) -> None:
    store(engine, [(["ph_out_of_range"], BAD_PH), (["station_code_pattern"], BAD_CODE)])

    again = store(engine, [(["ph_out_of_range"], BAD_PH), (["station_code_pattern"], BAD_CODE)], run_id="run-2")

    assert again == 0
    rows = held(engine)
    assert len(rows) == 2
    assert {row["run_id"] for row in rows} == {"run-1"}  # the first sighting is kept


def test_key_order_does_not_make_a_record_new(engine: Engine) -> None:
    store(engine, [(["ph_out_of_range"], BAD_PH)])
    reordered = dict(reversed(list(BAD_PH.items())))

    assert store(engine, [(["ph_out_of_range"], reordered)]) == 0
    assert len(held(engine)) == 1


def test_only_new_records_are_counted_in_a_mixed_batch(engine: Engine) -> None:
    store(engine, [(["ph_out_of_range"], BAD_PH)])

    added = store(engine, [(["ph_out_of_range"], BAD_PH), (["station_code_pattern"], BAD_CODE)], run_id="run-2")

    assert added == 1
    assert [json.loads(row["payload"]) for row in held(engine)] == [BAD_PH, BAD_CODE]


def test_a_record_repeated_within_one_call_is_stored_once(engine: Engine) -> None:
    assert store(engine, [(["ph_out_of_range"], BAD_PH), (["ph_out_of_range"], dict(BAD_PH))]) == 1
    assert len(held(engine)) == 1


def test_the_same_record_in_another_dataset_is_kept_separately(engine: Engine) -> None:
    store(engine, [(["ph_out_of_range"], BAD_PH)])

    assert store(engine, [(["ph_out_of_range"], BAD_PH)], dataset="water_quality.other") == 1
    assert sorted(row["dataset"] for row in held(engine)) == ["water_quality.other", SAMPLES]


def test_no_entries_store_nothing(engine: Engine) -> None:
    assert store(engine, []) == 0
    assert held(engine) == []


def test_non_ascii_payloads_survive_the_round_trip(engine: Engine) -> None:
    record = {"station_code": "11000001", "name": "小关桥", "w01010": "−2.0"}

    store(engine, [(["water_temperature_not_a_number"], record)])

    assert json.loads(held(engine)[0]["payload"]) == record


def _nested(depth: int) -> object:
    value: object = 7.2
    for level in range(depth):
        value = [value] if level % 2 else {"w01001": value}
    return value


def test_text_no_database_takes_as_it_is_is_stored_as_its_json_escape_and_reads_back_equal(engine: Engine) -> None:
    """A lone surrogate has no UTF-8 form and PostgreSQL text cannot hold NUL; the JSON escape of each can."""
    record = {
        "station_code": "11000001\x00",
        "name": "half a pair \ud800, \udfff",
        "extra": "line\u2028separator\u2029and\x85next line",
        "deep": _nested(400),
    }

    assert store(engine, [(["station_code_bad_text"], record)]) == 1
    (row,) = held(engine)
    assert json.loads(row["payload"]) == record
    assert store(engine, [(["station_code_bad_text"], dict(record))], run_id="run-2") == 0


def test_a_rolled_back_transaction_quarantines_nothing(engine: Engine) -> None:
    class _ValidateFailedError(Exception):
        pass

    def quarantine_then_fail() -> None:
        with engine.begin() as conn:
            quarantine_records(
                conn,
                dataset=SAMPLES,
                contract_version="1.0.0",
                run_id="run-1",
                batch_id="b",
                entries=[(["ph_out_of_range"], BAD_PH)],
                now=NOW,
            )
            raise _ValidateFailedError

    with pytest.raises(_ValidateFailedError):
        quarantine_then_fail()

    assert held(engine) == []


def record_run(
    engine: Engine, *, batch_id: str = "water_quality-abc", dataset: str = SAMPLES, **counts: object
) -> None:
    values: dict[str, Any] = {
        "run_id": "run-1",
        "contract_version": "1.0.0",
        "rows": 10,
        "valid": 8,
        "quarantined": 2,
        "results": {"ph_out_of_range": 1, "station_code_pattern": 1},
        "now": NOW,
        **counts,
    }
    with engine.begin() as conn:
        record_validation_run(conn, batch_id=batch_id, dataset=dataset, **values)


def validation_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        query = select(validation_runs).order_by(validation_runs.c.batch_id, validation_runs.c.dataset)
        return [dict(row) for row in conn.execute(query).mappings()]


def test_a_validation_run_is_recorded_with_its_counts(engine: Engine) -> None:
    record_run(engine)

    (row,) = validation_rows(engine)
    assert (row["batch_id"], row["dataset"], row["run_id"], row["contract_version"]) == (
        "water_quality-abc",
        SAMPLES,
        "run-1",
        "1.0.0",
    )
    assert (row["rows"], row["valid"], row["quarantined"]) == (10, 8, 2)
    assert json.loads(row["results"]) == {"ph_out_of_range": 1, "station_code_pattern": 1}
    assert row["validated_at"] == NOW


def test_revalidating_a_batch_replaces_its_counts(engine: Engine) -> None:
    record_run(engine)

    later = NOW + timedelta(minutes=5)
    record_run(engine, run_id="run-1-retry", rows=11, valid=11, quarantined=0, results={}, now=later)

    (row,) = validation_rows(engine)
    assert (row["run_id"], row["rows"], row["valid"], row["quarantined"]) == ("run-1-retry", 11, 11, 0)
    assert json.loads(row["results"]) == {}
    assert row["validated_at"] == later


def test_each_dataset_of_a_batch_has_its_own_validation_row(engine: Engine) -> None:
    record_run(engine)
    record_run(engine, dataset="water_quality.stations", rows=3, valid=3, quarantined=0, results={})
    record_run(engine, batch_id="water_quality-def", rows=4, valid=4, quarantined=0)

    rows = validation_rows(engine)
    assert [(r["batch_id"], r["dataset"], r["rows"]) for r in rows] == [
        ("water_quality-abc", SAMPLES, 10),
        ("water_quality-abc", "water_quality.stations", 3),
        ("water_quality-def", SAMPLES, 4),
    ]
