"""The leader's expiry pass as `homing serve` runs it: challenge values older than their
lifetime go, through the journal; younger ones and other records stay."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from homing import serve
from homing.config import Settings
from homing.service import accounts, challenges, hosts, zones
from homing.service.context import Homing
from homing.store.db import Database
from homing.store.schema import journal, rrsets

HOST = "cam.dyn.example.net"
OLD = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
YOUNG = "Gk3nb7PWl0cHs6xkO1XxmR0PpQeMqFgTzV2dYq8lZ1c"


async def txt_names(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(sa.select(rrsets.c.name).where(rrsets.c.rtype == "TXT"))
        return {r.name for r in rows}


async def test_the_leaders_pass_expires_old_challenges_only(db: Database) -> None:
    await zones.add_zone(db, "dyn.example.net")
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    old = await hosts.add_host(db, HOST, "alice")
    young = await hosts.add_host(db, f"web.{HOST.split('.', 1)[1]}", "alice")
    await challenges.set_value(db, old.id, OLD, actor="test")
    await challenges.set_value(db, young.id, YOUNG, actor="test")
    async with db.engine.begin() as conn:  # the old one was set two hours ago
        at = await conn.scalar(sa.select(sa.func.max(journal.c.at)))
        await conn.execute(
            sa.update(journal)
            .where(journal.c.name == f"_acme-challenge.{HOST}")
            .values(at=at - timedelta(hours=2))
        )
    expired = asyncio.Event()
    db.on_commit.append(lambda _entries: expired.set())
    homing = Homing(Settings(acme_challenge_lifetime=3600, acme_expiry_interval=0.01), db)
    task = asyncio.create_task(serve._expire_challenges(homing))
    try:
        await asyncio.wait_for(expired.wait(), timeout=10)
    finally:
        task.cancel()
    assert await txt_names(db) == {"_acme-challenge.web.dyn.example.net"}
