"""DNS queries answered per node and 5-minute bucket, for the operator's 24-hour chart

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "query_counts",
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("node", sa.String(64), primary_key=True),
        sa.Column("queries", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("query_counts")
