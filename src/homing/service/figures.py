"""The admin overview's figures: counts read from the store in one snapshot, and the DNS
queries answered per second."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.store.db import Database, now
from homing.store.schema import accounts, hosts, journal, zones


@dataclass(frozen=True)
class Figures:
    accounts: int
    active_accounts: int
    admins: int
    hosts: int
    blocked_hosts: int
    zones: int
    public_zones: int
    changes_last_minute: int  # host address changes in the journal in the last 60 s
    changes_last_hour: int
    updates_last_minute: int  # hosts whose device reported in the last 60 s (good or nochg)
    at: datetime


async def figures(db: Database) -> Figures:
    """Counts for the admin overview, read in one snapshot."""
    at = now()

    async def query(conn: AsyncConnection) -> Figures:
        def count(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
            return sa.select(sa.func.count()).select_from(table).where(*where)

        async def scalar(select: sa.Select[Any]) -> int:
            return int(await conn.scalar(select) or 0)

        minute, hour = at - timedelta(minutes=1), at - timedelta(hours=1)
        # Host addresses as devices, users and UPDATE set them; not zone set-up or groups.
        address_change = sa.and_(journal.c.rtype.in_(("A", "AAAA")), journal.c.via != "group")
        return Figures(
            accounts=await scalar(count(accounts)),
            active_accounts=await scalar(count(accounts, accounts.c.status == "active")),
            admins=await scalar(count(accounts, accounts.c.role == "admin")),
            hosts=await scalar(count(hosts)),
            blocked_hosts=await scalar(count(hosts, hosts.c.status == "blocked")),
            zones=await scalar(count(zones)),
            public_zones=await scalar(count(zones, zones.c.public.is_(True))),
            changes_last_minute=await scalar(
                count(journal, journal.c.at >= minute, address_change)
            ),
            changes_last_hour=await scalar(count(journal, journal.c.at >= hour, address_change)),
            updates_last_minute=await scalar(count(hosts, hosts.c.last_update_at >= minute)),
            at=at,
        )

    return await db.read(query)


# -- DNS queries per second -------------------------------------------------------
#
# `homing serve` reads the DNS responses answered so far, its own and (with --workers)
# the other workers' as they last published them, once a second into a QueryMeter; the
# overview, served by any worker, asks that worker's meter for the change over time.

QUERY_WINDOW = 10.0  # seconds the rate is averaged over


@dataclass(frozen=True)
class QueryRate:
    per_second: float | None  # None: not measured (no DNS server in this process)
    answered: int  # responses since start, over every worker
    window: float  # seconds the rate spans (up to QUERY_WINDOW)
    limited: int = 0  # UDP answers response rate limiting dropped or truncated since start


@dataclass
class QueryMeter:
    """Readings of the total answered, trimmed to the window; sans-I/O."""

    window: float = QUERY_WINDOW
    readings: deque[tuple[float, int]] = field(default_factory=deque)
    limited: int = 0  # the latest total of answers held back by rate limiting

    def add(self, at: float, total: int) -> None:
        if self.readings and total < self.readings[-1][1]:
            # A worker restarted and its count began again: old readings would give a
            # negative rate, so the window starts afresh.
            self.readings.clear()
        self.readings.append((at, total))
        # Keep the newest reading that is at least a window old, so the pair spans it.
        while len(self.readings) > 2 and self.readings[1][0] <= at - self.window:
            self.readings.popleft()

    def rate(self) -> QueryRate:
        if not self.readings:
            return QueryRate(None, 0, 0.0)
        (t0, c0), (t1, c1) = self.readings[0], self.readings[-1]
        span = t1 - t0
        return QueryRate((c1 - c0) / span if span > 0 else 0.0, c1, span, self.limited)
