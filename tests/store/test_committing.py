"""A node hears PostgreSQL's notification of its own commit, sometimes before its commit
hooks have moved its zone index: `Database.committing` lets it know the serial is its own,
so it does not read the store for what it has just written."""

from __future__ import annotations

import asyncio
from typing import Any

from homing.domain.records import JournalEntry, RRsetValue
from homing.serve import _known
from homing.service import zones
from homing.service.changes import apply_change
from homing.service.zones import get_zone
from homing.store.db import Database, Txn
from homing.store.notify import JournalListener

ZONE = "committing.example.org"
WAIT = 10.0
WRITES = 40


async def change(db: Database, label: str, address: str, zone_name: str = ZONE) -> None:
    """`label`'s A RRset in the zone set to `address`, through the batched writer."""

    async def unit(txn: Txn) -> None:
        zone = await get_zone(txn.conn, zone_name)
        value = RRsetValue(f"{label}.{zone_name}", "A", 60, (address,))
        assert await apply_change(txn, zone, value, actor="test", via="test") is not None

    await db.write(unit)


async def test_a_batch_is_committing_from_its_commit_until_its_hooks_ran(pg_db: Database) -> None:
    await zones.add_zone(pg_db, ZONE)
    seen: list[list[list[Any]]] = []
    pg_db.on_commit.append(lambda emitted: seen.append([list(b) for b in pg_db.committing]))
    await change(pg_db, "www", "192.0.2.1")
    [during] = seen
    assert len(during) == 1 and [e.name for e in during[0]] == [f"www.{ZONE}"]
    assert pg_db.committing == []


async def test_own_commits_do_not_wake_the_follower(pg_db: Database) -> None:
    """The listener asks `_known` as `homing serve` does, and the serials it knows move
    only in the commit hook, as the Follower's index does: every notification is of our
    own commit, and none wakes the follower."""
    await zones.add_zone(pg_db, ZONE)
    serials: dict[str, int] = {}

    def applied(emitted: list[Any]) -> None:
        for entry in emitted:
            if isinstance(entry, JournalEntry):
                serials[entry.zone] = max(serials.get(entry.zone, 0), entry.serial)

    heard: set[tuple[str, int]] = set()

    def known(zone: str, serial: int) -> bool:
        heard.add((zone, serial))
        return _known(serials.get, pg_db, zone, serial)

    pg_db.on_commit.append(applied)
    wakes: list[None] = []
    listener = JournalListener(pg_db.url, pg_db.schema, lambda: wakes.append(None), known)
    task = asyncio.create_task(listener.run())
    try:
        for _ in range(int(WAIT / 0.01)):
            if listener.connected:
                break
            await asyncio.sleep(0.01)  # a bounded poll: the listener has no "connected" event
        assert listener.connected
        connected_wakes = len(wakes)  # the one after connecting: what it may have missed
        await asyncio.gather(*(change(pg_db, f"h{i}", f"192.0.2.{i + 1}") for i in range(WRITES)))
        last = serials[ZONE]
        for _ in range(int(WAIT / 0.01)):
            if (ZONE, last) in heard:
                break
            await asyncio.sleep(0.01)  # a bounded poll: the last notification announces nothing
        assert (ZONE, last) in heard
        assert len(wakes) == connected_wakes, "a notification of our own commit woke us"
        assert listener.skipped == listener.notifications >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
