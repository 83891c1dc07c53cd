"""The parent's name servers a signed zone's leader asks for the zone's DS

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("parent_servers", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("parent_servers")
