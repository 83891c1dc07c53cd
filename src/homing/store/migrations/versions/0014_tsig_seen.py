"""Signed UPDATEs seen recently, by key and MAC, with their first answer

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tsig_seen",
        sa.Column("key_name", sa.String(length=253), nullable=False),
        sa.Column("mac", sa.String(length=128), nullable=False),
        sa.Column("rcode", sa.Integer(), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key_name", "mac", name=op.f("pk_tsig_seen")),
    )
    op.create_index(op.f("ix_tsig_seen_until"), "tsig_seen", ["until"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_tsig_seen_until"), table_name="tsig_seen")
    op.drop_table("tsig_seen")
