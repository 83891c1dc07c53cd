"""An index on group_members.host_id: the update path asks which groups its hosts are in

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_group_members_host", "group_members", ["host_id"])


def downgrade() -> None:
    op.drop_index("ix_group_members_host", table_name="group_members")
