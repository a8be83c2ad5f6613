"""Alembic's entry into the hub's migrations: always on the connection ``exchange.schema`` hands over.

There is no alembic.ini and no URL here: ``exchange.schema.migrate`` runs the migrations inside its own transaction
(under its lock on PostgreSQL), so this file only configures the context on that connection.
"""

from __future__ import annotations

from alembic import context

from exchange.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
