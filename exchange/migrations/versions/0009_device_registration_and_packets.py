"""When each device was registered, so a device that never reports goes offline too: ``devices.registered_at``
(devices registered before this revision count from the upgrade). SL 651 packets waiting for the rest of their
multi-packet transfer: ``device_packets``.

Revision ID: 0009
Revises: 0006
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None

_COMMENT = "When it was registered: a device never heard from goes offline twice its interval after this"


def upgrade() -> None:
    op.add_column("devices", sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True, comment=_COMMENT))
    upgraded_at = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        upgraded_at = upgraded_at.replace(tzinfo=None)  # the hub stores UTC without a zone in SQLite
    devices = sa.table("devices", sa.column("registered_at", sa.DateTime(timezone=True)))
    op.execute(devices.update().where(devices.c.registered_at.is_(None)).values(registered_at=upgraded_at))

    op.create_table(
        "device_packets",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("function", sa.Integer(), nullable=False, comment="SL 651 function code of the transfer"),
        sa.Column("total", sa.Integer(), nullable=False, comment="Packets in the transfer"),
        sa.Column("sequence", sa.Integer(), nullable=False, comment="This packet's number, from 1"),
        sa.Column("payload", sa.Text(), nullable=False, comment="The packet as received, hex"),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "function", "total", "sequence"),
        comment="Packets of SL 651 multi-packet transfers waiting for the rest; removed once the transfer is read.",
    )


def downgrade() -> None:
    op.drop_table("device_packets")
    op.drop_column("devices", "registered_at")
