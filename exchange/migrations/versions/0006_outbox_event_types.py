"""The outbox carries more than changes: ``event_type`` (CloudEvents type; existing rows are changes) and
``detail`` (JSON of what a non-change event says, e.g. a stale source's last run).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CHANGED = "org.waterhub.dataset.changed.v1"


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column(
                "event_type",
                sa.String(length=60),
                nullable=False,
                server_default=_CHANGED,
                comment="CloudEvents type: a change (the sequence range) or a freshness alert (stale: see detail)",
            )
        )
        batch.add_column(
            sa.Column(
                "detail",
                sa.Text(),
                nullable=True,
                comment="JSON of what an event other than a change says (a stale source's last run)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("detail")
        batch.drop_column("event_type")
