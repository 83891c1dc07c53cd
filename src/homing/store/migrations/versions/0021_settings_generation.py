"""A settings generation: moved by every change a running server's keys and zone lists
come from, so each node reloads them at once instead of at the next periodic read

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# The columns homing.dns.access builds its snapshot from (service.keys.all_keys,
# service.zones.transfer_settings). A zone's serial, or anything an address update
# writes, is not among them: those must not make every node reload its settings.
WATCHED = {
    "zones": (
        "name", "notify", "allow_transfer", "push_target", "push_key",
        "primary_target", "primary_key", "notify_key",
    ),
    "tsig_keys": ("name", "algorithm", "secret", "policy", "zone_id", "host_id"),
    "tsig_key_zones": ("key_id", "zone_id"),
    "hosts": ("name",),  # a host key is scoped by its host's name
}  # fmt: skip
# Rows of these tables that come and go change the snapshot too (a host's keys go with it
# by the foreign key's cascade, which fires the tsig_keys trigger).
ROWS = ("zones", "tsig_keys", "tsig_key_zones")

# PostgreSQL: the transaction that moves the generation also notifies the settings channel
# (homing.store.notify.SETTINGS_CHANNEL) with the schema's name; it arrives at commit, when
# the change is visible, and the same payload sent twice in one transaction arrives once.
_FUNCTION = """
CREATE OR REPLACE FUNCTION homing_settings_changed() RETURNS trigger AS $$
BEGIN
    EXECUTE format('UPDATE %I.settings_generation SET generation = generation + 1',
                   TG_TABLE_SCHEMA);
    PERFORM pg_notify('homing_settings', TG_TABLE_SCHEMA);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def _events(table: str) -> list[str]:
    events = [f"UPDATE OF {', '.join(WATCHED[table])}"]
    if table in ROWS:
        events += ["INSERT", "DELETE"]
    return events


def upgrade() -> None:
    op.create_table(
        "settings_generation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO settings_generation (id, generation) VALUES (1, 1)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        for table in WATCHED:
            op.execute(
                f"CREATE TRIGGER homing_settings_{table} AFTER {' OR '.join(_events(table))} "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION homing_settings_changed()"
            )
        return
    # SQLite: one trigger per event, for each row (it has no statement triggers).
    for table in WATCHED:
        for event in _events(table):
            op.execute(
                f"CREATE TRIGGER homing_settings_{table}_{event.split()[0].lower()} "
                f"AFTER {event} ON {table} FOR EACH ROW BEGIN "
                "UPDATE settings_generation SET generation = generation + 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS homing_settings_{table} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS homing_settings_changed()")
    else:
        for table in WATCHED:
            for event in _events(table):
                name = f"homing_settings_{table}_{event.split()[0].lower()}"
                op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("settings_generation")
