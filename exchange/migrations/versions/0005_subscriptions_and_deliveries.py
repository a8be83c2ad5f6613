"""Subscriptions (webhooks, WeCom group robots) and the deliveries fanned out to them from the outbox.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column(
            "outbox_id", sa.BigInteger(), nullable=True, comment="The outbox row it reports; null for a test ping"
        ),
        sa.Column("message_id", sa.String(length=80), nullable=False, comment="webhook-id: the same on every attempt"),
        sa.Column("kind", sa.String(length=10), nullable=False, comment="change or ping"),
        sa.Column(
            "body", sa.Text(), nullable=False, comment="What is POSTed (CloudEvent JSON), or a WeCom alert's markdown"
        ),
        sa.Column("first_seq", sa.BigInteger(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column(
            "state", sa.String(length=10), nullable=False, comment="pending, delivered or dead (retries exhausted)"
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="Not tried before; a claimed send leases it",
        ),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "last_status", sa.Integer(), nullable=True, comment="HTTP status (or WeCom errcode) of the last attempt"
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "message_id", name="uq_deliveries_message"),
        comment="One row per message per subscriber, fanned out from the outbox: what each subscriber has been sent.",
    )
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"], unique=False)
    op.create_index("ix_deliveries_queue", "deliveries", ["subscription_id", "state", "id"], unique=False)
    op.create_table(
        "subscriptions",
        sa.Column(
            "subscription_id",
            sa.String(length=40),
            nullable=False,
            comment="sub_<hex>: public, named in the API's paths",
        ),
        sa.Column("department", sa.String(length=40), nullable=False),
        sa.Column(
            "token_id",
            sa.String(length=16),
            nullable=False,
            comment="The token it was created with: its grant (and row filter) decides what the subscription is sent",
        ),
        sa.Column("dataset", sa.String(length=100), nullable=False),
        sa.Column(
            "channel",
            sa.String(length=10),
            nullable=False,
            comment="webhook (signed CloudEvents) or wecom (group robot)",
        ),
        sa.Column(
            "url",
            sa.Text(),
            nullable=False,
            comment="Where deliveries are POSTed; a WeCom robot's address holds its key",
        ),
        sa.Column(
            "secret",
            sa.String(length=80),
            nullable=True,
            comment="whsec_ signing secret of a webhook; kept to sign, shown once at creation",
        ),
        sa.Column(
            "state",
            sa.String(length=10),
            nullable=False,
            comment="active, or disabled (410, robot gone, grant revoked)",
        ),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column(
            "fed_outbox_id",
            sa.BigInteger(),
            nullable=False,
            comment="Last outbox row fanned out to this subscription: it is sent what its dataset publishes after this",
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id"),
        comment="A department's standing request to be told of a dataset's changes, on one channel.",
    )
    op.create_index(op.f("ix_subscriptions_department"), "subscriptions", ["department"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_subscriptions_department"), table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_deliveries_queue", table_name="deliveries")
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.drop_table("deliveries")
