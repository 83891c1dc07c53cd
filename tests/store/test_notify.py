"""PostgreSQL notifications of serial moves: heard by a JournalListener, only for its own
schema, and heard again after its connection is cut."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.service import zones
from homing.store.db import Database
from homing.store.notify import JournalListener
from tests.conftest import _drop_schema, _postgres_database

WAIT = 10.0


@pytest.fixture
async def stores() -> AsyncIterator[tuple[Database, Database]]:
    """Two stores in two schemas of one PostgreSQL database."""
    first = await _postgres_database()
    second = await _postgres_database()
    try:
        yield first, second
    finally:
        for db in (first, second):
            await _drop_schema(db)
            await db.close()


async def test_listener_hears_its_schema_only_and_reconnects(
    stores: tuple[Database, Database],
) -> None:
    mine, other = stores
    woken = asyncio.Queue[None]()
    heard: list[tuple[str, int]] = []

    def known(zone: str, serial: int) -> bool:  # as serve asks its zone index
        heard.append((zone, serial))
        return zone == "known.example.org"

    listener = JournalListener(mine.url, mine.schema, lambda: woken.put_nowait(None), known)
    task = asyncio.create_task(listener.run())

    async def serial_of(zone: str) -> int:
        async with mine.engine.connect() as conn:
            found = await conn.execute(sa.text("SELECT serial FROM zones WHERE name = :n"),
                                       {"n": zone})  # fmt: skip
            return int(found.scalar_one())

    async def until_heard(zone: str) -> None:
        """Wake-ups until the listener heard `zone` at its stored serial."""
        serial = await serial_of(zone)
        while (zone, serial) not in heard:
            await asyncio.wait_for(woken.get(), WAIT)

    try:
        await asyncio.wait_for(woken.get(), WAIT)  # woken once on connect: catch up
        assert listener.connected and listener.notifications == 0

        # A zone in the other schema, then one in ours: notifications arrive in commit
        # order on the one connection, so the other schema's was passed over.
        await zones.add_zone(other, "other.example.org")
        ref = await zones.add_zone(mine, "mine.example.org")
        await until_heard("mine.example.org")
        assert {zone for zone, _ in heard} == {"mine.example.org"}

        # A serial move (not only a new zone) is heard, with the new serial.
        async def bump(conn: AsyncConnection) -> None:
            await conn.execute(sa.text("UPDATE zones SET serial = serial + 1 WHERE id = :id"),
                               {"id": ref.id})  # fmt: skip

        async with mine.engine.begin() as conn:
            await bump(conn)
        await until_heard("mine.example.org")

        # A serial the process answers with already (its own commit) is not passed on.
        await zones.add_zone(mine, "known.example.org")
        await zones.add_zone(mine, "third.example.org")
        await until_heard("third.example.org")
        skipped = [serial for zone, serial in heard if zone == "known.example.org"]
        assert skipped and listener.skipped == len(skipped)
        while not woken.empty():
            woken.get_nowait()

        # The connection is cut: the listener reconnects, wakes the follower for what it
        # may have missed, and hears later moves again.
        async with mine.engine.begin() as conn:
            await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"),
                               {"pid": listener.backend_pid})  # fmt: skip
        await asyncio.wait_for(woken.get(), WAIT)  # the catch-up after reconnecting
        assert listener.connected and listener.reconnects >= 1 and listener.errors >= 1
        async with mine.engine.begin() as conn:
            await bump(conn)
        await until_heard("mine.example.org")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
