"""One throttle for every door that takes a secret: a row per key and window

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", "period", name=op.f("pk_throttle")),
    )
    op.create_index(op.f("ix_throttle_until"), "throttle", ["until"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_throttle_until"), table_name="throttle")
    op.drop_table("throttle")
