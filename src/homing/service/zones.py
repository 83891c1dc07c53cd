"""Zones the operator offers: creation with SOA and NS, lookup."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import Conflict, HomingError, NotFound
from homing.domain.names import normalize
from homing.domain.records import RRsetValue, ZoneMeta
from homing.service.changes import ZoneRef, apply_change
from homing.store.db import Database, Txn
from homing.store.schema import zones


def _check_hostport(text: str) -> str:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        valid_port = sep and port.isdigit() and 0 < int(port) < 65536
    except ValueError:
        valid_port = False
    if not valid_port:
        raise HomingError(f"not an ADDRESS:PORT: {text!r}")
    return text


def _check_cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError as exc:
        raise HomingError(f"not an address or network: {text!r}") from exc


async def add_zone(
    db: Database,
    name: str,
    *,
    ns: list[str] | None = None,
    rname: str | None = None,
    notify: list[str] | None = None,
    allow_transfer: list[str] | None = None,
    ttl: int = 60,
    public: bool = True,
    exist_ok: bool = False,
) -> ZoneRef:
    """Create a zone with its NS RRset at the apex (journal serial 1)."""
    zone_name = normalize(name)
    nameservers = [normalize(n) for n in (ns or [f"ns1.{zone_name}"])]
    soa_rname = normalize(rname) if rname else f"hostmaster.{zone_name}"
    notify_list = [_check_hostport(n) for n in notify or []]
    transfer_list = [_check_cidr(c) for c in allow_transfer or []]
    if not 1 <= ttl <= 86400:
        raise HomingError(f"TTL out of range: {ttl}")

    async def unit(txn: Txn) -> ZoneRef:
        existing = await txn.conn.scalar(sa.select(zones.c.id).where(zones.c.name == zone_name))
        if existing is not None:
            if exist_ok:
                return ZoneRef(existing, zone_name)
            raise Conflict(f"zone {zone_name} exists")
        zone_id = (
            await txn.conn.execute(
                sa.insert(zones)
                .values(
                    name=zone_name,
                    serial=0,
                    mname=nameservers[0],
                    rname=soa_rname,
                    refresh=3600,
                    retry=600,
                    expire=1209600,
                    minimum=ttl,
                    soa_ttl=ttl,
                    default_ttl=ttl,
                    public=public,
                    notify="\n".join(notify_list),
                    allow_transfer="\n".join(transfer_list),
                    created_at=txn.now,
                )
                .returning(zones.c.id)
            )
        ).scalar_one()
        zone = ZoneRef(zone_id, zone_name)
        ns_value = RRsetValue(zone_name, "NS", 3600, tuple(n + "." for n in nameservers))
        await apply_change(txn, zone, ns_value, actor="operator", via="cli")
        return zone

    return await db.write(unit)


def zone_meta(row: sa.Row[tuple[object, ...]]) -> ZoneMeta:
    r = row._mapping
    return ZoneMeta(
        name=r["name"],
        mname=r["mname"] + ".",
        rname=r["rname"] + ".",
        refresh=r["refresh"],
        retry=r["retry"],
        expire=r["expire"],
        minimum=r["minimum"],
        soa_ttl=r["soa_ttl"],
    )


async def zone_refs(conn: AsyncConnection) -> dict[str, ZoneRef]:
    """All zones by name."""
    rows = await conn.execute(sa.select(zones.c.id, zones.c.name))
    return {row.name: ZoneRef(row.id, row.name) for row in rows}


async def get_zone(conn: AsyncConnection, name: str) -> ZoneRef:
    row = (
        await conn.execute(sa.select(zones.c.id, zones.c.name).where(zones.c.name == name))
    ).first()
    if row is None:
        raise NotFound(f"no zone {name}")
    return ZoneRef(row.id, row.name)


@dataclass(frozen=True)
class TransferSettings:
    """Who a zone notifies (HOST:PORT) and who may transfer it without a key (CIDR)."""

    zone: str
    notify: tuple[str, ...]
    allow_transfer: tuple[str, ...]


async def transfer_settings(conn: AsyncConnection) -> list[TransferSettings]:
    """Every zone's notify targets and transfer address list (loaded by the DNS server)."""
    rows = await conn.execute(sa.select(zones.c.name, zones.c.notify, zones.c.allow_transfer))
    return [
        TransferSettings(
            r.name,
            tuple(line for line in (r.notify or "").split("\n") if line),
            tuple(line for line in (r.allow_transfer or "").split("\n") if line),
        )
        for r in rows
    ]
