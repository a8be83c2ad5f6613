"""``waterhub backup FOLDER`` and ``waterhub restore FOLDER``: the hub's database and object store, together.

The folder holds ``hub.pgdump`` (PostgreSQL, custom format) or ``hub.sqlite`` (the embedded hub) and ``objects/``
(snapshots; staging is transient and left out). Restore loads them into the configured hub, whose database must be
empty, and gives every dataset a new epoch so no event id is ever sent twice (``exchange.backup``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from waterhub.cli.output import stdout
from waterhub.settings import Settings

__all__ = ["backup", "restore"]

Folder = Annotated[Path, typer.Argument(help="Folder of the backup")]


def _dump_name(url: str) -> str:
    return "hub.sqlite" if make_url(url).get_backend_name() == "sqlite" else "hub.pgdump"


def backup(folder: Folder) -> None:
    """Write the hub's database and object store (without staging) to FOLDER."""
    from exchange.backup import copy_objects, dump_database
    from exchange.objects import LocalObjectStore, open_object_store
    from waterhub.cli.hub import existing_hub

    settings = Settings()
    existing_hub(settings).dispose()
    url = settings.resolved_database_url
    dump_database(url, folder / _dump_name(url))
    store = open_object_store(settings.resolved_object_store_url, settings.object_store_credentials)
    copied = copy_objects(store, LocalObjectStore(folder / "objects"))
    stdout.print(f"database and {copied} object(s) written to {folder.resolve()}", soft_wrap=True)


def restore(folder: Folder) -> None:
    """Load a backup from FOLDER into the configured hub (its database must hold no hub tables)."""
    from exchange.backup import copy_objects, renew_epochs, restore_database
    from exchange.db import make_engine
    from exchange.objects import LocalObjectStore, open_object_store
    from exchange.tables import ensure_schema

    settings = Settings()
    url = settings.resolved_database_url
    engine = make_engine(url)
    try:
        restore_database(url, folder / _dump_name(url), engine)
        engine.dispose()
        engine = make_engine(url)
        renewed = renew_epochs(engine)
        ensure_schema(engine)  # a backup of older code is migrated to this code's head
    finally:
        engine.dispose()
    store = open_object_store(settings.resolved_object_store_url, settings.object_store_credentials)
    copied = copy_objects(LocalObjectStore(folder / "objects"), store)
    stdout.print(
        f"restored the database and {copied} object(s); {renewed} dataset(s) got a new epoch, so their next "
        "events carry ids never sent before. Consumers that read past the backup's last sequence restart from a "
        "snapshot.",
        soft_wrap=True,
    )
