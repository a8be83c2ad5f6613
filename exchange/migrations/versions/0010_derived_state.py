"""How far each derived dataset has read each input's change log: one sequence per derivation and input.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "derived_state",
        sa.Column(
            "derivation",
            sa.String(length=100),
            nullable=False,
            comment="The derived dataset's name in waterhub/derived.toml",
        ),
        sa.Column("input_dataset", sa.String(length=100), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False, comment="The input's change-log sequence derived up to"),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("derivation", "input_dataset"),
        comment="Per derivation and input, how far its change log was read; advanced only in the derived publish.",
    )


def downgrade() -> None:
    op.drop_table("derived_state")
