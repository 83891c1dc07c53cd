"""PostgreSQL: a zone whose serial moves (or a new zone) wakes every node's follower

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# The notification is sent by the transaction that moves the serial, so a listener hears
# of it exactly when the change is visible to it; PostgreSQL folds the same payload sent
# twice in one transaction into one. The payload is "SCHEMA ZONE SERIAL": stores in
# other schemas of the same database share the channel (homing.store.notify.CHANNEL),
# and a process that already answers with that serial (its own commit) need not look.
_FUNCTION = """
CREATE OR REPLACE FUNCTION homing_journal_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('homing_journal', TG_TABLE_SCHEMA || ' ' || NEW.name || ' ' || NEW.serial);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: the processes of one machine wake each other (homing.workers)
    op.execute(_FUNCTION)
    op.execute(
        "CREATE TRIGGER homing_zone_serial AFTER UPDATE OF serial ON zones FOR EACH ROW "
        "WHEN (OLD.serial IS DISTINCT FROM NEW.serial) EXECUTE FUNCTION homing_journal_notify()"
    )
    op.execute(
        "CREATE TRIGGER homing_zone_added AFTER INSERT ON zones FOR EACH ROW "
        "EXECUTE FUNCTION homing_journal_notify()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS homing_zone_added ON zones")
    op.execute("DROP TRIGGER IF EXISTS homing_zone_serial ON zones")
    op.execute("DROP FUNCTION IF EXISTS homing_journal_notify()")
