"""The exchange tests run each scenario on both backends: PostgreSQL (COPY fast path) and SQLite (the embedded
default, generic path), so the two cannot drift apart; tests of stored objects run on both object stores alike: the
local folder (the embedded default) and an S3-compatible server (SeaweedFS, credentials enforced)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine

from exchange.objects import LocalObjectStore, ObjectStore
from exchange.s3_store import S3ObjectStore
from exchange.tables import ensure_schema
from tests.seaweed import S3Server


@pytest.fixture(params=["pg_engine", "sqlite_engine"])
def engine(request: pytest.FixtureRequest) -> Engine:
    engine: Engine = request.getfixturevalue(request.param)
    ensure_schema(engine)
    return engine


@dataclass(frozen=True)
class Stores:
    """Fresh, empty stores of one kind, and a way to lose an object behind the store's back."""

    tmp_path: Path
    server: S3Server | None
    bucket: str = field(default_factory=lambda: f"t-{uuid.uuid4().hex[:16]}")

    def new(self, name: str) -> ObjectStore:
        """A folder under the test's tmp_path, or a prefix in a bucket of the test's own (created by the store)."""
        if self.server is None:
            root = self.tmp_path / name
            root.mkdir()  # LocalObjectStore.list("") on a missing root would walk the folder above it
            return LocalObjectStore(root)
        return S3ObjectStore(self.server.url(self.bucket, name), self.server.credentials())

    def remove(self, store: ObjectStore, key: str) -> None:
        if isinstance(store, LocalObjectStore):
            (store.root / key).unlink()
        else:
            assert isinstance(store, S3ObjectStore)
            assert self.server is not None
            self.server.client().remove_object(store.bucket, store.prefix + key)


@pytest.fixture(params=["local", "s3"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    server = request.getfixturevalue("s3_server") if request.param == "s3" else None
    return Stores(tmp_path, server)
