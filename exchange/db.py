"""Engines and the UTC timestamp column type shared by every hub table.

An engine made here turns a database that cannot be reached (refused, timed out, dropped mid-statement) into
``StoreUnavailableError`` naming the database by its redacted URL, in one place for every caller: the pipeline's
steps, the consumer queries and the CLI alike.

SQLite drops timezone offsets (SQLAlchemy stores an aware 10:00+08:00 as a naive 10:00), so every timestamp is
converted to UTC on the way in and given its UTC zone back on the way out, on every backend alike.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, DateTime, Engine, Table, any_, create_engine, event, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, ExceptionContext, make_url
from sqlalchemy.types import TypeDecorator

from exchange.errors import StoreUnavailableError
from exchange.urls import redacted_url

__all__ = ["UtcDateTime", "among", "is_postgres", "make_engine", "upsert_insert"]


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; naive values are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: attach a zone before storing")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the hub database; SQLite gets WAL and a busy timeout so readers never block a publish."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
        _report_outages(engine, redacted_url(url))
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    _report_outages(engine, redacted_url(url))

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def _report_outages(engine: Engine, shown_url: str) -> None:
    """Raise ``StoreUnavailableError`` instead of the driver's ``OperationalError`` when the database cannot be
    reached or the connection dropped; any other database error (a constraint, a lock timeout) passes unchanged.

    A failed pre-ping is left alone: the pool then opens a fresh connection, and only that failure is an outage.
    """

    @event.listens_for(engine, "handle_error")
    def _unavailable(context: ExceptionContext) -> None:
        dbapi = context.dialect.loaded_dbapi
        connecting = context.connection is None  # SQLAlchemy's "no connection" path: the connect itself failed
        if context.is_pre_ping or not (connecting or context.is_disconnect):
            return
        if not isinstance(context.original_exception, dbapi.OperationalError | dbapi.InterfaceError):
            return
        reason = str(context.original_exception).strip().splitlines()[0] if str(context.original_exception) else ""
        what = "cannot be reached" if connecting else "dropped the connection"
        raise StoreUnavailableError(
            f"the hub database at {shown_url} {what} ({reason or type(context.original_exception).__name__})",
            hint="start the database or point WATERHUB_DATABASE_URL at a running one; a DAG task is retried by Airflow",
        )


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def upsert_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that takes ``on_conflict_do_nothing``/``_do_update``: the hub runs on PostgreSQL or SQLite only,
    and both spell ``ON CONFLICT`` alike; any other backend is refused rather than handed SQLite's form."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"the hub runs on PostgreSQL or SQLite, not {conn.dialect.name}")


def among(conn: Connection, column: ColumnElement[Any], values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values``, sent to PostgreSQL as one array parameter: an IN list of thousands of parameters
    costs the driver and the server seconds to bind and parse, where ``= ANY(array)`` costs milliseconds."""
    if conn.dialect.name == "postgresql":
        return column == any_(literal(list(values), postgresql.ARRAY(column.type)))
    return column.in_(list(values))
