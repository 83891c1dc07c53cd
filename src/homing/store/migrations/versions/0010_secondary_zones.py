"""Secondary zones: the primary a zone is pulled from, its TSIG key, the last contact and
transfer kind; and the key a zone's outgoing NOTIFYs are signed with

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
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("primary_target", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("primary_key", sa.String(length=253), nullable=True))
        batch.add_column(sa.Column("refreshed_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("last_transfer", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("notify_key", sa.String(length=253), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("notify_key")
        batch.drop_column("last_transfer")
        batch.drop_column("refreshed_at")
        batch.drop_column("primary_key")
        batch.drop_column("primary_target")
