"""A fresh PostgreSQL schema per benchmark run, so a benchmark never touches tables it did not make."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, make_url, text

from exchange.db import make_engine

__all__ = ["scratch_schema"]


def scratch_schema(database_url: str, **engine_options: Any) -> tuple[Engine, str, Callable[[], None]]:
    """An engine whose tables live in a new schema, the schema's name, and what drops it (call it in ``finally``)."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(database_url)
    with admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url.render_as_string(hide_password=False), **engine_options)

    def drop() -> None:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()

    return engine, schema, drop
