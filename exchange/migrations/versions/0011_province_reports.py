"""The city's reports up to the provincial river-chief platform: what was sent per record, and the acknowledgement.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "province_reports",
        sa.Column("dataset", sa.String(length=100), nullable=False),
        sa.Column(
            "record_key",
            sa.String(length=500),
            nullable=False,
            comment="Primary key of the reported row as a JSON array",
        ),
        sa.Column(
            "content_hash", sa.String(length=64), nullable=False, comment="sha256 of the report last sent for the row"
        ),
        sa.Column(
            "idempotency_key",
            sa.String(length=64),
            nullable=False,
            comment="Sent with the report: a resend is not a new one",
        ),
        sa.Column(
            "ack_id",
            sa.String(length=100),
            nullable=True,
            comment="The province's acknowledgement of that report; null until it arrives",
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "record_key"),
        comment="One row per record reported up to the provincial platform: what was sent and what the province said.",
    )


def downgrade() -> None:
    op.drop_table("province_reports")
