"""A ``serve api`` worker's warm-up: its pooled connections are open and have each read every published feed."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from contracts.water_quality import WaterQualitySample, WaterQualityStation
from exchange.api.warm import warm_up
from exchange.db import make_engine
from exchange.tables import dataset_table, ensure_schema
from tests.exchange.rows import NOW, publish, sample, station


def test_warm_up_opens_the_pool_and_reads_every_feed(pg_schema_url: str) -> None:
    engine = make_engine(pg_schema_url, pool_size=3, max_overflow=0)
    try:
        ensure_schema(engine)
        publish(engine, WaterQualityStation, [station("44010001"), station("44010002")], "run-1")
        publish(engine, WaterQualitySample, [sample("44010001", 1)], "run-2")
        reads: Counter[tuple[int, str]] = Counter()

        @event.listens_for(engine, "before_cursor_execute")
        def count(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            for contract in (WaterQualityStation, WaterQualitySample):
                name = dataset_table(contract).name
                reads[(id(conn.connection.dbapi_connection), name)] += name in statement and "change_log" in statement

        warm_up(engine, 3, NOW - timedelta(days=30))

        assert engine.pool.checkedin() == 3  # type: ignore[attr-defined]
        assert len({connection for connection, _ in reads}) == 3
        assert set(reads.values()) == {1}  # each connection read each feed once
    finally:
        engine.dispose()
