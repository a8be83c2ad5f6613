"""publish_frame on real PostgreSQL (binary COPY fast path) and SQLite (executemany path), same scenarios on both,
each under both of publish's strategies: inline (small frames) and bulk (temporary tables; COPY on PostgreSQL),
forced here whatever a frame's size.

Expected sequence numbers, keys and counts are derived here from the frames the tests build, never read back from
the code under test: keys are ``json.dumps`` of the values with ``isoformat`` times, sequences count frame rows.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from sqlalchemy import Engine, select, text

from contracts import Classification, Contract, ContractMeta
from contracts.water_quality import WaterQualitySample, WaterQualityStation
from exchange import pg_copy
from exchange import publish as publish_module
from exchange.db import make_engine
from exchange.errors import InvalidFrameError
from exchange.hashing import canonical_frame, key_json, row_hashes
from exchange.publish import PublishResult, publish_frame
from exchange.tables import change_log, dataset_table, datasets, ensure_schema, metadata, outbox
from tests.exchange.rows import LATER, NOW, T0, publish, sample, station, typed_frame

SAMPLES_VERSION = WaterQualitySample.meta.version

SAMPLES = WaterQualitySample.meta.key
STATIONS = WaterQualityStation.meta.key


@pytest.fixture(autouse=True, params=["rows", "bulk"])
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(publish_module, "SMALL_FRAME_ROWS", 10**9 if request.param == "rows" else -1)
    return str(request.param)


def expected_key(row: Mapping[str, object], contract: type[Contract] = WaterQualitySample) -> str:
    """The change-log key as a consumer would build it: JSON array, times isoformat in UTC with Z."""
    values: list[object] = []
    for name in contract.meta.primary_key:
        value = row[name]
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        values.append(value)
    return json.dumps(values, separators=(",", ":"))


def log_entries(engine: Engine, dataset: str = SAMPLES) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(change_log).where(change_log.c.dataset == dataset).order_by(change_log.c.seq))
        return [dict(row) for row in rows.mappings()]


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(outbox).order_by(outbox.c.id)).mappings()]


def dataset_row(engine: Engine, key: str = SAMPLES) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(datasets).where(datasets.c.key == key)).mappings().first()
        return dict(row) if row else None


def stored_rows(engine: Engine, contract: type[Contract] = WaterQualitySample) -> list[dict[str, Any]]:
    table = dataset_table(contract)
    order = [table.c[name] for name in contract.meta.primary_key]
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(table).order_by(*order)).mappings()]


def as_stored(contract: type[Contract], row: Mapping[str, object]) -> dict[str, object]:
    """What the table should hold for an input row: every contract field, None where the row has no value."""
    return {spec.name: row.get(spec.name) for spec in contract.field_specs()}


def contract_part(row: Mapping[str, Any], contract: type[Contract] = WaterQualitySample) -> dict[str, Any]:
    return {spec.name: row[spec.name] for spec in contract.field_specs()}


# --- first publish ---------------------------------------------------------------------------------------------


def test_first_publish_inserts_every_row_with_seq_one_to_n(engine: Engine) -> None:
    rows = [sample("11000001", hour) for hour in range(3)] + [sample("11000002", hour) for hour in range(2)]

    result = publish(engine, WaterQualitySample, rows, run_id="run-1")

    assert result.counts() == {"inserted": 5, "updated": 0, "unchanged": 0, "stale": 0, "deleted": 0}
    assert (result.first_seq, result.last_seq, result.changed) == (1, 5, 5)
    entries = log_entries(engine)
    assert [entry["seq"] for entry in entries] == [1, 2, 3, 4, 5]
    assert [entry["key"] for entry in entries] == [expected_key(row) for row in rows]  # frame order
    assert {entry["op"] for entry in entries} == {"insert"}
    assert {(e["run_id"], e["contract_version"], e["changed_at"]) for e in entries} == {("run-1", SAMPLES_VERSION, NOW)}
    (event,) = outbox_rows(engine)
    assert (event["first_seq"], event["last_seq"]) == (1, 5)
    assert (event["inserted"], event["updated"], event["deleted"]) == (5, 0, 0)
    assert (event["event_id"], event["dataset"], event["run_id"]) == (result.event_id, SAMPLES, "run-1")
    assert event["created_at"] == NOW
    assert event["dispatched_at"] is None
    summary = dataset_row(engine)
    assert summary is not None
    assert (summary["last_seq"], summary["row_count"], summary["last_run_id"]) == (5, 5, "run-1")
    assert summary["last_published_at"] == NOW
    assert summary["table_name"] == f"ds_water_quality__samples_v{WaterQualitySample.meta.major}"


def test_rows_read_back_equal_the_input_with_aware_utc_times(engine: Engine) -> None:
    rows = [
        sample("11000001", 0, turbidity=12.5, turbidity_flag="M", dissolved_oxygen=None),
        sample("11000001", 1, ph=None, ph_flag=None, total_phosphorus=0.0425),
        sample("11000002", 0, conductivity=1234.5678901234, conductivity_flag="T"),
    ]

    publish(engine, WaterQualitySample, rows, run_id="run-1")

    stored = stored_rows(engine)
    assert [contract_part(row) for row in stored] == [as_stored(WaterQualitySample, row) for row in rows]
    for row in stored:
        for name in ("sampled_at", "updated_at"):
            assert row[name].utcoffset() == timedelta(0), f"{name} came back without its UTC zone"
    assert [row["_seq"] for row in stored] == [1, 2, 3]
    assert {row["_run_id"] for row in stored} == {"run-1"}


def test_times_in_another_zone_are_stored_as_the_same_instant_in_utc(engine: Engine) -> None:
    beijing = timezone(timedelta(hours=8))
    local = datetime(2026, 3, 1, 8, 0, tzinfo=beijing)  # 00:00 UTC
    frame = typed_frame(WaterQualitySample, [sample("11000001", 0)])
    frame["sampled_at"] = pd.Series([pd.Timestamp(local)]).dt.as_unit("ns")  # ns and +08:00: both tolerated

    with engine.begin() as conn:
        publish_frame(conn, WaterQualitySample, frame, run_id="run-1", now=NOW)

    (row,) = stored_rows(engine)
    assert row["sampled_at"] == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert row["sampled_at"].utcoffset() == timedelta(0)
    assert log_entries(engine)[0]["key"] == '["11000001","2026-03-01T00:00:00Z"]'


def test_a_filtered_frame_with_gaps_in_its_index_publishes_by_position(engine: Engine) -> None:
    rows = [sample("11000001", hour, ph=6.0 + hour) for hour in range(5)]
    frame = typed_frame(WaterQualitySample, rows)
    valid = frame[frame["ph"] != 7.0].set_axis([40, 3, 17, 8])  # what a validator's boolean filter leaves behind

    with engine.begin() as conn:
        result = publish_frame(conn, WaterQualitySample, valid, run_id="run-1", now=NOW)

    kept = [row for row in rows if row["ph"] != 7.0]
    assert result.inserted == 4
    assert [contract_part(row) for row in stored_rows(engine)] == [as_stored(WaterQualitySample, r) for r in kept]
    assert [e["key"] for e in log_entries(engine)] == [expected_key(row) for row in kept]


def test_sub_second_times_keep_microseconds_in_rows_and_keys(engine: Engine) -> None:
    sampled_at = datetime(2026, 3, 1, 6, 30, 15, 250_000, tzinfo=UTC)
    row = sample("11000001", 0, sampled_at=sampled_at)

    publish(engine, WaterQualitySample, [row], run_id="run-1")

    assert stored_rows(engine)[0]["sampled_at"] == sampled_at
    assert log_entries(engine)[0]["key"] == '["11000001","2026-03-01T06:30:15.250000Z"]'


# --- republish and updates -------------------------------------------------------------------------------------


def test_republishing_the_same_frame_writes_and_sends_nothing(engine: Engine) -> None:
    rows = [sample("11000001", hour) for hour in range(4)]
    publish(engine, WaterQualitySample, rows, run_id="run-1")

    again = publish(engine, WaterQualitySample, rows, run_id="run-2", now=LATER)

    assert again.counts() == {"inserted": 0, "updated": 0, "unchanged": 4, "stale": 0, "deleted": 0}
    assert (again.first_seq, again.last_seq, again.event_id, again.changed) == (None, None, None, 0)
    assert len(log_entries(engine)) == 4
    assert len(outbox_rows(engine)) == 1
    summary = dataset_row(engine)
    assert summary is not None
    assert (summary["last_seq"], summary["last_run_id"], summary["last_published_at"]) == (4, "run-1", NOW)
    assert {row["_run_id"] for row in stored_rows(engine)} == {"run-1"}


def test_one_changed_value_logs_exactly_one_update(engine: Engine) -> None:
    rows = [sample("11000001", hour) for hour in range(3)]
    publish(engine, WaterQualitySample, rows, run_id="run-1")
    corrected = [dict(row) for row in rows]
    corrected[1]["ammonia_nitrogen"] = 0.75  # the bureau corrected one hour

    result = publish(engine, WaterQualitySample, corrected, run_id="run-2", now=LATER)

    assert result.counts() == {"inserted": 0, "updated": 1, "unchanged": 2, "stale": 0, "deleted": 0}
    assert (result.first_seq, result.last_seq) == (4, 4)
    entries = log_entries(engine)
    assert len(entries) == 4
    assert (entries[-1]["seq"], entries[-1]["op"], entries[-1]["key"]) == (4, "update", expected_key(rows[1]))
    assert (entries[-1]["run_id"], entries[-1]["changed_at"]) == ("run-2", LATER)
    stored = stored_rows(engine)
    assert stored[1]["ammonia_nitrogen"] == 0.75
    assert [(row["_seq"], row["_run_id"]) for row in stored] == [(1, "run-1"), (4, "run-2"), (3, "run-1")]
    event = outbox_rows(engine)[-1]
    assert (event["first_seq"], event["last_seq"], event["inserted"], event["updated"]) == (4, 4, 0, 1)
    summary = dataset_row(engine)
    assert summary is not None
    assert (summary["last_seq"], summary["row_count"], summary["last_run_id"]) == (4, 3, "run-2")


def test_a_value_becoming_null_is_an_update(engine: Engine) -> None:
    rows = [sample("11000001", 0, turbidity=3.5, turbidity_flag="N")]
    publish(engine, WaterQualitySample, rows, run_id="run-1")

    result = publish(
        engine, WaterQualitySample, [sample("11000001", 0, turbidity=None, turbidity_flag=None)], run_id="run-2"
    )

    assert result.updated == 1
    (row,) = stored_rows(engine)
    assert (row["turbidity"], row["turbidity_flag"]) == (None, None)


def test_mixed_inserts_and_updates_get_sequences_in_frame_order(engine: Engine) -> None:
    first = [sample("11000001", hour) for hour in range(3)]
    publish(engine, WaterQualitySample, first, run_id="run-1")
    second = [
        sample("11000002", 0),  # new
        dict(first[0], ph=6.2),  # changed
        first[1],  # unchanged
        sample("11000002", 1),  # new
        dict(first[2], ph_flag="M"),  # changed
    ]

    result = publish(engine, WaterQualitySample, second, run_id="run-2", now=LATER)

    assert result.counts() == {"inserted": 2, "updated": 2, "unchanged": 1, "stale": 0, "deleted": 0}
    new_entries = log_entries(engine)[3:]
    assert [(e["seq"], e["op"], e["key"]) for e in new_entries] == [
        (4, "insert", expected_key(second[0])),
        (5, "update", expected_key(second[1])),
        (6, "insert", expected_key(second[3])),
        (7, "update", expected_key(second[4])),
    ]
    event = outbox_rows(engine)[-1]
    assert (event["first_seq"], event["last_seq"], event["inserted"], event["updated"]) == (4, 7, 2, 2)
    stored = {(row["station_code"], row["sampled_at"]): row for row in stored_rows(engine)}
    assert len(stored) == 5
    assert stored[("11000001", T0)]["ph"] == 6.2
    assert stored[("11000001", T0 + timedelta(hours=2))]["ph_flag"] == "M"
    assert stored[("11000001", T0 + timedelta(hours=1))]["_seq"] == 2
    summary = dataset_row(engine)
    assert summary is not None
    assert (summary["last_seq"], summary["row_count"]) == (7, 5)


def test_an_empty_frame_registers_the_dataset_and_changes_nothing(engine: Engine) -> None:
    result = publish(engine, WaterQualitySample, [], run_id="run-1")

    assert result.counts() == {"inserted": 0, "updated": 0, "unchanged": 0, "stale": 0, "deleted": 0}
    assert result.event_id is None
    summary = dataset_row(engine)
    assert summary is not None
    assert (summary["last_seq"], summary["row_count"], summary["last_published_at"]) == (0, 0, None)
    assert log_entries(engine) == []
    assert outbox_rows(engine) == []


# --- transactions ----------------------------------------------------------------------------------------------


def test_two_datasets_publish_in_one_transaction_with_their_own_sequences(engine: Engine) -> None:
    stations = [station("11000001"), station("11000002", name="Jiuxianqiao")]
    samples = [sample("11000001", 0), sample("11000002", 0), sample("11000002", 1)]

    with engine.begin() as conn:
        a = publish_frame(conn, WaterQualityStation, typed_frame(WaterQualityStation, stations), run_id="r", now=NOW)
        b = publish_frame(conn, WaterQualitySample, typed_frame(WaterQualitySample, samples), run_id="r", now=NOW)

    assert (a.dataset, a.first_seq, a.last_seq) == (STATIONS, 1, 2)
    assert (b.dataset, b.first_seq, b.last_seq) == (SAMPLES, 1, 3)
    assert [e["key"] for e in log_entries(engine, STATIONS)] == ['["11000001"]', '["11000002"]']
    assert [e["seq"] for e in log_entries(engine, SAMPLES)] == [1, 2, 3]
    assert [(e["dataset"], e["first_seq"], e["last_seq"]) for e in outbox_rows(engine)] == [
        (STATIONS, 1, 2),
        (SAMPLES, 1, 3),
    ]
    assert [contract_part(r, WaterQualityStation) for r in stored_rows(engine, WaterQualityStation)] == stations
    assert a.event_id != b.event_id


class _CallerFailedError(Exception):
    pass


def _publish_then_fail(
    engine: Engine, rows: Sequence[Mapping[str, object]], run_id: str, seen: list[PublishResult]
) -> None:
    """Publish inside a transaction that then fails, as when the watermark step after publish raises."""
    with engine.begin() as conn:
        seen.append(
            publish_frame(conn, WaterQualitySample, typed_frame(WaterQualitySample, rows), run_id=run_id, now=NOW)
        )
        raise _CallerFailedError


def test_a_rolled_back_transaction_leaves_nothing_and_consumes_no_sequence(engine: Engine) -> None:
    rows = [sample("11000001", hour) for hour in range(2)]
    seen: list[PublishResult] = []

    with pytest.raises(_CallerFailedError):
        _publish_then_fail(engine, rows, "r", seen)

    assert dataset_row(engine) is None
    assert log_entries(engine) == []
    assert outbox_rows(engine) == []
    assert stored_rows(engine) == []
    retried = publish(engine, WaterQualitySample, rows, run_id="r")
    assert (retried.first_seq, retried.last_seq) == (1, 2)


def test_a_publish_retried_after_a_rollback_has_the_same_event_id(engine: Engine) -> None:
    publish(engine, WaterQualitySample, [sample("11000001", 0)], run_id="r1")
    rows = [sample("11000001", 0, ph=7.9), sample("11000001", 1)]
    seen: list[PublishResult] = []

    with pytest.raises(_CallerFailedError):
        _publish_then_fail(engine, rows, "r2", seen)

    retried = publish(engine, WaterQualitySample, rows, run_id="r2")
    assert (retried.first_seq, retried.last_seq) == (seen[0].first_seq, seen[0].last_seq) == (2, 3)
    assert retried.event_id == seen[0].event_id  # same range, same event id: a consumer deduplicates on it


def test_a_hub_rebuilt_from_scratch_sends_new_event_ids_for_the_same_sequences(tmp_path: Path) -> None:
    """Its sequences start again at 1; a consumer that deduplicates on ids must not drop its events as seen."""
    results = []
    for hub in ("old", "rebuilt"):
        engine = make_engine(f"sqlite:///{tmp_path / hub}.db")
        ensure_schema(engine)
        results.append(publish(engine, WaterQualitySample, [sample("11000001", 0)], run_id="r"))
        engine.dispose()
    old, rebuilt = results
    assert (old.first_seq, old.last_seq) == (rebuilt.first_seq, rebuilt.last_seq) == (1, 1)
    assert old.event_id != rebuilt.event_id


def test_a_rolled_back_update_leaves_the_published_state_untouched(engine: Engine) -> None:
    rows = [sample("11000001", hour) for hour in range(2)]
    publish(engine, WaterQualitySample, rows, run_id="run-1")
    before = stored_rows(engine)
    seen: list[PublishResult] = []

    with pytest.raises(_CallerFailedError):
        _publish_then_fail(engine, [dict(rows[0], ph=5.5), sample("11000003", 0)], "run-2", seen)

    assert seen[0].counts() == {"inserted": 1, "updated": 1, "unchanged": 0, "stale": 0, "deleted": 0}
    assert stored_rows(engine) == before
    assert len(log_entries(engine)) == 2
    assert len(outbox_rows(engine)) == 1
    summary = dataset_row(engine)
    assert summary is not None
    assert (summary["last_seq"], summary["last_run_id"]) == (2, "run-1")


def test_concurrent_publishes_get_gapless_contiguous_sequences(engine: Engine) -> None:
    publish(engine, WaterQualitySample, [sample("11000000", 0)], run_id="seed")  # both writers now compare
    batches = {
        name: [sample(code, hour) for hour in range(40)]
        for name, code in (("a", "11000001"), ("b", "11000002"), ("c", "11000003"))
    }
    results: dict[str, PublishResult] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(batches))

    def run(name: str) -> None:
        try:
            start.wait()
            results[name] = publish(engine, WaterQualitySample, batches[name], run_id=f"run-{name}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert [e["seq"] for e in log_entries(engine)] == list(range(1, 122))
    ranges = sorted(span(result) for result in results.values())
    assert [(last - first + 1) for first, last in ranges] == [40, 40, 40]
    assert [first for first, _ in ranges] == [2, 42, 82]  # back to back: no gap, no overlap
    for name, result in results.items():
        first, last = span(result)
        logged = {e["key"] for e in log_entries(engine) if first <= e["seq"] <= last}
        assert logged == {expected_key(row) for row in batches[name]}


def span(result: PublishResult) -> tuple[int, int]:
    assert result.first_seq is not None
    assert result.last_seq is not None
    return result.first_seq, result.last_seq


# --- newer data wins ---------------------------------------------------------------------------------------------


def test_an_older_batch_published_after_a_newer_one_writes_nothing_back(engine: Engine) -> None:
    """The replay of issue 14: a late retry of batch A after batch B had corrected 20 of its rows."""
    batch_a = [sample(f"1100000{code}", hour) for code in range(5) for hour in range(10)]  # key order
    corrected = set(range(0, 50, 5)) | set(range(1, 50, 5))  # 20 rows, spread over every station
    batch_b = [
        dict(row, updated_at=row["updated_at"] + timedelta(hours=2), ammonia_nitrogen=0.9, ph=6.5)
        if index in corrected
        else row
        for index, row in enumerate(batch_a)
    ]
    publish(engine, WaterQualitySample, batch_a, run_id="run-a")
    newer = publish(engine, WaterQualitySample, batch_b, run_id="run-b")
    assert newer.counts() == {"inserted": 0, "updated": 20, "unchanged": 30, "stale": 0, "deleted": 0}
    log_before, outbox_before = log_entries(engine), outbox_rows(engine)

    replayed = publish(engine, WaterQualitySample, batch_a, run_id="run-a", now=LATER)

    assert replayed.counts() == {"inserted": 0, "updated": 0, "unchanged": 30, "stale": 20, "deleted": 0}
    assert (replayed.first_seq, replayed.last_seq, replayed.event_id) == (None, None, None)
    assert log_entries(engine) == log_before
    assert outbox_rows(engine) == outbox_before
    assert [contract_part(row) for row in stored_rows(engine)] == [as_stored(WaterQualitySample, r) for r in batch_b]


def test_equal_versions_fall_back_to_the_content_hash_and_one_microsecond_older_is_stale(engine: Engine) -> None:
    rows = [sample("11000001", hour) for hour in range(4)]
    publish(engine, WaterQualitySample, rows, run_id="run-1")
    incoming = [
        dict(rows[0], ammonia_nitrogen=0.5),  # same version, other content: an update
        rows[1],  # same version, same content: unchanged
        dict(rows[2], ammonia_nitrogen=0.5, updated_at=rows[2]["updated_at"] - timedelta(microseconds=1)),  # stale
        dict(rows[3], updated_at=rows[3]["updated_at"] + timedelta(microseconds=1)),  # newer, same values: an update
    ]

    result = publish(engine, WaterQualitySample, incoming, run_id="run-2", now=LATER)

    assert result.counts() == {"inserted": 0, "updated": 2, "unchanged": 1, "stale": 1, "deleted": 0}
    expected = [incoming[0], rows[1], rows[2], incoming[3]]
    assert [contract_part(row) for row in stored_rows(engine)] == [as_stored(WaterQualitySample, r) for r in expected]
    assert [(e["seq"], e["op"], e["key"]) for e in log_entries(engine)[4:]] == [
        (5, "update", expected_key(incoming[0])),
        (6, "update", expected_key(incoming[3])),
    ]
    (_, event) = outbox_rows(engine)
    assert (event["first_seq"], event["last_seq"], event["updated"]) == (5, 6, 2)


def _gauge_contract(kind: type[float] | type[int]) -> type[Contract]:
    """A contract versioned by a number, as a source with revision counters would declare it."""

    class GaugeReading(Contract):
        meta: ClassVar[ContractMeta] = ContractMeta(
            key=f"tests.gauge_{kind.__name__}",
            version="1.0.0",
            owner="tests",
            classification=Classification.PUBLIC,
            primary_key=("gauge",),
            version_field="revision",
        )
        gauge: str
        revision: kind  # type: ignore[valid-type]
        level: float

    return GaugeReading


@pytest.fixture
def gauge_table(engine: Engine, request: pytest.FixtureRequest) -> Iterator[type[Contract]]:
    contract = _gauge_contract(request.param)
    table = dataset_table(contract)
    table.create(engine)
    yield contract
    metadata.remove(table)  # keep the shared metadata to the registered contracts


@pytest.mark.parametrize(
    ("gauge_table", "stored", "older", "newer"),
    [
        (float, 0.1 + 0.2, 0.3, 2.5),  # 0.30000000000000004 is newer than 0.3: compared exactly, not rounded
        (int, 2**60 + 1, 2**60, 2**60 + 2),  # beyond a float's 53 bits: compared exactly
        (float, -0.5, -1.25, -0.25),
    ],
    indirect=["gauge_table"],
)
def test_numeric_versions_are_compared_exactly(
    engine: Engine, gauge_table: type[Contract], stored: float, older: float, newer: float
) -> None:
    first = [{"gauge": gauge, "revision": stored, "level": 1.0} for gauge in ("g1", "g2", "g3")]
    publish(engine, gauge_table, first, run_id="run-1")
    second = [
        {"gauge": "g1", "revision": older, "level": 9.0},
        {"gauge": "g2", "revision": stored, "level": 9.0},
        {"gauge": "g3", "revision": newer, "level": 9.0},
    ]

    result = publish(engine, gauge_table, second, run_id="run-2", now=LATER)

    assert result.counts() == {"inserted": 0, "updated": 2, "unchanged": 0, "stale": 1, "deleted": 0}
    expected = [first[0], second[1], second[2]]
    assert [contract_part(row, gauge_table) for row in stored_rows(engine, gauge_table)] == expected


class _Publisher(threading.Thread):
    """Publishes one batch in a transaction of its own, then holds it open until told to commit."""

    def __init__(self, engine: Engine, run_id: str, rows: Sequence[Mapping[str, object]]) -> None:
        super().__init__(name=run_id)
        self.engine, self.run_id, self.frame = engine, run_id, typed_frame(WaterQualitySample, rows)
        self.connected, self.published, self.commit = threading.Event(), threading.Event(), threading.Event()
        self.backend_pid: int | None = None
        self.result: PublishResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    self.backend_pid = conn.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
                self.connected.set()
                self.result = publish_frame(conn, WaterQualitySample, self.frame, run_id=self.run_id, now=NOW)
                self.published.set()
                if not self.commit.wait(timeout=60):
                    raise TimeoutError(f"{self.run_id} was never told to commit")
        except BaseException as exc:  # noqa: BLE001 - reported by the test's assertions
            self.error = exc
            self.published.set()


def _wait_until_it_waits_for_the_lock(engine: Engine, publisher: _Publisher) -> None:
    """Until ``publisher`` waits for the dataset lock another publisher holds; SQLite shows no lock waits, so there
    it is given time to reach the lock."""
    assert publisher.connected.wait(timeout=30)
    if engine.dialect.name == "postgresql":
        waiting = text("select exists (select 1 from pg_locks where pid = :pid and not granted)")
        deadline = time.monotonic() + 30
        with engine.connect() as conn:
            while not conn.execute(waiting, {"pid": publisher.backend_pid}).scalar():
                assert time.monotonic() < deadline, f"{publisher.run_id} never waited for the dataset lock"
                time.sleep(0.01)
    else:
        time.sleep(0.3)
    assert not publisher.published.is_set(), f"{publisher.run_id} published while another held the dataset lock"


@pytest.mark.parametrize("order", list(itertools.permutations("abc")), ids="".join)
def test_concurrent_publishers_of_overlapping_batches_end_alike_in_any_order(
    engine: Engine, order: tuple[str, ...]
) -> None:
    """Each publisher starts while the one before still holds the lock, so each must compare against what the
    other committed; the version winning a key rotates between batches, so every order replays older data."""
    covered = {"a": range(0, 20), "b": range(5, 25), "c": range(10, 30)}
    batches = {
        name: [
            sample(
                "11000001",
                hour,
                updated_at=T0 + timedelta(hours=hour, minutes=10 * (1 + (index + hour) % 3)),
                ph=6.0 + index + hour / 100,
            )
            for hour in hours
        ]
        for index, (name, hours) in enumerate(covered.items())
    }
    publishers = [_Publisher(engine, f"run-{name}", batches[name]) for name in order]

    holding: _Publisher | None = None
    for publisher in publishers:
        publisher.start()
        if holding is not None:
            _wait_until_it_waits_for_the_lock(engine, publisher)
            holding.commit.set()
        assert publisher.published.wait(timeout=60)
        holding = publisher
    assert holding is not None
    holding.commit.set()
    for publisher in publishers:
        publisher.join(timeout=60)

    assert [p.error for p in publishers] == [None] * 3
    newest: dict[str, Mapping[str, object]] = {}
    for row in (row for rows in batches.values() for row in rows):
        key = expected_key(row)
        if key not in newest or _version(row) > _version(newest[key]):
            newest[key] = row
    assert [contract_part(row) for row in stored_rows(engine)] == [
        as_stored(WaterQualitySample, newest[key])
        for key in sorted(newest)  # one station: keys sort by hour
    ]
    entries = log_entries(engine)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    rows_of = {(f"run-{name}", expected_key(row)): row for name, rows in batches.items() for row in rows}
    for key in newest:
        logged = [e for e in entries if e["key"] == key]
        assert [e["op"] for e in logged] == ["insert"] + ["update"] * (len(logged) - 1)
        versions = [_version(rows_of[(e["run_id"], key)]) for e in logged]
        assert versions == sorted(set(versions)), f"{key}: a logged change did not bring a newer version"
    stored_version: dict[str, datetime] = {}
    for publisher, name in zip(publishers, order, strict=True):  # what each should have done, in commit order
        counts = {"inserted": 0, "updated": 0, "unchanged": 0, "stale": 0, "deleted": 0}
        for row in batches[name]:
            key, version = expected_key(row), _version(row)
            before = stored_version.get(key)
            outcome = "inserted" if before is None else "stale" if version < before else "updated"
            counts[outcome] += 1
            stored_version[key] = max(version, before or version)
        assert publisher.result is not None
        assert publisher.result.counts() == counts, publisher.run_id


def _version(row: Mapping[str, object]) -> datetime:
    version = row["updated_at"]
    assert isinstance(version, datetime)
    return version


# --- refusals ----------------------------------------------------------------------------------------------------


def test_duplicate_primary_keys_are_refused_and_nothing_is_written(engine: Engine) -> None:
    rows = [sample("11000001", 0), sample("11000001", 1), sample("11000001", 0, ph=8.0)]

    with pytest.raises(InvalidFrameError, match=r'2 rows share a primary key .*\["11000001","2026-03-01T00:00:00Z"\]'):
        publish(engine, WaterQualitySample, rows, run_id="run-1")

    assert dataset_row(engine) is None
    assert stored_rows(engine) == []


def test_a_frame_with_missing_or_extra_columns_is_refused(engine: Engine) -> None:
    frame = typed_frame(WaterQualitySample, [sample("11000001", 0)]).drop(columns=["ph"]).assign(extra=1)

    with pytest.raises(InvalidFrameError, match=r"missing \['ph'\], unexpected \['extra'\]"), engine.begin() as conn:
        publish_frame(conn, WaterQualitySample, frame, run_id="run-1", now=NOW)


def test_naive_times_are_refused(engine: Engine) -> None:
    frame = typed_frame(WaterQualitySample, [sample("11000001", 0)])
    frame["sampled_at"] = frame["sampled_at"].dt.tz_localize(None)

    with pytest.raises(InvalidFrameError, match="sampled_at"), engine.begin() as conn:
        publish_frame(conn, WaterQualitySample, frame, run_id="run-1", now=NOW)
    assert dataset_row(engine) is None


def test_a_null_in_a_required_field_is_refused(engine: Engine) -> None:
    frame = typed_frame(WaterQualitySample, [sample("11000001", 0), sample("11000001", 1, updated_at=None)])

    with pytest.raises(InvalidFrameError, match="updated_at is not nullable"), engine.begin() as conn:
        publish_frame(conn, WaterQualitySample, frame, run_id="run-1", now=NOW)


def test_a_naive_now_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="naive"), engine.begin() as conn:
        publish_frame(
            conn,
            WaterQualitySample,
            typed_frame(WaterQualitySample, []),
            run_id="r",
            now=datetime(2026, 3, 2),  # noqa: DTZ001 - the naive time under test
        )


# --- content hash ------------------------------------------------------------------------------------------------


def _base_rows() -> list[dict[str, object]]:
    return [
        sample("11000001", 0, turbidity=0.0, turbidity_flag="N"),
        sample("11000001", 1, ph=None, ph_flag=None, turbidity=None),
        sample("11000002", 0, conductivity=512.25, conductivity_flag="T"),
    ]


def _variants() -> Iterator[tuple[str, pd.DataFrame]]:
    base = typed_frame(WaterQualitySample, _base_rows())
    yield "object strings", base.astype({name: object for name in base.columns if base[name].dtype == "str"})
    yield (
        "ns times",
        base.assign(sampled_at=base["sampled_at"].dt.as_unit("ns"), updated_at=base["updated_at"].dt.as_unit("ns")),
    )
    yield "ms times", base.assign(updated_at=base["updated_at"].dt.as_unit("ms"))
    yield "Beijing zone", base.assign(sampled_at=base["sampled_at"].dt.tz_convert("Asia/Shanghai"))
    yield "negative zero", base.assign(turbidity=base["turbidity"].map(lambda value: -0.0 if value == 0 else value))
    objects = base.astype(object)
    yield "None gaps in object columns", objects.where(base.notna(), None)
    yield "pd.NA gaps in nullable columns", base.astype({"ph": "Float64", "ph_flag": "string"})
    yield (
        "python datetimes in object columns",
        base.assign(sampled_at=pd.Series([value.to_pydatetime() for value in base["sampled_at"]], dtype=object)),
    )
    yield "shuffled column order", base[list(reversed(base.columns))]


@pytest.mark.parametrize(("label", "variant"), list(_variants()), ids=[label for label, _ in _variants()])
def test_the_hash_ignores_how_equal_values_are_typed(label: str, variant: pd.DataFrame) -> None:
    expected = row_hashes(WaterQualitySample, typed_frame(WaterQualitySample, _base_rows()))

    assert row_hashes(WaterQualitySample, variant).tolist() == expected.tolist(), label


def test_the_hash_changes_when_any_single_field_changes() -> None:
    base_row = sample("11000001", 0, dissolved_oxygen=6.5, dissolved_oxygen_flag="N")
    base = row_hashes(WaterQualitySample, typed_frame(WaterQualitySample, [base_row]))[0]
    changes: dict[str, object] = {
        "station_code": "11000009",
        "sampled_at": T0 + timedelta(microseconds=1),
        "updated_at": T0,
        "ph": 7.1000001,
        "ph_flag": "M",
        "dissolved_oxygen": None,
        "dissolved_oxygen_flag": "",  # empty string is a value, not a gap
        "turbidity": 0.0,
    }
    for name, value in changes.items():
        changed = row_hashes(WaterQualitySample, typed_frame(WaterQualitySample, [dict(base_row, **{name: value})]))
        assert changed[0] != base, f"changing {name} did not change the hash"


def test_swapping_values_between_fields_changes_the_hash() -> None:
    row = sample("11000001", 0, ph=7.0, water_temperature=12.0)
    swapped = dict(row, ph=12.0, water_temperature=7.0)

    hashes = row_hashes(WaterQualitySample, typed_frame(WaterQualitySample, [row, swapped]))

    assert hashes[0] != hashes[1]


def test_the_hash_is_the_same_in_another_process_with_another_hash_seed() -> None:
    rows = _base_rows()
    here = row_hashes(WaterQualitySample, typed_frame(WaterQualitySample, rows)).tolist()
    script = (
        "import sys, json\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('tp', {__file__!r})\n"
        "tp = importlib.util.module_from_spec(spec); spec.loader.exec_module(tp)\n"
        "from contracts.water_quality import WaterQualitySample\n"
        "from exchange.hashing import row_hashes\n"
        "frame = tp.typed_frame(WaterQualitySample, tp._base_rows())\n"
        "print(json.dumps(row_hashes(WaterQualitySample, frame).tolist()))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)  # noqa: S603

    assert json.loads(done.stdout.strip().splitlines()[-1]) == here


def test_the_stored_hash_format_does_not_drift() -> None:
    """A format pin: stored ``_hash`` values are compared on every future run, so changing the algorithm (or a
    dependency changing it underneath) would make the next publish rewrite every row. Change this only together
    with a migration that rehashes the tables."""
    frame = typed_frame(WaterQualitySample, [sample("11000001", 0)])

    assert row_hashes(WaterQualitySample, frame).tolist() == [PINNED_HASH]


PINNED_HASH = -6131536980104650478  # computed once when the format was fixed; see the test above


def test_hashes_are_stored_as_signed_64_bit_integers(engine: Engine) -> None:
    rows = [sample(f"1100000{i}", hour) for i in range(4) for hour in range(4)]
    expected = row_hashes(WaterQualitySample, typed_frame(WaterQualitySample, rows)).tolist()

    publish(engine, WaterQualitySample, rows, run_id="run-1")

    by_key = {(row["station_code"], row["sampled_at"]): row["_hash"] for row in stored_rows(engine)}
    assert [by_key[(row["station_code"], row["sampled_at"])] for row in rows] == expected
    assert any(value < 0 for value in expected)  # the full unsigned range maps onto bigint


def test_republishing_a_differently_typed_frame_changes_nothing(engine: Engine) -> None:
    publish(engine, WaterQualitySample, _base_rows(), run_id="run-1")

    for label, variant in _variants():
        with engine.begin() as conn:
            result = publish_frame(conn, WaterQualitySample, variant, run_id="run-2", now=LATER)
        assert result.changed == 0, label
    assert len(log_entries(engine)) == 3


def test_key_json_matches_what_a_consumer_builds_with_json_dumps() -> None:
    rows = [sample('1100"001', 0), sample("11000002", 5, sampled_at=datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC))]

    keys = key_json(WaterQualitySample, typed_frame(WaterQualitySample, rows)).tolist()

    assert keys == [expected_key(row) for row in rows]
    assert [json.loads(key) for key in keys] == [
        ['1100"001', "2026-03-01T00:00:00Z"],
        ["11000002", "2026-01-01T00:00:00.000001Z"],
    ]


def test_canonical_frame_floors_nanoseconds_to_the_microseconds_databases_keep() -> None:
    frame = typed_frame(WaterQualitySample, [sample("11000001", 0)])
    frame["updated_at"] = pd.Series([pd.Timestamp("2026-03-01T00:20:00.000001999Z")])

    canonical = canonical_frame(WaterQualitySample, frame)

    assert canonical["updated_at"].dtype == "datetime64[us, UTC]"
    assert canonical["updated_at"][0] == pd.Timestamp("2026-03-01T00:20:00.000001Z")


# --- both paths agree --------------------------------------------------------------------------------------------


def test_postgres_and_sqlite_paths_produce_identical_tables_and_logs(pg_engine: Engine, sqlite_engine: Engine) -> None:
    first = [sample(f"1100000{i}", hour, ph=6.5 + i / 10) for i in range(3) for hour in range(5)]
    second = [dict(row, ph=8.0) if index % 4 == 0 else row for index, row in enumerate(first)]
    second += [sample("11000009", hour) for hour in range(3)]
    outcomes = []
    for engine in (pg_engine, sqlite_engine):
        ensure_schema(engine)
        results = [  # event ids differ by design: the two are separate hubs with their own epochs
            replace(publish(engine, WaterQualitySample, batch, run_id=f"run-{n}"), event_id=None)
            for n, batch in enumerate((first, second, second))
        ]
        entries = [{k: v for k, v in e.items()} for e in log_entries(engine)]
        events = [{k: v for k, v in e.items() if k not in ("id", "event_id")} for e in outbox_rows(engine)]
        outcomes.append((results, entries, stored_rows(engine), events))

    assert outcomes[0] == outcomes[1]
    assert [r.counts() for r in outcomes[0][0]] == [
        {"inserted": 15, "updated": 0, "unchanged": 0, "stale": 0, "deleted": 0},
        {"inserted": 3, "updated": 4, "unchanged": 11, "stale": 0, "deleted": 0},
        {"inserted": 0, "updated": 0, "unchanged": 18, "stale": 0, "deleted": 0},
    ]


def test_large_frames_cross_copy_chunk_boundaries_intact(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks force many binary COPY chunks, including nulls and non-ASCII text, through the fast path."""
    monkeypatch.setattr(pg_copy, "CHUNK_ROWS", 7)
    ensure_schema(pg_engine)
    rows = [
        sample(f"1100{i:04d}", i % 24, ph=None if i % 5 == 0 else 7.0 + i / 1000, ph_flag=None if i % 5 == 0 else "N")
        for i in range(50)
    ]
    stations = [station(f"1100{i:04d}", name=f'小关{i}号桥 "north"\t,') for i in range(20)]

    publish(pg_engine, WaterQualitySample, rows, run_id="run-1")
    publish(pg_engine, WaterQualityStation, stations, run_id="run-1")
    publish(pg_engine, WaterQualitySample, [dict(row, ph=9.0) for row in rows[:30]], run_id="run-2")

    stored = {(r["station_code"], r["sampled_at"]): contract_part(r) for r in stored_rows(pg_engine)}
    expected = {(r["station_code"], r["sampled_at"]): as_stored(WaterQualitySample, r) for r in rows}
    for row in rows[:30]:
        expected[(row["station_code"], row["sampled_at"])]["ph"] = 9.0
    assert stored == expected
    assert [contract_part(r, WaterQualityStation) for r in stored_rows(pg_engine, WaterQualityStation)] == stations
    assert [e["seq"] for e in log_entries(pg_engine)] == list(range(1, 81))


# --- module surface --------------------------------------------------------------------------------------------


def test_publish_result_counts_and_changed() -> None:
    result = PublishResult(
        dataset=SAMPLES,
        contract_version="1.0.0",
        run_id="r",
        inserted=2,
        updated=3,
        unchanged=4,
        stale=6,
        deleted=0,
        first_seq=1,
        last_seq=5,
        event_id="e",
    )

    assert result.changed == 5  # stale rows are skipped, not changes
    assert result.counts() == {"inserted": 2, "updated": 3, "unchanged": 4, "stale": 6, "deleted": 0}
