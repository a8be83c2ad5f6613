"""Departments, their tokens (hashes only) and grants, the read audit, and an index for the change feed's deletes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("code", sa.String(length=40), nullable=False, comment="Stable code a token and the audit name it by"),
        sa.Column("name", sa.String(length=100), nullable=False, comment="The department's official name"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code"),
        comment="Departments are the principals of the consumer API: each token belongs to one.",
    )
    op.create_table(
        "grants",
        sa.Column("token_id", sa.String(length=16), nullable=False),
        sa.Column("dataset", sa.String(length=100), nullable=False),
        sa.Column(
            "row_filter",
            sa.Text(),
            nullable=True,
            comment="JSON list of {field, op, values}, all of which a row must meet; null: all rows",
        ),
        sa.PrimaryKeyConstraint("token_id", "dataset"),
        comment="Which datasets a token reads, each with an optional row filter; a dataset not listed is invisible.",
    )
    op.create_table(
        "read_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column("token_id", sa.String(length=16), nullable=False),
        sa.Column("dataset", sa.String(length=100), nullable=False),
        sa.Column("resource", sa.String(length=20), nullable=False, comment="rows, changes or snapshot"),
        sa.Column(
            "row_filter", sa.Text(), nullable=True, comment="JSON: the grant's filter and the request's own filters"
        ),
        sa.Column("rows", sa.BigInteger(), nullable=False, comment="Rows (or change entries) actually sent"),
        sa.PrimaryKeyConstraint("id"),
        comment="One row per data read through the consumer API: who read which dataset, with which filter, how much.",
    )
    op.create_index("ix_read_audit_department", "read_audit", ["department", "read_at"], unique=False)
    op.create_table(
        "tokens",
        sa.Column(
            "token_id",
            sa.String(length=16),
            nullable=False,
            comment="Public prefix of the token, for lookup and the audit",
        ),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column(
            "secret_sha256",
            sa.String(length=64),
            nullable=False,
            comment="sha256 of the secret part; the token is never kept",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_id"),
        comment="API tokens, stored only as hashes: a leaked table grants nothing.",
    )
    op.create_index(op.f("ix_tokens_department"), "tokens", ["department"], unique=False)
    op.create_index(
        "ix_change_log_deletes",
        "change_log",
        ["dataset", "seq"],
        unique=False,
        postgresql_where=sa.text("op = 'delete'"),
        sqlite_where=sa.text("op = 'delete'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_change_log_deletes",
        table_name="change_log",
        postgresql_where=sa.text("op = 'delete'"),
        sqlite_where=sa.text("op = 'delete'"),
    )
    op.drop_index(op.f("ix_tokens_department"), table_name="tokens")
    op.drop_table("tokens")
    op.drop_index("ix_read_audit_department", table_name="read_audit")
    op.drop_table("read_audit")
    op.drop_table("grants")
    op.drop_table("departments")
