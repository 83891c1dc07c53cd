"""zones.signed: whether a zone has DNSSEC keys, kept with them and filled in by its
migration for zones signed before it."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from homing.service import dnssec, zones
from homing.store.db import MIGRATIONS, Database
from homing.store.schema import zones as zones_table


async def signed(db: Database) -> dict[str, bool]:
    query = sa.select(zones_table.c.name, zones_table.c.signed)
    rows = (await db.read(lambda conn: conn.execute(query))).all()
    return {name: bool(value) for name, value in rows}


async def test_signing_on_and_off_keeps_it(db: Database) -> None:
    await zones.add_zone(db, "signed.example")
    await zones.add_zone(db, "plain.example")
    assert await signed(db) == {"signed.example": False, "plain.example": False}
    await dnssec.enable(db, "signed.example")
    assert await signed(db) == {"signed.example": True, "plain.example": False}
    await dnssec.disable(db, "signed.example", at_once=True)
    assert await signed(db) == {"signed.example": False, "plain.example": False}


async def test_the_migration_fills_it_in_from_the_keys(db: Database) -> None:
    await zones.add_zone(db, "signed.example")
    await zones.add_zone(db, "plain.example")
    await dnssec.enable(db, "signed.example")

    def to(revision: str, down: bool) -> object:
        def run(sync_conn: sa.Connection) -> None:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = sync_conn
            (command.downgrade if down else command.upgrade)(config, revision)

        return run

    async with db.engine.begin() as conn:
        await conn.run_sync(to("0022", down=True))  # as before the column
    async with db.engine.begin() as conn:
        await conn.run_sync(to("head", down=False))
    assert await signed(db) == {"signed.example": True, "plain.example": False}
