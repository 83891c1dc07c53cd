"""Hidden primary: a zone's push target, its TSIG key and the last serial pushed

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("push_target", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("push_key", sa.String(length=253), nullable=True))
        batch.add_column(sa.Column("pushed_serial", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("pushed_serial")
        batch.drop_column("push_key")
        batch.drop_column("push_target")
