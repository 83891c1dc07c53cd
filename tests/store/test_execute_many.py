"""store.db.execute_many: the update path's bulk writes, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from homing.service.zones import add_zone
from homing.store.db import Database, SyncTxn, as_utc, execute_many
from homing.store.schema import journal, plans, zones


async def _zone(db: Database) -> int:
    await add_zone(db, "bulk.example")

    async def zone_id(conn: object) -> int:
        return int(await conn.scalar(sa.select(zones.c.id).where(zones.c.name == "bulk.example")))  # type: ignore[attr-defined]

    return await db.read(zone_id)


async def test_rows_with_times_written_as_sqlalchemy_would(db: Database) -> None:
    zone_id = await _zone(db)
    at = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)
    rows = [
        {
            "zone_id": zone_id,
            "serial": serial,
            "name": f"h{serial}.bulk.example",
            "rtype": "A",
            "ttl": 60,
            "old": "",
            "new": f"192.0.2.{serial}",
            "actor": "test",
            "via": "dyndns2",
            "old_ttl": None,
            "at": at + timedelta(seconds=serial),
        }
        for serial in range(2, 7)
    ]

    def write(txn: SyncTxn) -> None:
        execute_many(txn.conn, sa.insert(journal), rows)

    await db.write(lambda txn: txn.run_sync(write))

    async def read(conn: object) -> list[sa.Row[tuple[object, ...]]]:
        result = await conn.execute(  # type: ignore[attr-defined]
            sa.select(journal.c.serial, journal.c.new, journal.c.at, journal.c.old_ttl)
            .where(journal.c.actor == "test")  # not the zone's own first rows
            .order_by(journal.c.serial)
        )
        return list(result)

    back = await db.read(read)
    assert [(r.serial, r.new, as_utc(r.at), r.old_ttl) for r in back] == [
        (row["serial"], row["new"], row["at"], None) for row in rows
    ]


async def test_a_statement_with_python_defaults_still_gets_them(db: Database) -> None:
    # plans' columns have Python-side defaults: the driver path cannot fill them in.
    def write(txn: SyncTxn) -> None:
        execute_many(txn.conn, sa.insert(plans), [{"name": "bulk-a"}, {"name": "bulk-b"}])

    await db.write(lambda txn: txn.run_sync(write))

    async def read(conn: object) -> list[tuple[str, int, str]]:
        result = await conn.execute(  # type: ignore[attr-defined]
            sa.select(plans.c.name, plans.c.max_hosts, plans.c.currency)
            .where(plans.c.name.like("bulk-%"))
            .order_by(plans.c.name)
        )
        return [tuple(r) for r in result]

    assert await db.read(read) == [("bulk-a", 5, "EUR"), ("bulk-b", 5, "EUR")]


async def test_no_rows_writes_nothing(db: Database) -> None:
    async def count(conn: object) -> int:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(plans)))  # type: ignore[attr-defined]

    before = await db.read(count)

    def write(txn: SyncTxn) -> None:
        execute_many(txn.conn, sa.insert(plans), [])

    await db.write(lambda txn: txn.run_sync(write))
    assert await db.read(count) == before
