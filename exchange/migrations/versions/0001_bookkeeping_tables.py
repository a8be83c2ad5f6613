"""The hub's bookkeeping tables as ``create_all`` made them before migrations: the baseline.

A database made before migrations holds exactly these tables; ``exchange.schema`` stamps it at this revision
instead of running it. Times are ``UtcDateTime`` in ``exchange.tables``, stored as ``DateTime(timezone=True)``.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(length=120), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("interval_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False, comment="JSON: per stream, staged object keys and counts"),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    op.create_table(
        "change_log",
        sa.Column("dataset", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key", sa.Text(), nullable=False, comment="Primary key of the changed row as a JSON array"),
        sa.Column("op", sa.String(length=6), nullable=False, comment="insert, update or delete"),
        sa.Column("contract_version", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "seq"),
        comment="Append-only: one entry per real change, sequence monotonic per dataset.",
    )
    op.create_table(
        "datasets",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("contract_version", sa.String(length=20), nullable=False),
        sa.Column("table_name", sa.String(length=120), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("last_published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.String(length=250), nullable=True),
        sa.Column(
            "epoch",
            sa.String(length=32),
            nullable=False,
            comment="Random, set when the row is created: a hub rebuilt from scratch numbers its changes from 1 again, "
            "and its event ids must still differ from the old hub's",
        ),
        sa.PrimaryKeyConstraint("key"),
        comment="One row per published dataset; its row is locked while a publish assigns sequence numbers.",
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("dataset", sa.String(length=100), nullable=False),
        sa.Column("contract_version", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
        comment="Written in the publish transaction; notifications are sent from here after commit.",
    )
    op.create_index("ix_outbox_pending", "outbox", ["dispatched_at", "id"], unique=False)
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset", sa.String(length=100), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False, comment="JSON array of stable reason codes"),
        sa.Column("payload", sa.Text(), nullable=False, comment="The raw record as received, JSON"),
        sa.Column("contract_version", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("batch_id", sa.String(length=120), nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset", "payload_hash", name="uq_quarantine_payload"),
        comment="Records that failed validation, kept whole so they can be replayed.",
    )
    op.create_table(
        "snapshots",
        sa.Column("dataset", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column(
            "contract_version", sa.String(length=20), nullable=False, comment="Contract version of the dataset at seq"
        ),
        sa.Column(
            "object_key", sa.Text(), nullable=False, comment="Key of the Parquet object in the hub's object store"
        ),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("manifest_uri", sa.Text(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "seq"),
    )
    op.create_table(
        "stream_state",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("stream", sa.String(length=100), nullable=False),
        sa.Column("cursor_value", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "stream"),
        comment="Incremental watermark per stream; advanced only in the publish transaction.",
    )
    op.create_table(
        "validation_runs",
        sa.Column("batch_id", sa.String(length=120), nullable=False),
        sa.Column("dataset", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("contract_version", sa.String(length=20), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("valid", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("results", sa.Text(), nullable=False, comment="JSON: unexpected count per expectation"),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "dataset"),
    )
    op.create_table(
        "withheld",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset", sa.String(length=100), nullable=False),
        sa.Column("key", sa.Text(), nullable=False, comment="Primary key of the published row as a JSON array"),
        sa.Column("factor", sa.String(length=100), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False, comment="JSON array of stable reason codes"),
        sa.Column(
            "raw", sa.Text(), nullable=False, comment="The factor's fields as received (value, flag, unit), JSON"
        ),
        sa.Column("raw_hash", sa.String(length=64), nullable=False),
        sa.Column("contract_version", sa.String(length=20), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("batch_id", sa.String(length=120), nullable=False),
        sa.Column("withheld_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset", "key", "factor", "raw_hash", name="uq_withheld_value"),
        comment="Factor values published as null (status rejected or below_detection), kept as sent for review.",
    )


def downgrade() -> None:
    op.drop_table("withheld")
    op.drop_table("validation_runs")
    op.drop_table("stream_state")
    op.drop_table("snapshots")
    op.drop_table("quarantine")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("datasets")
    op.drop_table("change_log")
    op.drop_table("batches")
