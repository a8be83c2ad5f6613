"""The hub each derivation test runs on: real PostgreSQL and the embedded SQLite, with the hub's schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from exchange.db import make_engine
from exchange.tables import ensure_schema
from waterhub.derived import Derivation
from waterhub.settings import Settings


@pytest.fixture(params=["postgresql", "sqlite"])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Derivation, Engine]]:
    """The derivation the test module names in ``DERIVATION``, and an engine on its database."""
    url = request.getfixturevalue("pg_schema_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/h.db"
    engine = make_engine(url)
    ensure_schema(engine)
    derivation = Derivation(Settings(data_dir=tmp_path, database_url=url), request.module.DERIVATION)
    yield derivation, engine
    derivation.engine.dispose()
    engine.dispose()
