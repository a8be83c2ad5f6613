"""The exchange tests run each scenario on both backends: PostgreSQL (COPY fast path) and SQLite (the embedded
default, generic path), so the two cannot drift apart."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from exchange.tables import ensure_schema


@pytest.fixture(params=["pg_engine", "sqlite_engine"])
def engine(request: pytest.FixtureRequest) -> Engine:
    engine: Engine = request.getfixturevalue(request.param)
    ensure_schema(engine)
    return engine
