"""`homing check`: the stored rows DNS could not serve.

homing commits nothing unservable (apply_changes checks first), but a store edited by
hand or restored from elsewhere may still hold such rows. The zone index skips them when it
loads or follows the journal; this finds them all, so an operator can see and mend them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.records import RRsetValue
from homing.domain.servable import rrset_problem
from homing.store.db import Database, streamable
from homing.store.schema import journal, rrsets, zones

_BATCH = 10_000


@dataclass(frozen=True)
class Unservable:
    """One stored row DNS could not serve, and why."""

    kind: str  # "rrset" (the zone's current data) or "journal" (a change still in effect)
    zone: str
    serial: int  # the journal entry's serial; for an RRset, the zone's current serial
    name: str
    rtype: str
    problem: str

    def to_text(self) -> str:
        """One line naming the row: kind, zone, serial, name, type, then the reason."""
        return (
            f"{self.kind} zone={self.zone} serial={self.serial} "
            f"name={self.name} type={self.rtype}: {self.problem}"
        )


async def _rows(conn: AsyncConnection, query: sa.Select[Any]) -> AsyncIterator[Any]:
    await streamable(conn)
    result = await conn.stream(query)
    async for batch in result.partitions(_BATCH):
        for row in batch:
            yield row


async def unservable_rows(db: Database) -> list[Unservable]:
    """Every stored RRset, and every journal entry no later entry for its RRset replaced,
    whose value could not be served; in zone order."""

    async def read(conn: AsyncConnection) -> list[Unservable]:
        found: list[Unservable] = []
        current = (
            sa.select(
                zones.c.name.label("zone"),
                zones.c.serial,
                rrsets.c.name,
                rrsets.c.rtype,
                rrsets.c.ttl,
                rrsets.c.rdatas,
            )
            .join(zones, zones.c.id == rrsets.c.zone_id)
            .order_by(zones.c.name, rrsets.c.name, rrsets.c.rtype)
        )
        async for row in _rows(conn, current):
            value = RRsetValue(row.name, row.rtype, row.ttl, RRsetValue.decode_rdatas(row.rdatas))
            problem = rrset_problem(value)
            if problem is not None:
                found.append(
                    Unservable("rrset", row.zone, row.serial, row.name, row.rtype, problem)
                )
        # The latest entry of each RRset: what a follower applying the journal ends with.
        latest = (
            sa.select(sa.func.max(journal.c.id).label("id"))
            .group_by(journal.c.zone_id, journal.c.name, journal.c.rtype)
            .subquery()
        )
        entries = (
            sa.select(
                zones.c.name.label("zone"),
                journal.c.serial,
                journal.c.name,
                journal.c.rtype,
                journal.c.ttl,
                journal.c.new,
            )
            .join(latest, latest.c.id == journal.c.id)
            .join(zones, zones.c.id == journal.c.zone_id)
            .order_by(zones.c.name, journal.c.serial)
        )
        async for row in _rows(conn, entries):
            value = RRsetValue(row.name, row.rtype, row.ttl, RRsetValue.decode_rdatas(row.new))
            problem = rrset_problem(value)
            if problem is not None:
                found.append(
                    Unservable("journal", row.zone, row.serial, row.name, row.rtype, problem)
                )
        return found

    return await db.read(read)
