"""The read side on real PostgreSQL and SQLite: dataset summaries, change log after a sequence, quarantine counts.

Data goes in through the real write path (publish_frame, quarantine_records); expected values are derived from
what the test wrote, never read back from the code under test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from contracts.water_quality import WaterQualitySample, WaterQualityStation
from exchange.consumer import ChangeEntry, DatasetSummary, changes_since, list_datasets, quarantined_counts
from exchange.errors import UnknownDatasetError
from exchange.quarantine import quarantine_records
from tests.exchange.rows import LATER, NOW, publish, sample, station

SAMPLES_VERSION = WaterQualitySample.meta.version

SAMPLES = WaterQualitySample.meta.key
STATIONS = WaterQualityStation.meta.key


def hold(engine: Engine, dataset: str, entries: Sequence[tuple[Sequence[str], Mapping[str, object]]]) -> None:
    with engine.begin() as conn:
        quarantine_records(
            conn, dataset=dataset, contract_version="1.0.0", run_id="run-1", batch_id="b-1", entries=entries, now=NOW
        )


def test_nothing_published_lists_no_datasets(engine: Engine) -> None:
    assert list_datasets(engine) == []


def test_list_datasets_summarises_each_published_dataset_with_its_quarantine(engine: Engine) -> None:
    publish(engine, WaterQualityStation, [station("11000001"), station("11000002")], run_id="run-1")
    samples = [sample("11000001", hour) for hour in range(4)]
    publish(engine, WaterQualitySample, samples, run_id="run-1")
    publish(engine, WaterQualitySample, [dict(samples[0], ph=6.1), sample("11000002", 0)], run_id="run-2", now=LATER)
    hold(engine, SAMPLES, [(["ph_out_of_range"], {"station_code": "11000001", "w01001": 15}), (["x"], {"a": 1})])

    assert list_datasets(engine) == [
        DatasetSummary(SAMPLES, SAMPLES_VERSION, rows=5, last_seq=6, last_published_at=LATER, quarantined=2),
        DatasetSummary(
            STATIONS, WaterQualityStation.meta.version, rows=2, last_seq=2, last_published_at=NOW, quarantined=0
        ),
    ]


def test_a_republish_does_not_change_the_summary(engine: Engine) -> None:
    rows = [sample("11000001", hour) for hour in range(3)]
    publish(engine, WaterQualitySample, rows, run_id="run-1")

    publish(engine, WaterQualitySample, rows, run_id="run-2", now=LATER)

    (summary,) = list_datasets(engine)
    assert (summary.rows, summary.last_seq, summary.last_published_at) == (3, 3, NOW)


def test_changes_since_zero_returns_the_whole_log_oldest_first(engine: Engine) -> None:
    rows = [sample("11000001", 0), sample("11000002", 0)]
    publish(engine, WaterQualitySample, rows, run_id="run-1")
    publish(engine, WaterQualitySample, [dict(rows[1], ph=8.4)], run_id="run-2", now=LATER)

    entries = changes_since(engine, SAMPLES, 0)

    assert entries == [
        ChangeEntry(SAMPLES, 1, ["11000001", "2026-03-01T00:00:00Z"], "insert", SAMPLES_VERSION, "run-1", NOW),
        ChangeEntry(SAMPLES, 2, ["11000002", "2026-03-01T00:00:00Z"], "insert", SAMPLES_VERSION, "run-1", NOW),
        ChangeEntry(SAMPLES, 3, ["11000002", "2026-03-01T00:00:00Z"], "update", SAMPLES_VERSION, "run-2", LATER),
    ]
    assert entries[0].changed_at.utcoffset() == timedelta(0)


def test_changes_since_resumes_after_the_last_seen_sequence_and_honours_the_limit(engine: Engine) -> None:
    rows = [sample("11000001", hour) for hour in range(10)]
    publish(engine, WaterQualitySample, rows, run_id="run-1")

    page = changes_since(engine, SAMPLES, 3, limit=4)
    rest = changes_since(engine, SAMPLES, page[-1].seq)

    assert [entry.seq for entry in page] == [4, 5, 6, 7]
    assert [entry.seq for entry in rest] == [8, 9, 10]
    assert [entry.key[1] for entry in page + rest] == [f"2026-03-01T{hour:02d}:00:00Z" for hour in range(3, 10)]
    assert changes_since(engine, SAMPLES, 10) == []


def test_changes_of_one_dataset_never_include_another(engine: Engine) -> None:
    publish(engine, WaterQualityStation, [station("11000001")], run_id="run-1")
    publish(engine, WaterQualitySample, [sample("11000001", 0)], run_id="run-1")

    assert [(e.dataset, e.key) for e in changes_since(engine, STATIONS, 0)] == [(STATIONS, ["11000001"])]


def test_changes_of_an_unknown_dataset_raise_a_clear_error(engine: Engine) -> None:
    publish(engine, WaterQualityStation, [station("11000001")], run_id="run-1")

    with pytest.raises(UnknownDatasetError, match=r"'water_quality.sample'.*published: water_quality.stations"):
        changes_since(engine, "water_quality.sample", 0)


def test_a_limit_below_one_is_refused(engine: Engine) -> None:
    publish(engine, WaterQualityStation, [station("11000001")], run_id="run-1")

    with pytest.raises(ValueError, match="limit"):
        changes_since(engine, STATIONS, 0, limit=0)


def test_quarantined_counts_count_each_reason_of_each_record(engine: Engine) -> None:
    hold(
        engine,
        SAMPLES,
        [
            (["ph_out_of_range"], {"n": 1}),
            (["ph_out_of_range", "unknown_station"], {"n": 2}),
            (["station_code_pattern"], {"n": 3}),
        ],
    )
    hold(engine, STATIONS, [(["latitude_out_of_range"], {"n": 1})])
    hold(engine, SAMPLES, [(["ph_out_of_range"], {"n": 1})])  # the same record again: not counted twice

    assert quarantined_counts(engine, SAMPLES) == {
        "ph_out_of_range": 2,
        "station_code_pattern": 1,
        "unknown_station": 1,
    }


def test_quarantined_counts_of_a_dataset_without_quarantine_are_empty(engine: Engine) -> None:
    assert quarantined_counts(engine, "water_quality.nothing") == {}
