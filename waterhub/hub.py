"""The hub a step works on (database, object store), opened from ``Settings`` on first use: shared by the steps of
source pipelines and of derived datasets, so both open and migrate the database the same way."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Engine

from exchange.db import make_engine
from exchange.objects import ObjectStore, open_object_store
from exchange.tables import ensure_schema
from waterhub.settings import Settings

__all__ = ["Hub"]


class Hub:
    """A task's handles on the hub; the database is brought to the hub's schema before its first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.settings.resolved_database_url)
        ensure_schema(engine)
        return engine

    @cached_property
    def store(self) -> ObjectStore:
        return open_object_store(self.settings.resolved_object_store_url, self.settings.object_store_credentials)
