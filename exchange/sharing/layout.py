"""Where sharing keeps things in the object store's folder: the Delta tables, and the files made to be served.

``sharing/tables/<dataset>/`` holds each dataset's Delta table. ``sharing/served/<dataset>/`` holds files made on
demand for recipients (a filtered grant's rows at a version, one version's changes), named by version and filter
hash: a version never changes, so such a file is made once and served until maintenance prunes it, after the same
retention as the Delta table's removed files.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from exchange.errors import StoreConfigError
from exchange.objects import LocalObjectStore, ObjectStore

__all__ = [
    "SERVED_PREFIX",
    "TABLES_PREFIX",
    "maintenance_marker",
    "prune_served_files",
    "served_key",
    "shared_table_path",
    "store_root",
]

TABLES_PREFIX = "sharing/tables"
SERVED_PREFIX = "sharing/served"


def store_root(store: ObjectStore) -> Path:
    """The folder Delta tables and served files live in; only the local object store is one for now."""
    if not isinstance(store, LocalObjectStore):
        raise StoreConfigError(
            "Delta Sharing keeps its tables in the local object store (file://); set WATERHUB_OBJECT_STORE_URL "
            "to a folder to share datasets"
        )
    return store.root


def shared_table_path(store: ObjectStore, dataset: str) -> Path:
    return store_root(store) / TABLES_PREFIX / dataset


def maintenance_marker(store: ObjectStore, dataset: str) -> Path:
    """``sharing/maintenance/<dataset>``: when OPTIMIZE and VACUUM last ran on the dataset's table."""
    return store_root(store) / "sharing" / "maintenance" / dataset


def served_key(dataset: str, kind: str, version: int, filter_hash: str) -> str:
    """``sharing/served/<dataset>/<kind>/<version, 20 digits>-<filter hash>.parquet``."""
    return f"{SERVED_PREFIX}/{dataset}/{kind}/{version:020d}-{filter_hash}.parquet"


def prune_served_files(store: ObjectStore, dataset: str, *, older_than: datetime) -> int:
    """Remove served files made before ``older_than``; a URL to them has expired and a new request remakes them."""
    folder = store_root(store) / SERVED_PREFIX / dataset
    cutoff = older_than.timestamp()
    pruned = 0
    for path in folder.rglob("*.parquet") if folder.exists() else ():
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            pruned += 1
    return pruned
