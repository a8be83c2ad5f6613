"""Parquet snapshots on real PostgreSQL (COPY → Arrow path) and SQLite (chunked fetch path), in a real local folder
and a real S3-compatible store.

Expectations come from the rows each test publishes: the rows sorted here with ``sorted``, sequence numbers counted
in frame order (publish numbers changes in frame order), object keys and hashes computed here with ``hashlib``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, func, select

import exchange.snapshots as snapshots_module
from contracts import Contract
from contracts.water_quality import WaterQualitySample, WaterQualityStation
from exchange.errors import CorruptSnapshotError, UnknownDatasetError
from exchange.objects import LocalObjectStore, ObjectStore
from exchange.publish import publish_frame
from exchange.snapshots import SnapshotResult, latest_snapshot, read_snapshot, write_snapshot
from exchange.tables import dataset_table, datasets, ensure_schema, snapshots
from tests.exchange.conftest import Stores
from tests.exchange.rows import sample, station, typed_frame

SAMPLES_VERSION = WaterQualitySample.meta.version
SAMPLES_MAJOR = WaterQualitySample.meta.major

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
SAMPLES = "water_quality.samples"
ARROW_TYPE_NAMES = {
    "string": "string",
    "number": "double",
    "integer": "int64",
    "boolean": "bool",
    "datetime": "timestamp[us, tz=UTC]",
}


@pytest.fixture
def hub(sqlite_engine: Engine) -> Engine:
    """For tests about the stored objects rather than the read path: one backend is enough."""
    ensure_schema(sqlite_engine)
    return sqlite_engine


@pytest.fixture
def store(stores: Stores) -> ObjectStore:
    return stores.new("objects")


@pytest.fixture
def local_store(tmp_path: Path) -> LocalObjectStore:
    """For tests that look at the files themselves (inodes, times)."""
    root = tmp_path / "objects"
    root.mkdir()  # LocalObjectStore.list("") on a missing root would walk the folder above it
    return LocalObjectStore(root)


def publish(
    engine: Engine, rows: Sequence[Mapping[str, object]], contract: type[Contract] = WaterQualitySample
) -> None:
    with engine.begin() as conn:
        publish_frame(conn, contract, typed_frame(contract, rows), run_id="run", now=NOW)


def expected_rows(
    rows: Sequence[Mapping[str, object]], seqs: Sequence[int], contract: type[Contract] = WaterQualitySample
) -> list[dict[str, object]]:
    """Every contract field (None where a row has none) plus ``_seq``, sorted by primary key."""
    full = [
        {**{spec.name: row.get(spec.name) for spec in contract.field_specs()}, "_seq": seq}
        for row, seq in zip(rows, seqs, strict=True)
    ]
    return sorted(full, key=lambda row: tuple(row[name] for name in contract.meta.primary_key))


def parquet_key(seq: int, dataset: str = SAMPLES) -> str:
    return f"snapshots/{dataset}/v{SAMPLES_MAJOR}/{seq:012d}.parquet"


def manifest_of(store: ObjectStore, seq: int) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(store.get(f"snapshots/{SAMPLES}/v{SAMPLES_MAJOR}/{seq:012d}.manifest.json"))
    return manifest


def dataset_row(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(datasets).where(datasets.c.key == SAMPLES)).mappings().one())


def snapshot_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(snapshots).order_by(snapshots.c.seq)).mappings()]


def object_states(store: LocalObjectStore) -> dict[str, tuple[int, int]]:
    """Inode and modification time per object: a rewrite (temporary file renamed into place) changes both."""
    states = {}
    for key in store.list(""):
        stat = os.stat(store.root / key)
        states[key] = (stat.st_ino, stat.st_mtime_ns)
    return states


MIXED_ROWS = [  # deliberately not in key order, with gaps, corrections and sub-second times
    sample("11000002", 1, turbidity=12.5, turbidity_flag="M"),
    sample("11000001", 3, ph=None, ph_flag=None),
    sample("11000002", 0, conductivity=1234.5678901234, conductivity_flag="T", dissolved_oxygen=0.1 + 0.2),
    sample("11000001", 0, sampled_at=datetime(2026, 3, 1, 0, 0, 0, 250_000, tzinfo=UTC), total_phosphorus=0.0425),
    sample("11000003", 2, water_temperature=-0.0, ammonia_nitrogen=None, ammonia_nitrogen_flag=""),
]


# --- content ------------------------------------------------------------------------------------------------


def test_the_snapshot_holds_exactly_the_published_rows_sorted_by_primary_key(
    engine: Engine, store: ObjectStore
) -> None:
    publish(engine, MIXED_ROWS)

    result = write_snapshot(engine, store, WaterQualitySample, now=NOW)
    table = read_snapshot(store, result)

    assert table.to_pylist() == expected_rows(MIXED_ROWS, seqs=[1, 2, 3, 4, 5])
    assert [(row["station_code"], row["sampled_at"]) for row in table.to_pylist()] == sorted(
        (row["station_code"], row["sampled_at"]) for row in MIXED_ROWS
    )
    assert (result.seq, result.row_count, result.created, result.contract_version) == (
        5,
        5,
        True,
        SAMPLES_VERSION,
    )
    assert math.copysign(1.0, table.column("water_temperature").to_pylist()[-1]) == 1.0  # -0.0 is stored as 0.0


def test_the_schema_follows_the_contract_with_utc_microsecond_times(engine: Engine, store: ObjectStore) -> None:
    publish(engine, MIXED_ROWS[:2])

    table = read_snapshot(store, write_snapshot(engine, store, WaterQualitySample, now=NOW))

    specs = WaterQualitySample.field_specs()
    assert table.schema.names == [spec.name for spec in specs] + ["_seq"]
    assert [str(field.type) for field in table.schema] == [ARROW_TYPE_NAMES[spec.type] for spec in specs] + ["int64"]
    for name in ("sampled_at", "updated_at"):
        assert table.schema.field(name).type == pa.timestamp("us", tz="UTC")
        assert all(value.utcoffset() == timedelta(0) for value in table.column(name).to_pylist())
    assert not table.schema.field("station_code").nullable
    assert table.schema.field("ph").nullable


def test_text_with_quotes_commas_newlines_and_empty_strings_survives(engine: Engine, store: ObjectStore) -> None:
    names = ['小关 "north", bridge', "line one\nline two\r\n", "\ttab and trailing space ", "back\\slash", ""]
    stations = [station(f"1100000{index}", name=name) for index, name in enumerate(names)]
    publish(engine, stations, WaterQualityStation)

    table = read_snapshot(store, write_snapshot(engine, store, WaterQualityStation, now=NOW))

    assert table.to_pylist() == expected_rows(stations, seqs=[1, 2, 3, 4, 5], contract=WaterQualityStation)


def test_an_empty_string_and_a_missing_value_stay_apart(engine: Engine, store: ObjectStore) -> None:
    rows = [sample("11000001", 0, ph_flag=""), sample("11000001", 1, ph=None, ph_flag=None)]
    publish(engine, rows)

    table = read_snapshot(store, write_snapshot(engine, store, WaterQualitySample, now=NOW))

    assert table.column("ph_flag").to_pylist() == ["", None]
    assert table.column("ph").to_pylist() == [rows[0]["ph"], None]


def test_rows_spanning_many_fetch_chunks_arrive_whole(
    engine: Engine, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshots_module, "_CHUNK_ROWS", 3)
    rows = [sample(f"1100000{index % 4}", index, ph=6.0 + index / 10) for index in range(17)]
    publish(engine, rows)

    table = read_snapshot(store, write_snapshot(engine, store, WaterQualitySample, now=NOW))

    assert table.to_pylist() == expected_rows(rows, seqs=range(1, 18))


def test_postgres_and_sqlite_write_byte_identical_snapshots(
    pg_engine: Engine, sqlite_engine: Engine, tmp_path: Path
) -> None:
    """The two read paths (COPY → CSV → Arrow, and chunked fetches) must yield the very same file."""
    checksums = []
    for name, engine in (("pg", pg_engine), ("sqlite", sqlite_engine)):
        ensure_schema(engine)
        publish(engine, MIXED_ROWS)
        checksums.append(
            write_snapshot(engine, LocalObjectStore(tmp_path / name), WaterQualitySample, now=NOW).checksum
        )

    assert checksums[0] == checksums[1]


def test_a_dataset_published_empty_gets_an_empty_snapshot_at_seq_zero(engine: Engine, store: ObjectStore) -> None:
    publish(engine, [])

    result = write_snapshot(engine, store, WaterQualitySample, now=NOW)

    assert (result.seq, result.row_count) == (0, 0)
    assert result.uri == store.uri(parquet_key(0))
    assert read_snapshot(store, result).num_rows == 0


# --- manifest and row -------------------------------------------------------------------------------------------


def test_the_manifest_records_the_bytes_sha256_and_the_datasets_seq_and_count(
    engine: Engine, store: ObjectStore
) -> None:
    publish(engine, MIXED_ROWS)

    result = write_snapshot(engine, store, WaterQualitySample, now=NOW)

    summary = dataset_row(engine)
    manifest = manifest_of(store, summary["last_seq"])
    body = store.get(parquet_key(summary["last_seq"]))
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert result.checksum == "sha256:" + hashlib.sha256(body).hexdigest()
    assert (manifest["seq"], manifest["row_count"]) == (summary["last_seq"], summary["row_count"]) == (5, 5)
    assert manifest["dataset"] == SAMPLES
    assert manifest["contract_version"] == SAMPLES_VERSION
    assert manifest["dataschema"] == f"urn:waterhub:contract:water_quality.samples:{SAMPLES_VERSION}"
    assert manifest["created_at"] == "2026-03-02T12:00:00Z"
    assert manifest["objects"] == {
        "parquet": f"snapshots/water_quality.samples/v{SAMPLES_MAJOR}/000000000005.parquet",
        "manifest": f"snapshots/water_quality.samples/v{SAMPLES_MAJOR}/000000000005.manifest.json",
    }
    specs = WaterQualitySample.field_specs()
    assert manifest["schema"] == [{"name": s.name, "type": ARROW_TYPE_NAMES[s.type]} for s in specs] + [
        {"name": "_seq", "type": "int64"}
    ]
    assert (result.uri, result.manifest_uri) == (store.uri(parquet_key(5)), store.uri(manifest["objects"]["manifest"]))


def test_the_snapshots_row_points_at_the_written_objects(engine: Engine, store: ObjectStore) -> None:
    publish(engine, MIXED_ROWS)

    result = write_snapshot(engine, store, WaterQualitySample, now=NOW)

    (row,) = snapshot_rows(engine)
    assert row == {
        "dataset": SAMPLES,
        "seq": 5,
        "contract_version": SAMPLES_VERSION,
        "object_key": parquet_key(5),
        "uri": store.uri(parquet_key(5)),
        "manifest_uri": store.uri(f"snapshots/{SAMPLES}/v{SAMPLES_MAJOR}/000000000005.manifest.json"),
        "row_count": 5,
        "checksum": "sha256:" + hashlib.sha256(store.get(parquet_key(5))).hexdigest(),
        "created_at": NOW,
    }
    assert latest_snapshot(engine, SAMPLES) == dataclasses.replace(result, created=False)


def test_the_parquet_file_is_zstd_compressed_in_every_column_chunk(hub: Engine, store: ObjectStore) -> None:
    publish(hub, MIXED_ROWS)
    write_snapshot(hub, store, WaterQualitySample, now=NOW)

    metadata = pq.ParquetFile(io.BytesIO(store.get(parquet_key(5)))).metadata

    chunks = [
        metadata.row_group(group).column(column)
        for group in range(metadata.num_row_groups)
        for column in range(metadata.num_columns)
    ]
    assert metadata.num_columns == len(WaterQualitySample.field_specs()) + 1
    assert {chunk.compression for chunk in chunks} == {"ZSTD"}


# --- keyed by sequence ------------------------------------------------------------------------------------------


def test_a_second_call_without_a_new_publish_writes_nothing(engine: Engine, local_store: LocalObjectStore) -> None:
    store = local_store
    publish(engine, MIXED_ROWS)
    first = write_snapshot(engine, store, WaterQualitySample, now=NOW)
    objects = object_states(store)
    publish(engine, MIXED_ROWS)  # the same batch again: publish changes nothing, so the sequence stays

    second = write_snapshot(engine, store, WaterQualitySample, now=LATER)

    assert second == dataclasses.replace(first, created=False)
    assert second.created_at == NOW
    assert object_states(store) == objects
    assert len(objects) == 2
    assert len(snapshot_rows(engine)) == 1


def test_a_publish_that_changes_rows_gets_a_new_snapshot_at_its_seq(engine: Engine, store: ObjectStore) -> None:
    rows = [sample("11000001", hour) for hour in range(3)]
    publish(engine, rows)
    first = write_snapshot(engine, store, WaterQualitySample, now=NOW)
    corrected = [rows[0], dict(rows[1], ammonia_nitrogen=0.75), rows[2], sample("11000000", 0)]
    publish(engine, corrected)  # seq 4 for the corrected hour, seq 5 for the new station (frame order)

    second = write_snapshot(engine, store, WaterQualitySample, now=LATER)

    assert (second.seq, second.row_count, second.created, second.created_at) == (5, 4, True, LATER)
    assert second.uri == store.uri(parquet_key(5))
    assert latest_snapshot(engine, SAMPLES) == dataclasses.replace(second, created=False)
    assert read_snapshot(store, second).to_pylist() == expected_rows(corrected, seqs=[1, 4, 3, 5])
    assert read_snapshot(store, first).to_pylist() == expected_rows(rows, seqs=[1, 2, 3])  # the old one stays valid
    assert [row["seq"] for row in snapshot_rows(engine)] == [3, 5]


def test_a_publish_committed_during_the_read_is_not_seen_by_it(engine: Engine) -> None:
    """The read that feeds a snapshot sees one state: last_seq and the rows cannot come from two publishes."""
    rows = [sample("11000001", hour) for hour in range(4)]
    publish(engine, rows[:2])
    table = dataset_table(WaterQualitySample)
    last_seq = select(datasets.c.last_seq).where(datasets.c.key == SAMPLES)

    with snapshots_module.consistent_read(engine) as conn:
        before = conn.execute(last_seq).scalar_one()
        publish(engine, rows)  # another connection commits seq 3 and 4 meanwhile
        after = conn.execute(last_seq).scalar_one()
        count = conn.execute(select(func.count()).select_from(table)).scalar_one()

    assert (before, after, count) == (2, 2, 2)
    assert dataset_row(engine)["last_seq"] == 4


def test_latest_snapshot_is_none_before_the_first_snapshot(engine: Engine) -> None:
    publish(engine, MIXED_ROWS)

    assert latest_snapshot(engine, SAMPLES) is None
    assert latest_snapshot(engine, "water_quality.unknown") is None


# --- refusals ---------------------------------------------------------------------------------------------------


def tampered_copies(body: bytes) -> dict[str, bytes]:
    """Three ways a stored file can differ: a flipped bit, a cut-off tail, a valid Parquet file with a row gone."""
    flipped = bytearray(body)
    flipped[len(body) // 2] ^= 0x01
    table = pq.read_table(io.BytesIO(body))
    shorter = io.BytesIO()
    pq.write_table(table.slice(1), shorter, compression="zstd")
    return {"flipped bit": bytes(flipped), "truncated": body[: len(body) - 100], "row removed": shorter.getvalue()}


@pytest.mark.parametrize("damage", ["flipped bit", "truncated", "row removed"])
def test_a_tampered_parquet_object_is_refused(hub: Engine, store: ObjectStore, damage: str) -> None:
    publish(hub, MIXED_ROWS)
    result = write_snapshot(hub, store, WaterQualitySample, now=NOW)
    store.put(parquet_key(5), tampered_copies(store.get(parquet_key(5)))[damage])

    with pytest.raises(CorruptSnapshotError, match=r"water_quality\.samples@5 .*: the Parquet bytes hash to sha256:"):
        read_snapshot(store, result)


def test_a_manifest_that_disagrees_with_the_row_is_refused(hub: Engine, store: ObjectStore) -> None:
    publish(hub, MIXED_ROWS)
    result = write_snapshot(hub, store, WaterQualitySample, now=NOW)
    manifest = manifest_of(store, 5) | {"sha256": "0" * 64}
    store.put(f"snapshots/{SAMPLES}/v{SAMPLES_MAJOR}/000000000005.manifest.json", json.dumps(manifest).encode())

    with pytest.raises(CorruptSnapshotError, match="manifest says"):
        read_snapshot(store, result)


def test_a_missing_parquet_object_is_refused(hub: Engine, stores: Stores) -> None:
    store = stores.new("objects")
    publish(hub, MIXED_ROWS)
    result = write_snapshot(hub, store, WaterQualitySample, now=NOW)
    stores.remove(store, parquet_key(5))

    with pytest.raises(CorruptSnapshotError, match="missing"):
        read_snapshot(store, result)


def test_a_snapshot_from_another_store_is_refused(hub: Engine, stores: Stores) -> None:
    store = stores.new("objects")
    publish(hub, MIXED_ROWS)
    result = write_snapshot(hub, store, WaterQualitySample, now=NOW)

    with pytest.raises(ValueError, match="not an object of this store"):
        read_snapshot(stores.new("elsewhere"), result)


def test_an_unknown_dataset_raises_and_writes_nothing(engine: Engine, store: ObjectStore) -> None:
    publish(engine, [station("11000001")], WaterQualityStation)

    with pytest.raises(
        UnknownDatasetError, match=r"'water_quality\.samples'.*never published.*water_quality\.stations"
    ):
        write_snapshot(engine, store, WaterQualitySample, now=NOW)
    assert list(store.list("")) == []
    assert snapshot_rows(engine) == []


def test_a_naive_now_is_refused(hub: Engine, store: ObjectStore) -> None:
    publish(hub, MIXED_ROWS)

    with pytest.raises(ValueError, match="naive"):
        write_snapshot(hub, store, WaterQualitySample, now=datetime(2026, 3, 2))  # noqa: DTZ001 - the case under test
    with hub.connect() as conn:
        assert conn.execute(select(func.count()).select_from(snapshots)).scalar_one() == 0


# --- module surface ---------------------------------------------------------------------------------------------


def test_importing_the_module_loads_neither_pyarrow_nor_pandas() -> None:
    script = "import sys, exchange.snapshots; print(sorted({'pyarrow', 'pandas'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)  # noqa: S603

    assert done.stdout.strip() == "[]"


def test_sha256_is_the_checksum_without_its_prefix() -> None:
    result = SnapshotResult(SAMPLES, "1.0.0", 1, 1, "a", "file:///a", "file:///b", "sha256:" + "ab" * 32, NOW, True)

    assert result.sha256 == "ab" * 32
