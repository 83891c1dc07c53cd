"""The operator delegates a subzone to other name servers (a customer's own, or another
homing zone): the NS at the cut and the glue of servers inside the zone, set and removed
through apply_changes, so they are journaled and reach the secondaries."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.rdata
import sqlalchemy as sa

from homing.domain.delegations import AT_CUT_TYPES, GLUE_TYPES
from homing.domain.errors import HomingError, NotFound
from homing.domain.names import in_zone, normalize
from homing.domain.records import RRsetValue
from homing.service import zones as zones_service
from homing.service.changes import apply_changes
from homing.service.zoneoptions import NS_TTL, name_servers, split_nameservers
from homing.store.db import Database, Txn
from homing.store.schema import groups, hosts, rrsets, zones

__all__ = ["Delegated", "Delegations", "delegate", "list_delegations", "undelegate"]


@dataclass(frozen=True)
class Delegated:
    zone: str
    child: str
    servers: tuple[str, ...]
    changed: int  # RRsets changed


def _subtree(column: sa.ColumnElement[str], child: str) -> sa.ColumnElement[bool]:
    """`column` is `child` or a name below it."""
    pattern = "%." + child.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.or_(column == child, column.like(pattern, escape="\\"))


def _child_of(zone_name: str, child: str) -> str:
    name = normalize(child)
    if name == zone_name or not in_zone(name, zone_name):
        raise HomingError(f"{name} is not a name below zone {zone_name}")
    return name


async def delegate(
    db: Database, zone: str, child: str, ns: Sequence[str], ds: Sequence[str] | None = None
) -> Delegated:
    """Hand `child` and every name below it to the servers `ns` (NAME or NAME=ADDRESS),
    and with `ds` publish those DS records for it (an empty list: none); the DS stays as
    it is without.

    A server at or below `child` needs an address (glue, RFC 9471); one inside the zone
    may have one; a user's host or group, or other records, at or below `child` refuse it.
    """
    zone_name = normalize(zone)
    name = _child_of(zone_name, child)
    ds_texts = None if ds is None else _ds_records(name, ds)
    servers, addresses = split_nameservers(ns, ())
    if not servers:
        raise HomingError("give at least one name server with --ns NAME[=ADDRESS]")
    for server in servers:
        if in_zone(server, name) and not addresses.get(server):
            raise HomingError(
                f"{server} lies inside the delegation {name}: give its address (--ns NAME=ADDRESS)"
            )
    for server in addresses:
        if not in_zone(server, zone_name) or server == zone_name:
            raise HomingError(
                f"{server} is not a name inside zone {zone_name}: it needs no address here"
            )

    async def unit(txn: Txn) -> Delegated:
        ref = zones_service.own_records(await zones_service.zone_row(txn.conn, zone_name))
        for table, what in ((hosts, "host"), (groups, "group")):
            taken = await txn.conn.scalar(
                sa.select(table.c.name).where(_subtree(table.c.name, name)).limit(1)
            )
            if taken is not None:
                raise HomingError(f"{taken} is a user's {what} at or below {name}: not delegated")
        glue_names = set(addresses)
        other = (
            await txn.conn.execute(
                sa.select(rrsets.c.name, rrsets.c.rtype)
                .where(rrsets.c.zone_id == ref.id, _subtree(rrsets.c.name, name))
                .order_by(rrsets.c.name, rrsets.c.rtype)
            )
        ).all()
        for row in other:
            # In a signed zone the cut holds the DS's signatures too (the signer's).
            at_cut = row.name == name and (row.rtype in AT_CUT_TYPES or row.rtype == "RRSIG")
            glue = row.name in glue_names and row.rtype in GLUE_TYPES
            if not (at_cut or glue):
                raise HomingError(
                    f"{row.name} {row.rtype} lies at or below {name}: remove it before delegating"
                )
        values = [RRsetValue(name, "NS", NS_TTL, tuple(s + "." for s in servers))]
        for server, given in addresses.items():
            for rtype, version in (("A", 4), ("AAAA", 6)):
                family = {a for a in given if ipaddress.ip_address(a).version == version}
                values.append(RRsetValue(server, rtype, NS_TTL, tuple(sorted(family))))
        if ds_texts is not None:
            # The DS with the zone's default TTL: how long resolvers keep it decides how
            # soon a change of the child's keys may follow a change here.
            ttl = await txn.conn.scalar(sa.select(zones.c.default_ttl).where(zones.c.id == ref.id))
            values.append(RRsetValue(name, "DS", int(ttl or NS_TTL), ds_texts))
        entries = await apply_changes(txn, ref, values, actor="operator", via="cli")
        return Delegated(zone_name, name, tuple(servers), len(entries))

    return await db.write(unit)


def _ds_records(child: str, given: Sequence[str]) -> tuple[str, ...]:
    """DS records as text, each TAG ALGORITHM DIGEST-TYPE DIGEST or a whole zone-file line
    for `child` (as `homing zone ds` prints it); a bad one is refused."""
    out = set()
    for text in given:
        words = text.split()
        if "DS" in words[:4]:
            owner = words[0].rstrip(".").lower()
            if owner != child:
                raise HomingError(f"{text!r} is a DS for {owner}, not {child}")
            words = words[words.index("DS") + 1 :]
        try:
            out.add(dns.rdata.from_text("IN", "DS", " ".join(words)).to_text())
        except (dns.exception.DNSException, ValueError):
            raise HomingError(f"{text!r} is not a DS record (TAG ALGORITHM TYPE DIGEST)") from None
    if len(out) > 16:
        raise HomingError("at most 16 DS records")
    return tuple(sorted(out))


async def undelegate(db: Database, zone: str, child: str) -> Delegated:
    """Remove the delegation of `child`: its NS and DS, and the glue at or below it."""
    zone_name = normalize(zone)
    name = _child_of(zone_name, child)

    async def unit(txn: Txn) -> Delegated:
        ref = zones_service.own_records(await zones_service.zone_row(txn.conn, zone_name))
        rows = (
            await txn.conn.execute(
                sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.rdatas).where(
                    rrsets.c.zone_id == ref.id, _subtree(rrsets.c.name, name)
                )
            )
        ).all()
        ns = next((r for r in rows if r.name == name and r.rtype == "NS"), None)
        if ns is None:
            raise NotFound(f"{name} is not delegated in zone {zone_name}")
        servers = RRsetValue.decode_rdatas(ns.rdatas)
        # What a delegation may hold (domain/delegations.py): the rest is below it only
        # as glue, and goes with it; a name below it is our data again afterwards.
        values = [RRsetValue(r.name, r.rtype, NS_TTL, ()) for r in rows]
        entries = await apply_changes(txn, ref, values, actor="operator", via="cli")
        return Delegated(zone_name, name, tuple(s.rstrip(".") for s in servers), len(entries))

    return await db.write(unit)


@dataclass(frozen=True)
class Delegations:
    """A zone's delegations as the admin page shows them."""

    zone_id: int
    zone: str
    secondary: bool
    # (child, its name servers as NAME or NAME=ADDRESS, one entry per address of a glued one)
    cuts: list[tuple[str, list[str]]]


async def list_delegations(db: Database, zone_id: int) -> Delegations:
    """The zone's delegations and their servers; NotFound for no such zone."""
    found = await db.read(lambda conn: name_servers(conn, zone_id=zone_id))
    zone = found.zone
    cuts = [(child, found.lines(child)) for child in sorted(found.servers) if child != zone.name]
    return Delegations(zone.id, zone.name, zone.primary_target is not None, cuts)
