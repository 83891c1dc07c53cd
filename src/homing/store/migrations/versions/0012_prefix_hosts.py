"""IPv6 prefix hosts: a host's address is its router's delegated prefix + an interface id

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prefix_hosts",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("router_id", sa.Integer(), nullable=False),
        sa.Column("iid", sa.String(45), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
            name="fk_prefix_hosts_host_id_hosts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["router_id"],
            ["hosts.id"],
            name="fk_prefix_hosts_router_id_hosts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("host_id", name="pk_prefix_hosts"),
    )
    op.create_index("ix_prefix_hosts_router", "prefix_hosts", ["router_id"])
    op.create_table(
        "router_prefixes",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(49), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
            name="fk_router_prefixes_host_id_hosts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("host_id", name="pk_router_prefixes"),
    )


def downgrade() -> None:
    op.drop_table("router_prefixes")
    op.drop_index("ix_prefix_hosts_router", table_name="prefix_hosts")
    op.drop_table("prefix_hosts")
