"""A zone's options after its creation: name servers and their addresses, secondaries to
notify, who may transfer it, whether users are offered it."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import HomingError, NotFound
from homing.domain.names import in_zone, normalize
from homing.domain.records import RRsetValue
from homing.service.changes import ZoneRef, apply_change
from homing.store.db import Database, Txn
from homing.store.schema import groups, hosts, rrsets, zones

NS_TTL = 3600


def split_nameservers(
    ns: Sequence[str], glue: Sequence[str]
) -> tuple[list[str], dict[str, list[str]]]:
    """`--ns NAME[=ADDRESS]` and `--glue NAME=ADDRESS` as name servers and their addresses."""
    names: list[str] = []
    addresses: dict[str, list[str]] = {}
    for text, named in [(t, True) for t in ns] + [(t, False) for t in glue]:
        name, sep, address = text.partition("=")
        if not sep and not named:
            raise HomingError(f"--glue takes NAME=ADDRESS: {text!r}")
        server = normalize(name)
        if named and server not in names:
            names.append(server)
        if sep:
            try:
                parsed = ipaddress.ip_address(address.strip())
            except ValueError:
                raise HomingError(f"not an IP address for {server}: {address!r}") from None
            addresses.setdefault(server, []).append(str(parsed))
    return names, addresses


def _hostport(text: str) -> str:
    host, sep, port = text.rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise HomingError(f"--notify: not an ADDRESS:PORT: {text!r}") from None
    if not (sep and port.isdigit() and 0 < int(port) < 65536):
        raise HomingError(f"--notify: not an ADDRESS:PORT: {text!r}")
    return text


def _cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise HomingError(f"--allow-transfer: not an address or network: {text!r}") from None


@dataclass(frozen=True)
class ZoneOptions:
    """What to change; None leaves an option as it is, an empty list clears it."""

    ns: list[str] | None = None
    glue: dict[str, list[str]] | None = None
    notify: list[str] | None = None
    allow_transfer: list[str] | None = None
    public: bool | None = None

    def empty(self) -> bool:
        fields = (self.ns, self.glue, self.notify, self.allow_transfer, self.public)
        return all(v is None for v in fields)


async def _write_glue(txn: Txn, zone: ZoneRef, server: str, addresses: list[str]) -> None:
    if not in_zone(server, zone.name) or server == zone.name:
        raise HomingError(
            f"{server} is not a name inside zone {zone.name}: it needs no address here"
        )
    for table in (hosts, groups):
        taken = await txn.conn.scalar(sa.select(table.c.id).where(table.c.name == server))
        if taken is not None:
            raise HomingError(
                f"{server} is a user's host or group: choose another name server name"
            )
    for rtype, version in (("A", 4), ("AAAA", 6)):
        family = tuple(sorted({a for a in addresses if ipaddress.ip_address(a).version == version}))
        await apply_change(
            txn, zone, RRsetValue(server, rtype, NS_TTL, family), actor="operator", via="cli"
        )


async def apply_options(txn: Txn, zone: ZoneRef, options: ZoneOptions) -> None:
    """Change the zone's options inside the caller's transaction."""
    values: dict[str, object] = {}
    if options.notify is not None:
        values["notify"] = "\n".join(_hostport(n) for n in options.notify)
    if options.allow_transfer is not None:
        values["allow_transfer"] = "\n".join(_cidr(c) for c in options.allow_transfer)
    if options.public is not None:
        values["public"] = options.public
    if values:
        await txn.conn.execute(sa.update(zones).where(zones.c.id == zone.id).values(values))
    if options.ns:
        servers = tuple(n + "." for n in options.ns)
        await apply_change(
            txn, zone, RRsetValue(zone.name, "NS", NS_TTL, servers), actor="operator", via="cli"
        )
    for server, addresses in (options.glue or {}).items():
        await _write_glue(txn, zone, server, addresses)


async def set_zone_options(db: Database, name: str, options: ZoneOptions) -> ZoneRef:
    """Change an existing zone of our own (not a secondary zone: its records are its primary's)."""
    zone_name = normalize(name)

    async def unit(txn: Txn) -> ZoneRef:
        row = (
            await txn.conn.execute(
                sa.select(zones.c.id, zones.c.primary_target).where(zones.c.name == zone_name)
            )
        ).first()
        if row is None:
            raise NotFound(f"no zone {zone_name}")
        if row.primary_target is not None and (options.ns or options.glue):
            raise HomingError(
                f"zone {zone_name} is a secondary zone: its name servers are its primary's"
            )
        zone = ZoneRef(row.id, zone_name)
        await apply_options(txn, zone, options)
        return zone

    return await db.write(unit)


async def nameservers_without_address(db: Database, name: str) -> list[str]:
    """The zone's name servers inside the zone itself that have neither A nor AAAA there."""
    zone_name = normalize(name)

    async def unit(conn: AsyncConnection) -> list[str]:
        rows = await conn.execute(
            sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.rdatas)
            .join(zones, zones.c.id == rrsets.c.zone_id)
            .where(zones.c.name == zone_name, rrsets.c.rtype.in_(("NS", "A", "AAAA")))
        )
        servers: list[str] = []
        addressed: set[str] = set()
        for row in rows:
            if row.rtype != "NS":
                addressed.add(row.name)
            elif row.name == zone_name:
                servers = [r.rstrip(".").lower() for r in RRsetValue.decode_rdatas(row.rdatas)]
        return [s for s in servers if in_zone(s, zone_name) and s not in addressed]

    return await db.read(unit)


@dataclass(frozen=True)
class ZoneOptionsView:
    """A zone's options as the admin page shows them, one entry per line."""

    id: int
    name: str
    nameservers: list[str]  # NAME, or NAME=ADDRESS for each address of an in-zone one
    notify: list[str]
    allow_transfer: list[str]
    secondary: bool


async def read_options(db: Database, zone_id: int) -> ZoneOptionsView:
    async def query(conn: AsyncConnection) -> ZoneOptionsView:
        zone = (await conn.execute(sa.select(zones).where(zones.c.id == zone_id))).first()
        if zone is None:
            raise NotFound("no such zone")
        found = await conn.execute(
            sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.rdatas).where(
                rrsets.c.zone_id == zone_id, rrsets.c.rtype.in_(("NS", "A", "AAAA"))
            )
        )
        servers: list[str] = []
        addresses: dict[str, list[str]] = {}
        for row in found:
            values = list(RRsetValue.decode_rdatas(row.rdatas))
            if row.rtype == "NS" and row.name == zone.name:
                servers = [v.rstrip(".").lower() for v in values]
            elif row.rtype != "NS":
                addresses.setdefault(row.name, []).extend(values)
        lines = []
        for server in servers:
            own = addresses.get(server, []) if in_zone(server, zone.name) else []
            lines.extend([f"{server}={a}" for a in sorted(own)] or [server])
        return ZoneOptionsView(
            zone.id,
            zone.name,
            lines,
            [line for line in (zone.notify or "").split("\n") if line],
            [line for line in (zone.allow_transfer or "").split("\n") if line],
            zone.primary_target is not None,
        )

    return await db.read(query)


def options_from_lines(ns: list[str], notify: list[str], allow_transfer: list[str]) -> ZoneOptions:
    """The admin form's lists (a line each) as options; HomingError names a bad line."""
    names, addresses = split_nameservers(ns, [])
    if not names:
        raise HomingError("a zone needs at least one name server")
    return ZoneOptions(
        ns=names,
        glue=addresses or None,
        notify=[_hostport(n) for n in notify],
        allow_transfer=[_cidr(c) for c in allow_transfer],
    )
