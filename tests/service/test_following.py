"""A node follows what other nodes commit. Told which zone moved (a PostgreSQL
notification, or a gap behind one of its own commits), it reads only that zone's
journal; it reads every zone's serial when that is not enough, when woken with no
zone named, and once per poll interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import dns.name
import dns.rdatatype
import pytest
import sqlalchemy as sa

from homing.dns.index import ZoneIndex
from homing.service import inventory, zoneoptions, zones
from homing.service.journal import Follower
from homing.store.db import Database
from homing.store.schema import zones as zones_table
from tests.store import test_committing as committing

ZONE = "follow.example.net"
WAIT = 20.0
POLL = 600.0  # no poll during a test: what moves the index is the wake under test


async def change(db: Database, label: str, address: str) -> None:
    await committing.change(db, label, address, ZONE)


async def stored_serial(db: Database) -> int:
    query = sa.select(zones_table.c.serial).where(zones_table.c.name == ZONE)
    return int(await db.read(lambda conn: conn.scalar(query)))


async def until(done: Callable[[], bool]) -> None:
    for _ in range(int(WAIT / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)  # a bounded poll: the index has no "caught up" event
    raise AssertionError("the follower did not catch up")


@pytest.fixture
async def other(db: Database) -> AsyncIterator[Database]:
    """Another node on the same store: its commits reach the follower only when woken."""
    node = Database(db.url.render_as_string(hide_password=False), schema=db.schema)
    try:
        yield node
    finally:
        await node.close()


def zones_read(db: Database) -> list[str]:
    """Records each statement that reads every zone's serial (a whole pass) from now on."""
    seen: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "zones.serial" in statement and "FROM zones" in statement and "WHERE" not in statement:
            seen.append(statement)

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", executed)
    return seen


async def following(db: Database, index: ZoneIndex) -> tuple[Follower, asyncio.Task[None]]:
    follower = Follower(db, index, interval=POLL)
    await follower.sync()
    return follower, asyncio.create_task(follower.run())


async def test_a_zone_heard_to_move_is_caught_up_by_its_journal_alone(
    db: Database, other: Database
) -> None:
    await zones.add_zone(db, ZONE)
    index = ZoneIndex()
    follower, task = await following(db, index)
    try:
        for i in range(3):
            await change(other, f"h{i}", f"192.0.2.{i + 1}")
        last = await stored_serial(db)
        seen = zones_read(db)
        follower.moved(ZONE, last)
        await until(lambda: index.serial_of(ZONE) == last)
        assert seen == [], "the zones' serials were read for a zone named"
        zone = index.zone(ZONE)
        assert zone is not None
        for i in range(3):
            node = zone.node(dns.name.from_text(f"h{i}.{ZONE}"))
            assert node is not None and dns.rdatatype.A in node
        assert follower.passes == 1 and follower.errors == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_move_without_journal_entries_falls_back_to_reading_every_zone(
    db: Database, other: Database
) -> None:
    await zones.add_zone(db, ZONE, ns=["ns1.example.org"])
    index = ZoneIndex()
    follower, task = await following(db, index)
    try:
        soa = zoneoptions.Soa(
            rname="ops.example.org", ttl=300, negative_ttl=30, refresh=7200, retry=900,
            expire=86400,
        )  # fmt: skip
        # The SOA's values move the serial with no journal entry: the journal is not enough.
        await zoneoptions.set_zone_options(other, ZONE, zoneoptions.ZoneOptions(soa=soa))
        last = await stored_serial(db)
        seen = zones_read(db)
        follower.moved(ZONE, last)
        await until(lambda: index.serial_of(ZONE) == last)
        assert seen, "a whole pass read the zones' serials"
        zone = index.zone(ZONE)
        assert zone is not None and zone.soa()[0].refresh == 7200
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_gap_behind_a_local_commit_is_filled_from_the_journal(
    db: Database, other: Database
) -> None:
    """Another node's commit lands between two of ours: our second one cannot be applied
    alone, and the follower brings the zone up to it, with the other node's change."""
    await zones.add_zone(db, ZONE)
    index = ZoneIndex()
    follower, task = await following(db, index)
    try:
        await change(other, "theirs", "192.0.2.10")
        seen = zones_read(db)
        await change(db, "ours", "192.0.2.20")
        last = await stored_serial(db)
        await until(lambda: index.serial_of(ZONE) == last)
        assert seen == []
        zone = index.zone(ZONE)
        assert zone is not None
        for label in ("theirs", "ours"):
            node = zone.node(dns.name.from_text(f"{label}.{ZONE}"))
            assert node is not None and dns.rdatatype.A in node
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_whole_pass_runs_each_interval_while_zones_keep_moving(
    db: Database, other: Database
) -> None:
    """Notifications without pause still leave room for a whole pass per poll interval:
    a zone deleted meanwhile (which no notification names) stops being served."""
    gone = "gone.example.net"
    await zones.add_zone(db, ZONE)
    await zones.add_zone(db, gone)
    index = ZoneIndex()
    follower = Follower(db, index, interval=0.2)
    await follower.sync()
    task = asyncio.create_task(follower.run())
    try:
        await inventory.delete_zone(other, gone)
        for i in range(int(WAIT / 0.005)):  # bounded: each round a commit and its wake
            if index.zone(gone) is None:
                break
            await change(other, "busy", f"192.0.2.{i % 250 + 1}")
            follower.moved(ZONE, await stored_serial(db))
        assert index.zone(gone) is None, "no whole pass while the wakes kept coming"
        assert index.zone(ZONE) is not None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
