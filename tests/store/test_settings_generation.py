"""The settings generation moves with every change a server's keys and zone lists come
from, and not with address updates or serials (which would make every node reload)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from homing.domain.records import RRsetValue
from homing.service import accounts, hosts, inventory, keys, zones
from homing.service.changes import apply_changes
from homing.service.zoneoptions import ZoneOptions, set_zone_options
from homing.store.db import Database, Txn
from homing.store.schema import hosts as hosts_table
from homing.store.schema import settings_generation, tsig_keys
from homing.store.schema import zones as zones_table

ZONE = "dyn.example.net"


async def generation(db: Database) -> int:
    async def read(conn: sa.ext.asyncio.AsyncConnection) -> int:
        return int(await conn.scalar(sa.select(settings_generation.c.generation)) or 0)

    return await db.read(read)


async def test_settings_changes_move_it(db: Database) -> None:
    seen = [await generation(db)]

    async def moved() -> bool:
        seen.append(await generation(db))
        return seen[-1] > seen[-2]

    zone = await zones.add_zone(db, ZONE)
    assert await moved()
    await set_zone_options(db, ZONE, ZoneOptions(allow_transfer=["127.0.0.1/32"]))
    assert await moved()
    await set_zone_options(db, ZONE, ZoneOptions(notify=["127.0.0.1:5300"]))
    assert await moved()
    await keys.add_key(db, "k1", zone=ZONE, also=())
    assert await moved()
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    await hosts.add_host(db, f"h.{ZONE}", "alice")
    await keys.add_key(db, "hk", host=f"h.{ZONE}")
    assert await moved()

    async def delete_key(txn: Txn) -> None:
        await txn.conn.execute(sa.delete(tsig_keys).where(tsig_keys.c.name == "k1"))

    await db.write(delete_key)
    assert await moved()
    await inventory.delete_host(db, f"h.{ZONE}", group_max_age=0)  # its key goes with it
    assert await moved()
    assert zone.id


async def test_addresses_and_serials_leave_it(db: Database) -> None:
    zone = await zones.add_zone(db, ZONE)
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    await hosts.add_host(db, f"h.{ZONE}", "alice")
    await keys.add_key(db, "hk", host=f"h.{ZONE}")
    before = await generation(db)

    for round_ in range(3):

        async def unit(txn: Txn, round_: int = round_) -> None:
            value = RRsetValue(f"h.{ZONE}", "A", 60, (f"192.0.2.{round_}",))
            await apply_changes(txn, zone, [value], actor="test", via="test")

        await db.write(unit)

    async def update_columns(txn: Txn) -> None:  # what an update writes besides its records
        await txn.conn.execute(
            sa.update(hosts_table).values(
                last_update_at=datetime.now(UTC), last_client_ip="192.0.2.9", nochg_count=1
            )
        )
        await txn.conn.execute(sa.update(zones_table).values(serial=zones_table.c.serial + 1))

    await db.write(update_columns)
    await set_zone_options(db, ZONE, ZoneOptions(public=False))
    assert await generation(db) == before
