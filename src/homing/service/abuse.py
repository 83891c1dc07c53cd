"""Hosts blocked for abuse: the operator's list, and lifting a block (the operator's, or
the owner's own within the plan's limit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import NotFound
from homing.service.hosts import groups_of_host, refresh_group
from homing.store.db import Database, Txn, as_utc
from homing.store.schema import accounts, hosts


async def refresh_groups_of(txn: Txn, host_ids: list[int], max_age: int) -> None:
    """Recompute the groups these hosts are members of (after their status changed)."""
    group_ids: set[int] = set()
    for host_id in host_ids:
        group_ids.update(await groups_of_host(txn, host_id))
    for group_id in sorted(group_ids):
        await refresh_group(txn, group_id, max_age)


@dataclass(frozen=True)
class BlockedHost:
    id: int
    name: str
    owner: str
    last_client_ip: str | None
    blocked_at: datetime | None  # the request that tipped it over
    last_agent: str | None
    nochg_count: int


async def blocked_hosts(db: Database) -> list[BlockedHost]:
    async def query(conn: AsyncConnection) -> list[BlockedHost]:
        rows = await conn.execute(
            sa.select(hosts, accounts.c.user_id.label("owner"))
            .join(accounts, accounts.c.id == hosts.c.owner_id)
            .where(hosts.c.status == "blocked")
            .order_by(hosts.c.last_update_at.desc(), hosts.c.name)
            .limit(500)
        )
        return [
            BlockedHost(
                r.id,
                r.name,
                r.owner,
                r.last_client_ip,
                as_utc(r.last_update_at),
                r.last_agent,
                r.nochg_count,
            )
            for r in rows
        ]

    return await db.read(query)


async def unblock(txn: Txn, host_id: int, owner_id: int | None, group_max_age: int) -> str:
    """Set a blocked host active again with a fresh abuse count (inside a write); its name."""
    where = [hosts.c.id == host_id, hosts.c.status == "blocked"]
    if owner_id is not None:
        where.append(hosts.c.owner_id == owner_id)
    values: dict[str, object] = {
        "status": "active",
        "nochg_count": 0,
        "nochg_window_start": None,
        "last_result": None,
    }
    if owner_id is not None:
        values["unblocked_at"] = txn.now
    name = await txn.conn.scalar(
        sa.update(hosts).where(*where).values(**values).returning(hosts.c.name)
    )
    if name is None:
        raise NotFound("no such blocked host")
    await refresh_groups_of(txn, [host_id], group_max_age)
    return str(name)


async def unblock_host(db: Database, host_id: int, *, group_max_age: int) -> str:
    """The operator lifts an abuse block; the host's name."""
    return await db.write(lambda txn: unblock(txn, host_id, None, group_max_age))
