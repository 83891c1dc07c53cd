"""The last 24 hours of host address changes, hour by hour, for the operator's chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from homing.store.db import Database
from homing.store.schema import journal

HOURS = 24


@dataclass(frozen=True)
class Hourly:
    """Counts per hour, oldest first; `starts[i]` is when hour i began."""

    starts: list[datetime]
    counts: list[int]


async def address_changes_by_hour(db: Database, at: datetime, hours: int = HOURS) -> Hourly:
    """Address changes (A/AAAA set by devices, users and UPDATE) in each of the last
    `hours` hours up to `at`: one pass over the journal's rows of that time, counted
    into the hours by the database (a portable CASE per hour, no date functions)."""
    end = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    starts = [end - timedelta(hours=hours - i) for i in range(hours)]
    buckets = [
        sa.func.coalesce(
            sa.func.sum(
                sa.case(
                    (sa.and_(journal.c.at >= start, journal.c.at < start + timedelta(hours=1)), 1),
                    else_=0,
                )
            ),
            0,
        )
        for start in starts
    ]
    query = sa.select(*buckets).where(
        journal.c.at >= starts[0],
        journal.c.rtype.in_(("A", "AAAA")),
        journal.c.via != "group",
    )

    async def read(conn: Any) -> list[int]:
        row = (await conn.execute(query)).one()
        return [int(value) for value in row]

    return Hourly(starts, await db.read(read))
