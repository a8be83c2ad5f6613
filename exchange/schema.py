"""The hub's schema over time: Alembic migrations for its own tables, then each contract's table reconciled.

The bookkeeping tables (``exchange.tables.metadata``: datasets, change log, outbox, quarantine, ...) change through
revisions in ``exchange/migrations/versions``, run to head on every ``ensure_schema``. A change to one of them in
``exchange/tables.py`` needs a revision beside it: the migrations test compares the migrated database with
``metadata`` (Alembic's autogenerate comparison) and fails until the two agree. ``alembic.command.revision(
alembic_config(conn), message, autogenerate=True)`` drafts one.

Contract tables follow the registered contracts instead, because a new contract version is a code change, not a
migration someone writes (``ds_<key>_v<major>``, ``exchange.tables.dataset_table``):

- a compatible change (a new minor adding a nullable field) migrates in place: the column is added
  (``ALTER TABLE ... ADD COLUMN``), existing rows read it as null, and the next publish fills it;
- a breaking change is a new major, whose table is created beside the old one; the old table stays for the
  consumers still reading it until the operator drops it;
- a field added as required within a major cannot be given to the rows already there: ``IncompatibleChangeError``,
  publish it as a new major.

A database created before migrations existed holds exactly the first revision's tables: it is stamped at that
revision, then upgraded. On PostgreSQL the whole step runs in one transaction under an advisory lock, so two workers
starting together migrate once, and a failed step leaves the schema as it was.

Every task process opens the hub, and running Alembic and inspecting every contract's table cost it about a second
(most of a run that finds nothing new). So the step ends by recording a digest of what it brought the schema to (the
revision files and each contract's fields: ``schema_fingerprint``), and a process whose digest is the recorded one
skips the step: one query. A table dropped by hand behind the hub's back is therefore not recreated until the
migrations or contracts change (``waterhub doctor`` and the first write would say so).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Column, Connection, Engine, delete, insert, inspect, select, text
from sqlalchemy.exc import DBAPIError

import contracts as contracts_package
from contracts import Contract, IncompatibleChangeError, all_contracts
from contracts.registry import contract_modules, registered_elsewhere
from exchange.tables import dataset_table, datasets, schema_fingerprint

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["BASELINE_REVISION", "alembic_config", "migrate"]

log = structlog.get_logger(__name__)

BASELINE_REVISION = "0001"
"""The revision whose tables ``create_all`` made before the hub had migrations."""
_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x7761746572687562  # "waterhub": one advisory lock for every schema change of this database


def alembic_config(conn: Connection) -> Config:
    """Alembic's configuration for the hub, working on ``conn`` (no alembic.ini: the package carries its scripts)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def migrate(engine: Engine, contracts: Iterable[type[Contract]] | None = None) -> None:
    """Upgrade the hub's own tables to head, then give every contract major a table with every field it has; nothing
    but one query when the schema was last brought to this same state (its recorded fingerprint)."""
    from alembic import command

    contracts = None if contracts is None else list(contracts)  # read twice: by the fingerprint and the step
    fingerprint = _fingerprint(contracts)
    if _recorded_fingerprint(engine) == fingerprint:
        return
    newest = _newest_minor_per_major(all_contracts() if contracts is None else contracts)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("select pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        config = alembic_config(conn)
        inspector = inspect(conn)
        if not inspector.has_table("alembic_version") and inspector.has_table(datasets.name):
            command.stamp(config, BASELINE_REVISION)
            log.info("schema_adopted", revision=BASELINE_REVISION)
        command.upgrade(config, "head")
        for contract in newest:
            _reconcile(conn, contract)
        conn.execute(delete(schema_fingerprint))
        conn.execute(insert(schema_fingerprint).values(fingerprint=fingerprint))


def _fingerprint(contracts: list[type[Contract]] | None) -> str:
    """A digest of what ``migrate`` brings the schema to: every revision file as it is, and the contracts whose
    tables it reconciles. The registered contracts are those the ``contracts`` package's modules define, so their
    files stand for them: digesting them imports none (loading every contract costs a task tenths of a second);
    contracts given by name, and those registered from outside the package, are digested by their fields (name,
    required)."""
    digest = hashlib.sha256()
    files = sorted((_MIGRATIONS / "versions").glob("*.py"))
    if contracts is None:
        files += sorted(Path(package).joinpath(name) for package in contracts_package.__path__ for name in _modules())
    for path in files:
        digest.update(f"{path.parent.name}/{path.name}".encode() + b"\0" + path.read_bytes() + b"\0")
    listed = registered_elsewhere() if contracts is None else contracts
    for contract in sorted(listed, key=lambda c: (c.meta.key, c.meta.version_tuple)):
        fields = sorted(f"{name}:{info.is_required()}" for name, info in contract.model_fields.items())
        digest.update(f"{contract.meta.key}@{contract.meta.version}:{','.join(fields)}\0".encode())
    return digest.hexdigest()


def _modules() -> list[str]:
    """File names of the ``contracts`` package's modules (``contracts.registry.contract_modules``), not imported."""
    return [f"{name.removeprefix('contracts.')}.py" for name in contract_modules()]


def _recorded_fingerprint(engine: Engine) -> str | None:
    """The fingerprint the last migration recorded; None on a database never migrated this far."""
    try:
        with engine.connect() as conn:
            return conn.execute(select(schema_fingerprint.c.fingerprint)).scalar()
    except DBAPIError:  # no such table yet: the migration that creates it has not run
        return None


def _newest_minor_per_major(contracts: Iterable[type[Contract]]) -> list[type[Contract]]:
    """The newest version of each (dataset, major): its fields are a superset of its major's older minors'."""
    newest: dict[tuple[str, int], type[Contract]] = {}
    for contract in contracts:
        slot = (contract.meta.key, contract.meta.major)
        if slot not in newest or newest[slot].meta.version_tuple < contract.meta.version_tuple:
            newest[slot] = contract
    return list(newest.values())


def _reconcile(conn: Connection, contract: type[Contract]) -> None:
    """Create the contract's table, or add the nullable columns its version brought; never drop or retype."""
    table = dataset_table(contract)
    inspector = inspect(conn)
    if not inspector.has_table(table.name):
        table.create(conn)
        log.info("contract_table_created", table=table.name, contract_version=contract.meta.version)
        return
    present = {column["name"] for column in inspector.get_columns(table.name)}
    missing = [column for column in table.columns if column.name not in present]
    required = [column.name for column in missing if not column.nullable]
    if required:
        raise IncompatibleChangeError(
            f"{contract.meta.key} {contract.meta.version} adds required fields {required} to table {table.name}, "
            "whose rows have no value for them. Make the fields optional, or publish the change as a new major "
            "version (its table is created beside this one). The table was left as it was."
        )
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    operations = Operations(MigrationContext.configure(conn))
    for column in missing:
        operations.add_column(table.name, _added(column))
        log.info("contract_column_added", table=table.name, column=column.name, contract_version=contract.meta.version)


def _added(column: Column[object]) -> Column[object]:
    """A detached copy of ``column`` for ``ADD COLUMN`` (a column belongs to one table)."""
    return Column(column.name, column.type, nullable=True, comment=column.comment)
