"""Schema changes on real PostgreSQL and SQLite: Alembic for the hub's own tables, contract tables reconciled.

The contracts here are the test's own (``test_schema.gauges``), so a new minor or major can be made up without
touching the registered ones; expected columns and values are the ones the test writes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import Field
from sqlalchemy import Engine, MetaData, event, inspect, select, text

from contracts import Classification, Contract, ContractMeta, IncompatibleChangeError, all_contracts, registry
from exchange.publish import publish_frame
from exchange.schema import BASELINE_REVISION, alembic_config
from exchange.tables import dataset_table, datasets, ensure_schema, metadata
from tests.exchange.rows import NOW, typed_frame

T = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BOOKKEEPING = {
    "datasets",
    "change_log",
    "outbox",
    "quarantine",
    "withheld",
    "validation_runs",
    "stream_state",
    "derived_state",
    "batches",
    "schema_fingerprint",
    "snapshots",
    "devices",
    "device_packets",
    "departments",
    "tokens",
    "grants",
    "read_audit",
    "subscriptions",
    "deliveries",
    "province_reports",
}


def gauge_meta(version: str) -> ContractMeta:
    return ContractMeta(
        key="test_schema.gauges",
        version=version,
        owner="test",
        classification=Classification.INTERNAL,
        primary_key=("gauge_id",),
        version_field="measured_at",
    )


class Gauge(Contract):
    """1.0.0: a gauge and its level."""

    meta: ClassVar[ContractMeta] = gauge_meta("1.0.0")
    gauge_id: Annotated[str, Field(max_length=8, description="Gauge code")]
    measured_at: datetime
    level: Annotated[float | None, Field(description="Water level", json_schema_extra={"unit": "m"})] = None


class GaugeWithFlow(Gauge):
    """1.1.0: a compatible change, one nullable field more."""

    meta: ClassVar[ContractMeta] = gauge_meta("1.1.0")
    flow: Annotated[float | None, Field(description="Discharge", json_schema_extra={"unit": "m3/s"})] = None


class GaugeWithRequiredFlow(Gauge):
    """1.1.0 done wrong: a required field within the major."""

    meta: ClassVar[ContractMeta] = gauge_meta("1.1.0")
    flow: float


class GaugeByStation(Contract):
    """2.0.0: a breaking change (a new key), published side by side."""

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="test_schema.gauges",
        version="2.0.0",
        owner="test",
        classification=Classification.INTERNAL,
        primary_key=("station_code", "gauge_id"),
        version_field="measured_at",
    )
    station_code: str
    gauge_id: str
    measured_at: datetime


def publish(engine: Engine, contract: type[Contract], rows: list[dict[str, object]]) -> None:
    with engine.begin() as conn:
        publish_frame(conn, contract, typed_frame(contract, rows), run_id="run", now=NOW)


def columns_of(engine: Engine, table: str) -> list[str]:
    return [column["name"] for column in inspect(engine).get_columns(table)]


def rows_of(engine: Engine, table: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(text(f"select * from {table} order by 1")).mappings()]  # noqa: S608


def schema_state(engine: Engine) -> dict[str, object]:
    """Every table with its columns (name, type, nullable), indexes and unique constraints, and the revision."""
    inspector = inspect(engine)
    with engine.connect() as conn:
        revision = conn.execute(text("select version_num from alembic_version")).scalars().all()
    return {
        "revision": revision,
        "tables": {
            name: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)],
                sorted(json.dumps(index, sort_keys=True, default=str) for index in inspector.get_indexes(name)),
                sorted(str(unique) for unique in inspector.get_unique_constraints(name)),
            )
            for name in inspector.get_table_names()
        },
    }


def head_revision(engine: Engine) -> str:
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
    assert head is not None
    return head


@pytest.fixture(params=["pg_engine", "sqlite_engine"])
def empty(request: pytest.FixtureRequest) -> Engine:
    """An engine on an empty database: no schema ensured yet."""
    engine: Engine = request.getfixturevalue(request.param)
    return engine


def test_an_empty_database_is_upgraded_to_head_with_every_table(empty: Engine) -> None:
    ensure_schema(empty)

    registered = {dataset_table(contract).name for contract in all_contracts()}
    assert set(inspect(empty).get_table_names()) == BOOKKEEPING | registered | {"alembic_version"}
    assert schema_state(empty)["revision"] == [head_revision(empty)]
    assert "ds_water_quality__samples_v2" in registered  # the registered contracts' majors, by the naming rule


def test_the_migrated_database_matches_the_tables_module(empty: Engine) -> None:
    """Alembic's own comparison (what autogenerate would write) finds nothing to do: revisions and tables.py agree."""
    ensure_schema(empty)
    target = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(target)
    for contract in all_contracts():
        dataset_table(contract).to_metadata(target)

    with empty.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), target)

    assert differences == []
    assert set(metadata.tables) == BOOKKEEPING  # Alembic owns exactly the bookkeeping tables


def test_running_the_upgrade_again_changes_nothing(empty: Engine) -> None:
    ensure_schema(empty, [Gauge])
    publish(empty, Gauge, [{"gauge_id": "G1", "measured_at": T, "level": 1.5}])
    before = schema_state(empty), rows_of(empty, "ds_test_schema__gauges_v1")

    ensure_schema(empty, [Gauge])
    ensure_schema(empty, [Gauge])

    assert (schema_state(empty), rows_of(empty, "ds_test_schema__gauges_v1")) == before


def test_a_new_nullable_field_is_added_in_place_and_published(empty: Engine) -> None:
    ensure_schema(empty, [Gauge])
    publish(empty, Gauge, [{"gauge_id": "G1", "measured_at": T, "level": 1.5}])
    assert "flow" not in columns_of(empty, "ds_test_schema__gauges_v1")

    ensure_schema(empty, [Gauge, GaugeWithFlow])
    publish(empty, GaugeWithFlow, [{"gauge_id": "G2", "measured_at": T, "level": 0.5, "flow": 12.25}])

    assert columns_of(empty, "ds_test_schema__gauges_v1")[:4] == ["gauge_id", "measured_at", "level", "_hash"]
    assert "flow" in columns_of(empty, "ds_test_schema__gauges_v1")
    table = dataset_table(GaugeWithFlow)
    with empty.connect() as conn:
        stored = conn.execute(select(table.c.gauge_id, table.c.level, table.c.flow).order_by(table.c.gauge_id)).all()
        summary = conn.execute(select(datasets.c.contract_version, datasets.c.table_name, datasets.c.last_seq)).one()
    assert [tuple(row) for row in stored] == [("G1", 1.5, None), ("G2", 0.5, 12.25)]
    assert tuple(summary) == ("1.1.0", "ds_test_schema__gauges_v1", 2)


def test_a_required_field_within_a_major_is_refused_and_the_table_kept(empty: Engine) -> None:
    ensure_schema(empty, [Gauge])
    before = columns_of(empty, "ds_test_schema__gauges_v1")

    with pytest.raises(IncompatibleChangeError, match=r"adds required fields \['flow'\].*new major"):
        ensure_schema(empty, [GaugeWithRequiredFlow])

    assert columns_of(empty, "ds_test_schema__gauges_v1") == before


def test_a_new_major_gets_a_table_beside_the_old_one(empty: Engine) -> None:
    ensure_schema(empty, [Gauge])
    publish(empty, Gauge, [{"gauge_id": "G1", "measured_at": T, "level": 1.5}])
    old_rows = rows_of(empty, "ds_test_schema__gauges_v1")

    ensure_schema(empty, [Gauge, GaugeByStation])
    publish(empty, GaugeByStation, [{"station_code": "S1", "gauge_id": "G1", "measured_at": T}])

    assert rows_of(empty, "ds_test_schema__gauges_v1") == old_rows
    assert [row["station_code"] for row in rows_of(empty, "ds_test_schema__gauges_v2")] == ["S1"]
    assert columns_of(empty, "ds_test_schema__gauges_v2")[:3] == ["station_code", "gauge_id", "measured_at"]


def test_a_database_made_before_migrations_is_adopted_with_its_data(empty: Engine) -> None:
    """Until now ``create_all`` made the bookkeeping tables: such a hub is stamped at the baseline, rows kept, and
    upgraded from there. Such a database holds exactly the baseline's tables, and no ``alembic_version``."""
    with empty.begin() as conn:
        command.upgrade(alembic_config(conn), BASELINE_REVISION)
        conn.execute(text("drop table alembic_version"))
    with empty.begin() as conn:
        conn.execute(
            datasets.insert().values(
                key="k", contract_version="1.0.0", table_name="t", last_seq=7, row_count=1, epoch="e"
            )
        )

    ensure_schema(empty)

    assert schema_state(empty)["revision"] == [head_revision(empty)]
    with empty.connect() as conn:
        assert conn.execute(select(datasets.c.key, datasets.c.last_seq)).all() == [("k", 7)]


def test_watermarks_kept_from_before_partitions_become_the_unpartitioned_ones(empty: Engine) -> None:
    """Revision 0004 puts ``partition_key`` into the primary key of ``stream_state``; a stored watermark stays."""
    with empty.begin() as conn:
        command.upgrade(alembic_config(conn), "0003")
        conn.execute(
            text(
                "insert into stream_state (source, stream, cursor_value, run_id, updated_at) "
                "values ('water_quality', 'samples', :at, 'run-1', :at)"
            ),
            {"at": NOW},
        )

    ensure_schema(empty)

    with empty.connect() as conn:
        rows = conn.execute(text("select source, stream, partition_key, run_id from stream_state")).all()
    assert [tuple(row) for row in rows] == [("water_quality", "samples", "", "run-1")]
    primary_key = inspect(empty).get_pk_constraint("stream_state")["constrained_columns"]
    assert sorted(primary_key) == ["partition_key", "source", "stream"]


def test_a_schema_already_brought_to_this_state_is_checked_in_one_query(empty: Engine) -> None:
    """A task process opens the hub every time: once the recorded fingerprint is this code's, nothing is migrated."""
    ensure_schema(empty)
    before = schema_state(empty)
    statements: list[str] = []
    event.listen(empty, "before_cursor_execute", lambda _c, _cur, statement, *_: statements.append(statement))
    ensure_schema(empty)
    assert len(statements) == 1
    assert "schema_fingerprint" in statements[0]
    assert schema_state(empty) == before


def test_a_contract_registered_from_outside_the_package_gets_its_table_despite_the_fingerprint(
    empty: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fingerprint stands for the package's contract modules by their files; a contract registered from
    elsewhere (a test's, an extension's) after a migration changes it, so the next migration gives it its table."""
    ensure_schema(empty)
    assert dataset_table(Gauge).name not in inspect(empty).get_table_names()
    monkeypatch.setitem(registry._REGISTRY, (Gauge.meta.key, Gauge.meta.version), Gauge)
    ensure_schema(empty)
    assert dataset_table(Gauge).name in inspect(empty).get_table_names()
