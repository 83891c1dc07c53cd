"""Secondary zones in the store: the copy transferred from a primary, kept across restarts.

A secondary zone's RRsets live in the `rrsets` table like our own zones', and its SOA
(the primary's, serial included) in its `zones` row. A transfer is written in one
transaction, outside `apply_change`: the primary numbers the serials, and there is no
journal here to write (nor to follow: the journal follower leaves these zones alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import HomingError
from homing.domain.records import RRsetValue, ZoneMeta
from homing.service.zones import zone_meta
from homing.store.db import Database, Txn
from homing.store.schema import rrsets, zones

__all__ = ["SecondaryCopy", "load_secondaries", "mark_refreshed", "save_transfer"]


@dataclass(frozen=True)
class SecondaryCopy:
    """A secondary zone as stored: where it comes from and the copy we have (if any)."""

    zone: str
    primary: str  # ADDRESS:PORT
    primary_key: str | None
    meta: ZoneMeta
    serial: int
    rrsets: tuple[RRsetValue, ...]
    has_copy: bool  # False until the first transfer
    refreshed_at: float | None
    last_transfer: str | None


async def load_secondaries(conn: AsyncConnection) -> list[SecondaryCopy]:
    """Every secondary zone with its stored copy, read in one snapshot."""
    rows = (await conn.execute(sa.select(zones).where(zones.c.primary_target.is_not(None)))).all()
    copies = []
    for row in rows:
        values = tuple(
            RRsetValue(r.name, r.rtype, r.ttl, RRsetValue.decode_rdatas(r.rdatas))
            for r in await conn.execute(sa.select(rrsets).where(rrsets.c.zone_id == row.id))
        )
        copies.append(
            SecondaryCopy(
                zone=row.name,
                primary=row.primary_target,
                primary_key=row.primary_key,
                meta=zone_meta(row),
                serial=row.serial,
                rrsets=values,
                has_copy=row.last_transfer is not None,
                refreshed_at=row.refreshed_at,
                last_transfer=row.last_transfer,
            )
        )
    return copies


async def save_transfer(
    db: Database,
    meta: ZoneMeta,
    serial: int,
    values: Sequence[RRsetValue],
    *,
    full: bool,
    kind: str,
    at: float,
) -> None:
    """Store one transfer in one transaction: the whole zone (`full`, an AXFR) or the
    changed RRsets (an IXFR; empty rdatas delete one), with the primary's SOA and serial."""

    async def unit(txn: Txn) -> None:
        conn = txn.conn
        zone_id = await conn.scalar(
            sa.select(zones.c.id).where(
                zones.c.name == meta.name, zones.c.primary_target.is_not(None)
            )
        )
        if zone_id is None:
            raise HomingError(f"zone {meta.name} is not a secondary zone here")
        if full:
            await conn.execute(sa.delete(rrsets).where(rrsets.c.zone_id == zone_id))
        elif values:
            await conn.execute(
                sa.delete(rrsets).where(
                    rrsets.c.zone_id == zone_id,
                    rrsets.c.name == sa.bindparam("b_name"),
                    rrsets.c.rtype == sa.bindparam("b_rtype"),
                ),
                [{"b_name": v.name, "b_rtype": v.rtype} for v in values],
            )
        rows = [
            {
                "zone_id": zone_id,
                "name": v.name,
                "rtype": v.rtype,
                "ttl": v.ttl,
                "rdatas": v.encode(),
            }
            for v in values
            if v.rdatas
        ]
        if rows:
            await conn.execute(sa.insert(rrsets), rows)
        await conn.execute(
            sa.update(zones)
            .where(zones.c.id == zone_id)
            .values(
                serial=serial,
                mname=meta.mname.rstrip("."),
                rname=meta.rname.rstrip("."),
                refresh=meta.refresh,
                retry=meta.retry,
                expire=meta.expire,
                minimum=meta.minimum,
                soa_ttl=meta.soa_ttl,
                refreshed_at=at,
                last_transfer=kind,
            )
        )

    await db.write(unit)


async def mark_refreshed(db: Database, zone: str, at: float) -> None:
    """The primary answered and our copy is current: the expire time starts over."""

    async def unit(txn: Txn) -> None:
        await txn.conn.execute(
            sa.update(zones)
            .where(zones.c.name == zone, zones.c.primary_target.is_not(None))
            .values(refreshed_at=at)
        )

    await db.write(unit)
