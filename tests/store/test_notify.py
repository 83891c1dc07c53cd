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
    listener = JournalListener(mine.url, mine.schema, lambda: woken.put_nowait(None))
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(woken.get(), WAIT)  # woken once on connect: catch up
        assert listener.connected and listener.notifications == 0

        # A zone in the other schema, then one in ours: notifications arrive in commit
        # order on the one connection, so ours arriving with the count at 1 shows the
        # other schema's was not counted.
        await zones.add_zone(other, "other.example.org")
        ref = await zones.add_zone(mine, "mine.example.org")
        await asyncio.wait_for(woken.get(), WAIT)
        assert listener.notifications == 1

        # A serial move (not only a new zone) is heard.
        async def bump(conn: AsyncConnection) -> None:
            await conn.execute(sa.text("UPDATE zones SET serial = serial + 1 WHERE id = :id"),
                               {"id": ref.id})  # fmt: skip

        async with mine.engine.begin() as conn:
            await bump(conn)
        await asyncio.wait_for(woken.get(), WAIT)
        assert listener.notifications == 2

        # The connection is cut: the listener reconnects, wakes the follower for what it
        # may have missed, and hears later moves again.
        async with mine.engine.begin() as conn:
            await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"),
                               {"pid": listener.backend_pid})  # fmt: skip
        await asyncio.wait_for(woken.get(), WAIT)  # the catch-up after reconnecting
        assert listener.connected and listener.reconnects >= 1 and listener.errors >= 1
        async with mine.engine.begin() as conn:
            await bump(conn)
        await asyncio.wait_for(woken.get(), WAIT)
        assert listener.notifications == 3
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
