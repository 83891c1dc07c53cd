"""The journal keeps the old RRset's TTL, so IXFR deletes exact records

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows written before this have no record of it (xfr.py falls back to `ttl`).
    with op.batch_alter_table("journal") as batch:
        batch.add_column(sa.Column("old_ttl", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("old_ttl")
