"""Backup and restore on real PostgreSQL (pg_dump/pg_restore of the hub's schema) and a local object store: the
hub is lost after more changes than the backup holds, restored into an empty schema, and its change log continues
from the backup's last sequence with event ids that were never sent before."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from contracts.water_quality import WaterQualitySample
from exchange.backup import copy_objects, dump_database, renew_epochs, restore_database
from exchange.consumer import changes_since
from exchange.db import make_engine
from exchange.errors import StoreConfigError
from exchange.objects import LocalObjectStore
from exchange.snapshots import write_snapshot
from exchange.tables import ensure_schema, outbox
from tests.exchange.rows import NOW, publish, sample

SAMPLES = WaterQualitySample.meta.key


def _event_ids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(outbox.c.event_id)).scalars())


def test_a_restored_hub_continues_the_change_log_from_the_backup_with_new_event_ids(
    pg_schema_url: str, tmp_path: Path
) -> None:
    engine = make_engine(pg_schema_url)
    ensure_schema(engine)
    store = LocalObjectStore(tmp_path / "objects")
    publish(engine, WaterQualitySample, [sample("11000001", hour) for hour in range(3)], run_id="run-1")  # seq 1-3
    snapshot = write_snapshot(engine, store, WaterQualitySample, now=NOW)
    dump_database(pg_schema_url, tmp_path / "backup" / "hub.pgdump")
    copied = copy_objects(store, LocalObjectStore(tmp_path / "backup" / "objects"))
    publish(engine, WaterQualitySample, [sample("11000002", hour) for hour in range(2)], run_id="run-2")  # seq 4-5
    seen_by_consumers = _event_ids(engine)
    schema = engine.url.query["options"]
    assert isinstance(schema, str)
    with engine.begin() as conn:  # the database is lost
        conn.execute(text(f'drop schema "{schema.removeprefix("-csearch_path=")}" cascade'))
    engine.dispose()
    restored_store = LocalObjectStore(tmp_path / "restored-objects")

    restored = make_engine(pg_schema_url)
    restore_database(pg_schema_url, tmp_path / "backup" / "hub.pgdump", restored)
    copy_objects(LocalObjectStore(tmp_path / "backup" / "objects"), restored_store)
    assert renew_epochs(restored) == 1
    ensure_schema(restored)
    publish(restored, WaterQualitySample, [sample("11000003", hour) for hour in range(2)], run_id="run-3")

    assert copied >= 2  # the snapshot and its manifest
    assert restored_store.get(snapshot.object_key) == store.get(snapshot.object_key)
    feed = changes_since(restored, SAMPLES, 3, limit=100)
    assert [(entry.seq, entry.key[0]) for entry in feed] == [(4, "11000003"), (5, "11000003")]
    new_ids = _event_ids(restored) - seen_by_consumers
    assert len(new_ids) == 1  # run-3's event: seq 4-5 again, but an id no consumer has seen
    restored.dispose()


def test_a_restore_refuses_a_database_that_holds_a_hub(pg_engine: Engine, pg_schema_url: str, tmp_path: Path) -> None:
    ensure_schema(pg_engine)
    dump_database(pg_schema_url, tmp_path / "hub.pgdump")
    with pytest.raises(StoreConfigError, match="already holds hub tables"):
        restore_database(pg_schema_url, tmp_path / "hub.pgdump", pg_engine)
