"""Whether a zone has DNSSEC keys, on its row

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on SQLite too: a batch would copy the table without its triggers
    # (the settings generation's).
    op.add_column(
        "zones", sa.Column("signed", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.execute(
        "UPDATE zones SET signed = (EXISTS (SELECT 1 FROM dnssec_keys"
        " WHERE dnssec_keys.zone_id = zones.id))"
    )


def downgrade() -> None:
    op.drop_column("zones", "signed")
