"""Times that cannot be true, end to end on real PostgreSQL: quarantined as ``<field>_implausible``, never published,
never holding the watermark. The records travel from a test feed over a real socket (``tests.feed``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from connectors.water_quality.settings import WaterQualitySourceSettings
from contracts.water_quality import WaterQualitySample
from exchange.state import read_watermark
from exchange.tables import dataset_table, quarantine
from tests.feed import Feed
from waterhub.pipeline import Pipeline
from waterhub.settings import HttpClientSettings, Settings
from waterhub.sources import build_source

STATION = {
    "station_code": "44010001",
    "name": "猎德",
    "river": "珠江",
    "district": "天河区",
    "water_body_type": "river",
    "longitude": 113.33,
    "latitude": 23.12,
    "updated_at": "2026-11-01 08:00:00",
}


def _sample(sampled_at: str, updated_at: str) -> dict[str, object]:
    """A sample as the bureau sends it, in Beijing time."""
    return {
        "station_code": "44010001",
        "sampled_at": sampled_at,
        "updated_at": updated_at,
        "factors": {"w01001": {"value": 7.4, "flag": "N", "unit": "dimensionless"}},
    }


@pytest.fixture
def feed() -> Iterator[tuple[Feed, str]]:
    served = Feed(build_source("water_quality", Settings()).streams)
    served.put("stations", [STATION])
    with served.serve() as base_url:
        yield served, base_url


@pytest.fixture
def pipeline(feed: tuple[Feed, str], pg_schema_url: str, tmp_path: Path) -> Iterator[Pipeline]:
    hub = Settings(
        data_dir=tmp_path,
        database_url=pg_schema_url,
        water_quality=WaterQualitySourceSettings(base_url=feed[1], api_key="test-key", page_size=50),
        http=HttpClientSettings(max_attempts=1),
    )
    pipe = Pipeline(hub, "water_quality")
    yield pipe
    pipe.engine.dispose()


def _run(pipeline: Pipeline, run_id: str, interval_end: datetime) -> str:
    """A scheduled run: it reads its pages a minute after its interval ends."""
    batch_id = pipeline.extract(run_id=run_id, interval_end=interval_end, now=interval_end + timedelta(minutes=1))
    pipeline.validate(batch_id)
    pipeline.publish(batch_id)
    return batch_id


def _quarantined(pipeline: Pipeline) -> dict[str, list[str]]:
    """Each quarantined sample's ``sampled_at`` as sent, with its reasons."""
    with pipeline.engine.connect() as conn:
        rows = conn.execute(
            select(quarantine.c.payload, quarantine.c.reasons).where(quarantine.c.dataset == "water_quality.samples")
        )
        return {json.loads(payload)["sampled_at"]: json.loads(reasons) for payload, reasons in rows}


def test_a_sample_stamped_in_year_1_is_implausible_and_what_is_published_reads_back(
    feed: tuple[Feed, str], pipeline: Pipeline
) -> None:
    """Published, it became 1 BC in PostgreSQL, which neither SQLAlchemy nor Parquet's ``as_py()`` can read back."""
    feed[0].put(
        "samples",
        [_sample("2026-11-20 08:00:00", "2026-11-20 09:10:00"), _sample("0001-01-01 00:00:00", "2026-11-20 09:10:00")],
    )
    batch_id = _run(pipeline, "run-1", datetime(2026, 11, 20, 2, tzinfo=UTC))
    snapshot = pipeline.snapshot(batch_id)

    assert _quarantined(pipeline) == {"0001-01-01 00:00:00": ["sampled_at_implausible"]}
    table = dataset_table(WaterQualitySample)
    with pipeline.engine.connect() as conn:
        published = conn.execute(select(table.c.station_code, table.c.sampled_at)).all()
    assert [tuple(row) for row in published] == [("44010001", datetime(2026, 11, 20, 0, tzinfo=UTC))]
    stored = pq.read_table(Path(snapshot["samples"].removeprefix("file://"))).to_pylist()
    assert [row["sampled_at"] for row in stored] == [datetime(2026, 11, 20, 0, tzinfo=UTC)]


def test_a_sample_stamped_2036_is_implausible_and_the_watermark_still_advances_run_after_run(
    feed: tuple[Feed, str], pipeline: Pipeline
) -> None:
    """Published, a station clock gone wrong held the watermark on every run, so each run read a growing window."""
    samples = [
        _sample("2026-11-20 08:00:00", "2026-11-20 09:10:00"),
        _sample("2026-11-20 09:00:00", "2026-11-20 10:10:00"),
    ]
    clock_gone_wrong = _sample("2036-01-01 08:00:00", "2036-01-01 09:05:00")
    feed[0].put("samples", [*samples, clock_gone_wrong])

    _run(pipeline, "run-1", datetime(2026, 11, 20, 3, tzinfo=UTC))
    with pipeline.engine.connect() as conn:
        first = read_watermark(conn, "water_quality", "samples")
    feed[0].put("samples", [*samples, _sample("2026-11-20 10:00:00", "2026-11-20 11:10:00"), clock_gone_wrong])
    _run(pipeline, "run-2", datetime(2026, 11, 20, 4, tzinfo=UTC))
    with pipeline.engine.connect() as conn:
        second = read_watermark(conn, "water_quality", "samples")

    assert _quarantined(pipeline) == {"2036-01-01 08:00:00": ["sampled_at_implausible", "updated_at_implausible"]}
    assert first == datetime(2026, 11, 20, 2, 10, tzinfo=UTC)  # 10:10 Beijing time: the last plausible update
    assert second == datetime(2026, 11, 20, 3, 10, tzinfo=UTC)


def test_a_clock_a_few_minutes_fast_is_within_the_tolerance(feed: tuple[Feed, str], pipeline: Pipeline) -> None:
    feed[0].put("samples", [_sample("2026-11-20 10:00:00", "2026-11-20 11:05:00")])  # 5 minutes past the interval

    _run(pipeline, "run-1", datetime(2026, 11, 20, 3, tzinfo=UTC))

    assert _quarantined(pipeline) == {}
    with pipeline.engine.connect() as conn:
        assert conn.execute(select(dataset_table(WaterQualitySample).c.sampled_at)).scalars().all() == [
            datetime(2026, 11, 20, 2, tzinfo=UTC)
        ]
