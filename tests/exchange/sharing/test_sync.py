"""The shared Delta table follows the change log: one commit per sync, change data feed rows as Delta readers
expect them, the synced sequence kept in the table itself, and a rerun that writes nothing.

Expected rows come from what the tests publish, never from the table read back through our own code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from sqlalchemy import Engine

from contracts.water_quality import WaterQualityStation
from exchange.errors import SharedTableError
from exchange.objects import LocalObjectStore
from exchange.publish import publish_frame
from exchange.sharing.delta import open_shared_table, sync_dataset, synced_seq
from exchange.sharing.settings import SharingSettings
from exchange.tables import datasets
from tests.exchange.rows import LATER, NOW, station, typed_frame

STATIONS = WaterQualityStation.meta.key
WALL = datetime.now(UTC)  # maintenance compares with Delta's own commit times, which are wall-clock


def publish(engine: Engine, rows: list[dict[str, object]], run_id: str, *, full_refresh: bool = False) -> None:
    with engine.begin() as conn:
        publish_frame(
            conn,
            WaterQualityStation,
            typed_frame(WaterQualityStation, rows),
            run_id=run_id,
            now=NOW,
            full_refresh=full_refresh,
        )


def rows_of(table: DeltaTable) -> dict[str, dict[str, object]]:
    return {row["station_code"]: row for row in table.to_pyarrow_table().to_pylist()}


def cdf(table: DeltaTable, version: int) -> set[tuple[str, str, str]]:
    changes = pa.table(table.load_cdf(starting_version=version, ending_version=version)).to_pylist()
    return {(row["station_code"], row["_change_type"], row["name"]) for row in changes}


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def test_syncs_become_inserts_updates_and_deletes_in_the_change_data_feed(
    engine: Engine, store: LocalObjectStore
) -> None:
    settings = SharingSettings()
    first = [station(code, name=f"站点{code[-1]}") for code in ("44010001", "44010002", "44010003")]
    publish(engine, first, "run-1")
    result = sync_dataset(engine, store, WaterQualityStation, settings, now=WALL)
    assert (result.version, result.seq, result.upserted, result.deleted) == (1, 3, 3, 0)
    table = open_shared_table(store, STATIONS)
    assert table is not None
    assert cdf(table, 1) == {(row["station_code"], "insert", row["name"]) for row in first}

    # Two publishes before the next sync: a rename, then a full refresh that drops 44010002 and adds 44010004.
    renamed = {**first[0], "name": "改名", "updated_at": LATER}
    publish(engine, [renamed, first[1], first[2]], "run-2")
    added = station("44010004", name="站点4")
    publish(engine, [renamed, first[2], added], "run-3", full_refresh=True)
    result = sync_dataset(engine, store, WaterQualityStation, settings, now=WALL)
    assert (result.version, result.upserted, result.deleted) == (2, 2, 1)  # one commit for both publishes
    table = open_shared_table(store, STATIONS)
    assert table is not None
    assert cdf(table, 2) == {
        ("44010001", "update_preimage", "站点1"),
        ("44010001", "update_postimage", "改名"),
        ("44010002", "delete", "站点2"),
        ("44010004", "insert", "站点4"),
    }
    assert set(rows_of(table)) == {"44010001", "44010003", "44010004"}
    assert rows_of(table)["44010001"]["updated_at"] == LATER
    with engine.connect() as conn:
        last_seq = conn.execute(datasets.select().where(datasets.c.key == STATIONS)).mappings().one()["last_seq"]
    assert synced_seq(table) == last_seq == result.seq


def test_a_rerun_writes_nothing_and_maintenance_waits_for_its_interval(engine: Engine, store: LocalObjectStore) -> None:
    settings = SharingSettings(maintenance_interval_hours=24)
    publish(engine, [station("44010001")], "run-1")
    first = sync_dataset(engine, store, WaterQualityStation, settings, now=WALL)
    again = sync_dataset(engine, store, WaterQualityStation, settings, now=WALL)
    table = open_shared_table(store, STATIONS)
    assert table is not None
    operations = [commit["operation"] for commit in table.history()]
    assert first.maintained
    assert not again.maintained
    assert (again.upserted, again.deleted) == (0, 0)
    assert operations.count("WRITE") == 1  # the rerun committed no data
    later = sync_dataset(engine, store, WaterQualityStation, settings, now=WALL + timedelta(hours=25))
    assert later.maintained


def test_a_key_deleted_and_published_again_between_syncs_stays(engine: Engine, store: LocalObjectStore) -> None:
    settings = SharingSettings()
    publish(engine, [station("44010001"), station("44010002")], "run-1")
    sync_dataset(engine, store, WaterQualityStation, settings, now=WALL)
    publish(engine, [station("44010001")], "run-2", full_refresh=True)
    publish(engine, [station("44010001"), {**station("44010002", name="回来了"), "updated_at": LATER}], "run-3")
    sync_dataset(engine, store, WaterQualityStation, settings, now=WALL)
    table = open_shared_table(store, STATIONS)
    assert table is not None
    assert rows_of(table)["44010002"]["name"] == "回来了"


def test_a_table_ahead_of_a_rebuilt_hub_is_refused(engine: Engine, store: LocalObjectStore) -> None:
    publish(engine, [station("44010001"), station("44010002")], "run-1")
    sync_dataset(engine, store, WaterQualityStation, SharingSettings(), now=WALL)
    with engine.begin() as conn:
        conn.execute(datasets.update().where(datasets.c.key == STATIONS).values(last_seq=1))
    with pytest.raises(SharedTableError, match=r"past the hub's last seq 1.*waterhub sharing sync"):
        sync_dataset(engine, store, WaterQualityStation, SharingSettings(), now=WALL)


def test_vacuum_retention_must_outlive_urls_and_the_change_window() -> None:
    with pytest.raises(ValueError, match="VACUUM_RETENTION_HOURS"):
        SharingSettings(change_window_days=7, vacuum_retention_hours=7 * 24)
    assert SharingSettings(change_window_days=7, vacuum_retention_hours=7 * 24 + 1).vacuum_retention_hours == 169
