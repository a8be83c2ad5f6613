"""The digest of what the schema was last brought to, so that a task process finding it current skips migrating.

Revision ID: 0014
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schema_fingerprint",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint"),
        comment="One row: the digest of the migrations and contract fields the schema was last brought to "
        "(exchange.schema): a process finding it current skips the migration step",
    )


def downgrade() -> None:
    op.drop_table("schema_fingerprint")
