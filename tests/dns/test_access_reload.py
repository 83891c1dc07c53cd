"""AccessLoader follows the store's settings generation: a settings change (made by any
process or node) is in effect at the next look, an address update reads nothing, and on
PostgreSQL the change's notification wakes the loader at once."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator

import dns.name
import sqlalchemy as sa

from homing.dns.access import Access, AccessLoader
from homing.domain.records import RRsetValue
from homing.service import keys, zones
from homing.service.changes import apply_changes
from homing.service.zoneoptions import ZoneOptions, set_zone_options
from homing.store.db import Database, Txn
from homing.store.notify import JournalListener
from homing.store.schema import tsig_keys

ZONE = "dyn.example.net"
WAIT = 10.0  # bound on every wait for a reload; they normally take milliseconds


def allows(access: Access, address: str) -> bool:
    return access.may_transfer(ZONE, None, address)


async def test_reloads_when_the_generation_moves_and_only_then(db: Database) -> None:
    zone = await zones.add_zone(db, ZONE)
    await keys.add_key(db, "xfr", zone=ZONE)
    loader = AccessLoader(db)
    await loader.reload()
    assert not await loader.check()  # nothing changed: one small read, no reload
    assert loader.reloads == 1

    async def update(txn: Txn) -> None:
        value = RRsetValue(f"h.{ZONE}", "A", 60, ("192.0.2.1",))
        await apply_changes(txn, zone, [value], actor="test", via="test")

    await db.write(update)  # moves the serial, not the settings
    assert not await loader.check()

    await set_zone_options(db, ZONE, ZoneOptions(allow_transfer=["127.0.0.2/32"]))
    assert not allows(loader.current, "127.0.0.2")
    assert await loader.check()
    assert allows(loader.current, "127.0.0.2")
    assert loader.current.zones[ZONE].allow_transfer == (ipaddress.ip_network("127.0.0.2/32"),)

    async def revoke(txn: Txn) -> None:
        await txn.conn.execute(sa.delete(tsig_keys).where(tsig_keys.c.name == "xfr"))

    assert loader.current.keyring.get(dns.name.from_text("xfr")) is not None
    await db.write(revoke)
    assert await loader.check()
    assert loader.current.keyring.get(dns.name.from_text("xfr")) is None
    assert loader.reloads == 3


async def test_full_reload_after_full_interval(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    now = [100.0]
    loader = AccessLoader(db, full_interval=60.0, clock=lambda: now[0])
    await loader.reload()
    now[0] += 59.0
    assert not await loader.check()
    now[0] += 1.0
    assert await loader.check()
    assert loader.reloads == 2


@contextlib.asynccontextmanager
async def running(task: asyncio.Task[None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def reloaded_with(loader: AccessLoader, address: str) -> asyncio.Event:
    """An event set once a reload allows `address` to transfer the zone."""
    event = asyncio.Event()

    def listener(access: Access) -> None:
        if allows(access, address):
            event.set()

    loader.listeners.append(listener)
    return event


async def test_run_picks_a_change_up_within_the_interval(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    loader = AccessLoader(db, interval=0.05)
    await loader.reload()
    event = await reloaded_with(loader, "127.0.0.3")
    async with running(asyncio.create_task(loader.run())):
        await set_zone_options(db, ZONE, ZoneOptions(allow_transfer=["127.0.0.3/32"]))
        await asyncio.wait_for(event.wait(), WAIT)
    assert allows(loader.current, "127.0.0.3")


async def test_postgresql_notification_wakes_the_loader(pg_db: Database) -> None:
    db = pg_db
    await zones.add_zone(db, ZONE)
    loader = AccessLoader(db, interval=3600.0)  # only a wake makes it look before the test ends
    await loader.reload()
    event = await reloaded_with(loader, "127.0.0.4")
    listener = JournalListener(db.url, db.schema, lambda: None, on_settings=loader.wake)
    async with (
        running(asyncio.create_task(loader.run())),
        running(asyncio.create_task(listener.run())),
    ):
        # Listening: the connect itself wakes the loader once (what it may have missed).
        for _ in range(int(WAIT / 0.02)):
            if listener.connected:
                break
            await asyncio.sleep(0.02)  # a bounded poll: the listener has no "connected" event
        assert listener.connected
        await set_zone_options(db, ZONE, ZoneOptions(allow_transfer=["127.0.0.4/32"]))
        await asyncio.wait_for(event.wait(), WAIT)
    assert listener.settings_notifications >= 1
