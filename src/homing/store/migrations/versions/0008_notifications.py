"""Notifications: per-account alert settings, the outbox, inactivity policy and marks

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_settings",
        sa.Column(
            "account_id",
            sa.Integer(),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("email_on", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("webhook_url", sa.String(2000), nullable=True),
        sa.Column("webhook_secret", sa.String(64), nullable=True),
        sa.Column("on_address", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("on_auth", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("on_abuse", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("on_stale", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", Timestamp, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer(),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_at", Timestamp, nullable=False),
        sa.Column("sent_at", Timestamp, nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_at"])
    op.create_table(
        "inactivity_policy",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("warn_days", sa.Integer(), nullable=False),
        sa.Column("disable_days", sa.Integer(), nullable=False),
        sa.Column("delete_days", sa.Integer(), nullable=False),
        sa.Column("notice_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
    )
    op.create_table(
        "inactivity_marks",
        sa.Column(
            "host_id",
            sa.Integer(),
            sa.ForeignKey("hosts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("basis", Timestamp, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("marked_at", Timestamp, nullable=False),
    )
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(
            sa.Column("badauth_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("badauth_window_start", Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("badauth_window_start")
        batch.drop_column("badauth_count")
    op.drop_table("inactivity_marks")
    op.drop_table("inactivity_policy")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("alert_settings")
