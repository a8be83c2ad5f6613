"""Backup and restore of the hub: its database (``pg_dump``/``pg_restore`` of the hub's schema, or SQLite's own
backup) and its object store (snapshots; staging is transient and left out).

A restored hub continues each dataset's change log from the backup's last sequence, so the changes made after the
backup are gone and their sequence numbers will be given again. Their event ids must not be: a consumer dedupes on
the id and would drop the new events as ones it has seen. So a restore gives every dataset a new epoch (which every
event id derives from); events already in the outbox keep the ids they were written with.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import URL, make_url

from exchange.errors import StoreConfigError
from exchange.objects import ObjectStore
from exchange.tables import datasets

__all__ = ["copy_objects", "dump_database", "renew_epochs", "restore_database"]

_SKIPPED_PREFIX = "staging/"


def dump_database(url: str, path: Path) -> None:
    """Write the hub database to ``path``: a custom-format dump of its schema (PostgreSQL) or a consistent copy of
    the file (SQLite, through its backup API, safe while the hub writes)."""
    parsed = make_url(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(str(parsed.database)) as source, sqlite3.connect(path) as target:
            source.backup(target)
        return
    schema = _search_path(parsed)
    command = ["pg_dump", "--format=custom", "--no-owner", f"--file={path}"]
    command += [f"--schema={schema}"] if schema else []
    _run([*command, _libpq(parsed)], parsed)


def restore_database(url: str, path: Path, engine: Engine) -> None:
    """Load a dump made by ``dump_database`` into the hub database ``url``, which must hold no hub tables yet
    (``engine`` is on it): a restore never merges into a live hub."""
    with engine.connect() as conn:
        if inspect(conn).has_table(datasets.name):
            raise StoreConfigError(
                "the target database already holds hub tables; restore into an empty database (or schema)"
            )
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine.dispose()
        shutil.copyfile(path, str(parsed.database))
        return
    _run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_libpq(parsed)}", str(path)], parsed)


def copy_objects(source: ObjectStore, target: ObjectStore) -> int:
    """Copy every object but staging from ``source`` to ``target`` (any two stores, local or S3); returns how many."""
    copied = 0
    for key in source.list(""):
        if not key.startswith(_SKIPPED_PREFIX):
            target.put(key, source.get(key))
            copied += 1
    return copied


def renew_epochs(engine: Engine) -> int:
    """A new epoch for every dataset, after a restore: event ids of the changes published after the backup (lost,
    their sequence numbers given again) are never sent again for other changes. Returns how many datasets."""
    with engine.begin() as conn:
        keys = list(conn.execute(datasets.select().with_only_columns(datasets.c.key)).scalars())
        for key in keys:
            conn.execute(datasets.update().where(datasets.c.key == key).values(epoch=uuid.uuid4().hex))
    return len(keys)


def _search_path(url: URL) -> str | None:
    """The schema a URL's ``options=-csearch_path=<schema>`` puts the hub in, if any."""
    options = url.query.get("options")
    for option in [options] if isinstance(options, str) else list(options or ()):
        if option.startswith("-csearch_path="):
            return option.removeprefix("-csearch_path=").split(",")[0]
    return None


def _libpq(url: URL) -> str:
    """The URL as libpq takes it: no driver, no password (that goes in the environment), no options."""
    return url.set(drivername="postgresql", password=None, query={}).render_as_string(hide_password=False)


def _run(command: list[str], url: URL) -> None:
    env = os.environ | ({"PGPASSWORD": str(url.password)} if url.password else {})
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - fixed tools
    if done.returncode != 0:
        raise StoreConfigError(
            f"{command[0]} failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}"
        )
