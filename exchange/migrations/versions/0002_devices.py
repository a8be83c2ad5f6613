"""The device registry the gateway reads: which device may send what, for which station, and when it was last seen.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column(
            "device_id",
            sa.String(length=64),
            nullable=False,
            comment="Id in the device's MQTT topic and its broker user",
        ),
        sa.Column("protocol", sa.String(length=8), nullable=False, comment="sl651, hj212 or json"),
        sa.Column(
            "station_code", sa.String(length=16), nullable=False, comment="Station its readings are stored under (STCD)"
        ),
        sa.Column(
            "credential_hash",
            sa.Text(),
            nullable=True,
            comment="Broker password hash (Mosquitto PBKDF2-SHA512 form); never the secret",
        ),
        sa.Column("expected_interval_s", sa.Integer(), nullable=False, comment="How often the device should report"),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="When the gateway last committed a message from it",
        ),
        sa.Column("state", sa.String(length=8), nullable=False, comment="online, or offline when silent too long"),
        sa.PrimaryKeyConstraint("device_id"),
        comment="Device registry: a message from a device not listed here is quarantined as unknown.",
    )


def downgrade() -> None:
    op.drop_table("devices")
