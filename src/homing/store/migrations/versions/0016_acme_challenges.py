"""ACME DNS-01: the plans' challenge limits and acme-dns compatible registrations

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("acme_values", sa.Integer(), nullable=False, server_default="4"))
        batch.add_column(
            sa.Column("acme_changes_per_hour", sa.Integer(), nullable=False, server_default="60")
        )
    op.create_table(
        "acmedns_registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=36), nullable=False),
        sa.Column("password_hash", sa.String(length=64), nullable=False),
        sa.Column("subdomain", sa.String(length=36), nullable=False),
        sa.Column("allowfrom", sa.Text(), nullable=False),
        sa.Column("txt", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acmedns_registrations")),
        sa.UniqueConstraint("username", name=op.f("uq_acmedns_registrations_username")),
        sa.UniqueConstraint("subdomain", name=op.f("uq_acmedns_registrations_subdomain")),
    )


def downgrade() -> None:
    op.drop_table("acmedns_registrations")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("acme_changes_per_hour")
        batch.drop_column("acme_values")
