"""Self-service unblocking: how often a plan lets a user unblock a host, and when it last happened

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
    with op.batch_alter_table("plans") as batch:
        # 0: only the operator unblocks; N: the owner may unblock a host once every N days.
        batch.add_column(
            sa.Column("self_unblock_days", sa.Integer(), nullable=False, server_default="1")
        )
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("unblocked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("unblocked_at")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("self_unblock_days")
