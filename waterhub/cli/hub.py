"""The hub database as the commands open it: commands that write migrate it to head first; commands that only read
never create, migrate or touch it, and say which database they read (or that there is none, and how to name one).

An operator who forgot ``WATERHUB_DATABASE_URL`` must be told so, not shown an empty table from a SQLite file the
command has just made under the current directory.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from exchange.db import make_engine
from exchange.tables import datasets, ensure_schema
from exchange.urls import redacted_url
from waterhub.cli.output import fail
from waterhub.settings import Settings

__all__ = ["database_caption", "existing_hub", "migrated_hub"]

_NAME_ONE = (
    "set WATERHUB_DATABASE_URL to the hub's database (postgresql+psycopg://user@host:5432/waterhub), or "
    "WATERHUB_DATA_DIR to the folder of an embedded hub; `waterhub demo` makes one"
)


def migrated_hub(settings: Settings | None = None) -> Engine:
    """The hub database, created if embedded and migrated to head: for commands that write."""
    engine = make_engine((settings or Settings()).resolved_database_url)
    ensure_schema(engine)
    return engine


def existing_hub(settings: Settings | None = None) -> Engine:
    """The hub database as it is, for commands that only read (their tables name it: ``database_caption``)."""
    settings = settings or Settings()
    url = settings.resolved_database_url
    if settings.database_url is None:
        path = settings.data_dir / "waterhub.db"
        if not path.is_file():
            missing = f"no hub database: WATERHUB_DATABASE_URL is not set and no embedded hub exists at {path}"
            raise fail(missing, _NAME_ONE)
    engine = make_engine(url)
    with engine.connect() as conn:
        has_tables = inspect(conn).has_table(datasets.name)
    if not has_tables:
        engine.dispose()
        raise fail(
            f"the database at {redacted_url(url)} holds no hub tables",
            f"the first DAG run or `waterhub demo` creates them; if this is not the hub's database, {_NAME_ONE}",
        )
    return engine


def database_caption(engine: Engine) -> str:
    """Which database a table was read from, passwords hidden: two hubs' tables look alike."""
    return f"hub database: {redacted_url(engine.url.render_as_string(hide_password=False))}"
