"""A watermark per stream partition (one station, one parent record): ``partition_key`` joins the primary key of
``stream_state``; existing watermarks are the unpartitioned ones (``''``).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COMMENT = "The partition's context as compact JSON (one station, one parent record); '' when unpartitioned"
_TABLE_COMMENT = "Incremental watermark per stream and partition; advanced only in the publish transaction."


def upgrade() -> None:
    column = sa.Column("partition_key", sa.String(length=500), nullable=False, server_default="", comment=_COMMENT)
    if op.get_bind().dialect.name == "sqlite":  # SQLite cannot change a primary key in place: the table is rebuilt
        op.create_table(
            "_stream_state_new",
            sa.Column("source", sa.String(length=100), nullable=False),
            sa.Column("stream", sa.String(length=100), nullable=False),
            column,
            sa.Column("cursor_value", sa.DateTime(timezone=True), nullable=False),
            sa.Column("run_id", sa.String(length=250), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("source", "stream", "partition_key"),
        )
        op.execute(
            "insert into _stream_state_new (source, stream, partition_key, cursor_value, run_id, updated_at) "
            "select source, stream, '', cursor_value, run_id, updated_at from stream_state"
        )
        op.drop_table("stream_state")
        op.rename_table("_stream_state_new", "stream_state")
        return
    op.add_column("stream_state", column)
    op.drop_constraint("stream_state_pkey", "stream_state", type_="primary")
    op.create_primary_key("stream_state_pkey", "stream_state", ["source", "stream", "partition_key"])
    op.create_table_comment("stream_state", _TABLE_COMMENT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("stream_state", recreate="always") as batch:
            batch.drop_column("partition_key")
        return
    op.drop_constraint("stream_state_pkey", "stream_state", type_="primary")
    op.drop_column("stream_state", "partition_key")
    op.create_primary_key("stream_state_pkey", "stream_state", ["source", "stream"])
