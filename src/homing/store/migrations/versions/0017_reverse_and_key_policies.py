"""Reverse zones kept in step with hosts (auto_ptr); zone keys over several zones, with a policy

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.add_column(
            sa.Column("auto_ptr", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("tsig_keys") as batch:
        batch.add_column(sa.Column("policy", sa.Text(), nullable=True))
    op.create_table(
        "tsig_key_zones",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["tsig_keys.id"],
            name=op.f("fk_tsig_key_zones_key_id_tsig_keys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"],
            ["zones.id"],
            name=op.f("fk_tsig_key_zones_zone_id_zones"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key_id", "zone_id", name=op.f("pk_tsig_key_zones")),
    )


def downgrade() -> None:
    op.drop_table("tsig_key_zones")
    with op.batch_alter_table("tsig_keys") as batch:
        batch.drop_column("policy")
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("auto_ptr")
