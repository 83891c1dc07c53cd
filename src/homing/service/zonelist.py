"""The zones as the admin pages show them: the list with host counts, a zone created from
the form (every field at fault named at once), a zone offered to users or not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import Conflict, InvalidName, NotFound
from homing.domain.names import normalize
from homing.service import reverse
from homing.service.forms import AdminError, FormCheck
from homing.service.zones import add_zone
from homing.store.db import Database, Txn, as_utc
from homing.store.schema import hosts, zones


@dataclass(frozen=True)
class ZoneRow:
    id: int
    name: str
    public: bool
    serial: int
    hosts: int
    created_at: datetime | None
    auto_ptr: bool = False
    reverse: bool = False  # a reverse zone (in-addr.arpa, ip6.arpa): auto-ptr may be on


async def list_zones(db: Database) -> list[ZoneRow]:
    async def query(conn: AsyncConnection) -> list[ZoneRow]:
        counts = (
            sa.select(hosts.c.zone_id, sa.func.count().label("n"))
            .group_by(hosts.c.zone_id)
            .subquery()
        )
        rows = await conn.execute(
            sa.select(zones, sa.func.coalesce(counts.c.n, 0).label("host_count"))
            .outerjoin(counts, counts.c.zone_id == zones.c.id)
            .order_by(zones.c.name)
        )
        return [
            ZoneRow(
                r.id,
                r.name,
                bool(r.public),
                r.serial,
                r.host_count,
                as_utc(r.created_at),
                bool(r.auto_ptr),
                reverse.reverse_network(r.name) is not None,
            )
            for r in rows
        ]

    return await db.read(query)


async def create_zone(db: Database, name: str, nameservers: list[str], public: bool) -> str:
    """A new zone from the admin page (SOA and NS through apply_change); its normalised name.
    AdminError names every field at fault."""
    check = FormCheck("ZONE_INVALID")
    if not name.strip():
        check.refuse("name", "Enter the zone's name, e.g. dyn.example.net.")
    elif not _valid_name(name):
        check.refuse("name", f"Not a valid DNS name: {name.strip()}")
    bad = [n for n in nameservers if n and not _valid_name(n)]
    if bad:
        check.refuse("ns", f"Not a valid DNS name: {', '.join(bad)}")
    check.done()
    try:
        zone = await add_zone(
            db, name.strip(), ns=[n for n in nameservers if n] or None, public=public
        )
    except Conflict as exc:
        raise AdminError("ZONE_DUPLICATE", "That zone exists already.", "name") from exc
    return zone.name


def _valid_name(text: str) -> bool:
    try:
        normalize(text.strip())
    except InvalidName:
        return False
    return True


async def set_zone_public(db: Database, zone_id: int, public: bool) -> str:
    """Offer the zone to users (or stop offering it: existing hosts stay)."""

    async def unit(txn: Txn) -> str:
        name = await txn.conn.scalar(
            sa.update(zones)
            .where(zones.c.id == zone_id)
            .values(public=public)
            .returning(zones.c.name)
        )
        if name is None:
            raise NotFound("no such zone")
        return str(name)

    return await db.write(unit)
