"""A zone's options after its creation: name servers and their addresses, its SOA (contact,
TTLs, timers), secondaries to notify, who may transfer it, whether users are offered it."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import HomingError
from homing.domain.names import in_zone, normalize
from homing.domain.records import RRsetValue
from homing.service import dnssec
from homing.service import zones as zones_service
from homing.service.changes import ZoneRef, apply_change
from homing.service.forms import FormCheck
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
class Soa:
    """SOA values to change (None: as it is). `ttl` is the zone's default TTL and its SOA's,
    and the negative-caching TTL too unless `negative_ttl` is given, as at `zone add`."""

    rname: str | None = None
    ttl: int | None = None
    negative_ttl: int | None = None
    refresh: int | None = None
    retry: int | None = None
    expire: int | None = None

    def empty(self) -> bool:
        return all(v is None for v in vars(self).values())

    def columns(self) -> dict[str, object]:
        """The zones row's columns these values set, checked; HomingError names a bad one."""
        values: dict[str, object] = {}
        if self.rname is not None:
            values["rname"] = normalize(self.rname)
        if self.ttl is not None:
            ttl = zones_service.check_soa_value("--ttl", self.ttl, 1, zones_service.MAX_TTL)
            values.update(default_ttl=ttl, soa_ttl=ttl, minimum=ttl)
        if self.negative_ttl is not None:
            values["minimum"] = zones_service.check_soa_value(
                "--negative-ttl", self.negative_ttl, 0, zones_service.MAX_TTL
            )
        for option in ("refresh", "retry", "expire"):
            value = getattr(self, option)
            if value is not None:
                values[option] = zones_service.check_soa_value(
                    f"--{option}", value, 1, zones_service.MAX_TIMER
                )
        return values


@dataclass(frozen=True)
class Routes:
    """Where the zone's changes go, all at once as the admin page sets them: pushed to an
    external primary (push and push_key, or neither), or, for a secondary zone, pulled
    from its primary (with primary_key, or none); and the key its NOTIFYs are signed with
    (None: unsigned)."""

    push: str | None = None
    push_key: str | None = None
    primary: str | None = None
    primary_key: str | None = None
    notify_key: str | None = None


@dataclass(frozen=True)
class ZoneOptions:
    """What to change; None leaves an option as it is, an empty list clears it."""

    ns: list[str] | None = None
    glue: dict[str, list[str]] | None = None
    notify: list[str] | None = None
    allow_transfer: list[str] | None = None
    public: bool | None = None
    soa: Soa = field(default_factory=Soa)
    routes: Routes | None = None

    def empty(self) -> bool:
        fields = (self.ns, self.glue, self.notify, self.allow_transfer, self.public, self.routes)
        return all(v is None for v in fields) and self.soa.empty()


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
    if options.routes is not None:
        values.update(await _route_values(txn, zone, options.routes))
    soa = options.soa.columns()
    if options.ns:
        soa["mname"] = options.ns[0]  # the SOA names the first name server as the primary
    if values:
        await txn.conn.execute(sa.update(zones).where(zones.c.id == zone.id).values(values))
    if options.ns:
        servers = tuple(n + "." for n in options.ns)
        await apply_change(
            txn, zone, RRsetValue(zone.name, "NS", NS_TTL, servers), actor="operator", via="cli"
        )
    for server, addresses in (options.glue or {}).items():
        await _write_glue(txn, zone, server, addresses)
    await _set_soa(txn, zone, soa)


async def _route_values(txn: Txn, zone: ZoneRef, routes: Routes) -> dict[str, object]:
    row = await zones_service.zone_row(txn.conn, zone.name)
    if row.primary_target is None:
        values = zones_service.push_values(row, routes.push, routes.push_key)
    else:
        values = await zones_service.primary_values(
            txn, row, routes.primary or row.primary_target, routes.primary_key, None
        )
    if routes.notify_key is None:
        values["notify_key"] = None
    else:
        values.update(await zones_service.primary_values(txn, row, None, None, routes.notify_key))
    return values


async def _set_soa(txn: Txn, zone: ZoneRef, values: dict[str, object]) -> None:
    """Change the SOA's values; a change moves the serial, so that secondaries transfer the
    new SOA and every server following the journal reloads the zone (the serial moved with
    no journal entry: the store holds what the zone is now, see journal.Follower)."""
    if not values:
        return
    row = (await txn.conn.execute(sa.select(zones).where(zones.c.id == zone.id))).one()
    changed = {k: v for k, v in values.items() if row._mapping[k] != v}
    if not changed:
        return
    await txn.conn.execute(
        sa.update(zones)
        .where(zones.c.id == zone.id)
        .values({**changed, "serial": zones.c.serial + 1})
    )
    await dnssec.refresh_apex(txn, zone)  # a signed zone's SOA signature follows its values


async def set_zone_options(db: Database, name: str, options: ZoneOptions) -> ZoneRef:
    """Change an existing zone of our own (a secondary zone's records and SOA are its
    primary's: only who it notifies, who may transfer it and whether it is offered)."""
    zone_name = normalize(name)

    async def unit(txn: Txn) -> ZoneRef:
        row = await zones_service.zone_row(txn.conn, zone_name)
        if options.ns or options.glue or not options.soa.empty():
            zone = zones_service.own_records(row, "name servers and SOA")
        else:
            zone = ZoneRef(row.id, row.name)
        await apply_options(txn, zone, options)
        return zone

    return await db.write(unit)


@dataclass(frozen=True)
class NameServers:
    """A zone's NS RRsets (at the apex and at its delegations) and the addresses of names."""

    zone: sa.Row[tuple[object, ...]]  # the zones row
    servers: dict[str, list[str]]  # owner -> its NS targets (lower case, no final dot)
    addresses: dict[str, list[str]]  # owner -> its A and AAAA values

    def lines(self, owner: str) -> list[str]:
        """The name servers of `owner` as NAME, or NAME=ADDRESS for each address of one
        inside the zone (one line each: the admin pages' form)."""
        lines = []
        for server in self.servers.get(owner, []):
            own = sorted(self.addresses.get(server, [])) if in_zone(server, self.zone.name) else []
            lines.extend([f"{server}={a}" for a in own] or [server])
        return lines


async def name_servers(
    conn: AsyncConnection, name: str | None = None, *, zone_id: int | None = None
) -> NameServers:
    """The zone's NS RRsets and every A and AAAA in it, read in one query; NotFound."""
    zone = await zones_service.zone_row(conn, name, zone_id=zone_id)
    rows = await conn.execute(
        sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.rdatas).where(
            rrsets.c.zone_id == zone.id, rrsets.c.rtype.in_(("NS", "A", "AAAA"))
        )
    )
    servers: dict[str, list[str]] = {}
    addresses: dict[str, list[str]] = {}
    for row in rows:
        values = list(RRsetValue.decode_rdatas(row.rdatas))
        if row.rtype == "NS":
            servers[row.name] = [v.rstrip(".").lower() for v in values]
        else:
            addresses.setdefault(row.name, []).extend(values)
    return NameServers(zone, servers, addresses)


async def nameservers_without_address(db: Database, name: str) -> list[str]:
    """The zone's name servers inside the zone itself that have neither A nor AAAA there."""
    zone_name = normalize(name)
    found = await db.read(lambda conn: name_servers(conn, zone_name))
    return [
        s
        for s in found.servers.get(zone_name, [])
        if in_zone(s, zone_name) and s not in found.addresses
    ]


@dataclass(frozen=True)
class ZoneOptionsView:
    """A zone's options as the admin page shows them, one entry per line."""

    id: int
    name: str
    nameservers: list[str]  # NAME, or NAME=ADDRESS for each address of an in-zone one
    notify: list[str]
    allow_transfer: list[str]
    secondary: bool
    soa: Soa
    routes: Routes


async def read_options(db: Database, zone_id: int) -> ZoneOptionsView:
    """The zone's options as the admin page shows them; NotFound for no such zone."""
    found = await db.read(lambda conn: name_servers(conn, zone_id=zone_id))
    zone = found.zone
    return ZoneOptionsView(
        zone.id,
        zone.name,
        found.lines(zone.name),
        [line for line in (zone.notify or "").split("\n") if line],
        [line for line in (zone.allow_transfer or "").split("\n") if line],
        zone.primary_target is not None,
        Soa(zone.rname, zone.default_ttl, zone.minimum, zone.refresh, zone.retry, zone.expire),
        Routes(zone.push_target, zone.push_key, zone.primary_target, zone.primary_key,
               zone.notify_key),
    )  # fmt: skip


SOA_FIELDS = ("rname", "ttl", "negative_ttl", "refresh", "retry", "expire")
ROUTE_FIELDS = ("push", "push_key", "primary", "primary_key", "notify_key")
FORM_FIELDS = ("ns", "notify", "allow_transfer", *SOA_FIELDS, *ROUTE_FIELDS)


def form_lines(text: str) -> list[str]:
    """A form's list: one entry a line (or separated by commas)."""
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _every(lines: list[str], check: Callable[[str], str], what: str) -> list[str]:
    """Each line checked; HomingError names every bad one."""
    bad = []
    for line in lines:
        try:
            check(line)
        except HomingError:
            bad.append(line)
    if bad:
        raise HomingError(f"not {what}: {', '.join(bad)}")
    return lines


def _whole(text: str) -> int:
    if not text.strip().isdigit() or len(text.strip()) > 10:
        raise HomingError(f"a whole number of seconds: {text.strip()!r}")
    return int(text)


def options_from_form(form: Mapping[str, str], *, secondary: bool) -> ZoneOptions:
    """The admin form's fields as options; AdminError names every field at fault. A
    secondary zone's name servers and SOA are its primary's: those fields are not read."""
    check = FormCheck("ZONE_OPTIONS")
    notify = check.field(
        "notify", lambda: _every(form_lines(form.get("notify", "")), _hostport, "an ADDRESS:PORT")
    )
    transfer = check.field(
        "allow_transfer",
        lambda: _every(form_lines(form.get("allow_transfer", "")), _cidr, "an address or network"),
    )
    given = {name: form.get(name, "").strip() or None for name in ROUTE_FIELDS}
    routes = Routes(**given)
    if secondary:
        if routes.primary is not None:
            check.field("primary", lambda: zones_service.check_primary(str(routes.primary)))
        check.done()
        return ZoneOptions(notify=notify, allow_transfer=transfer, routes=routes)
    check.field("push", lambda: zones_service.check_push(routes.push, routes.push_key))
    servers = check.field("ns", lambda: split_nameservers(form_lines(form.get("ns", "")), []))
    if servers is not None and not servers[0]:
        check.refuse("ns", "a zone needs at least one name server")
    numbers: dict[str, int | None] = {}
    for name in SOA_FIELDS[1:]:
        text = form.get(name, "").strip()
        numbers[name] = check.field(name, functools.partial(_whole, text)) if text else None
    rname = form.get("rname", "").strip() or None
    soa = Soa(rname, **numbers)
    for name in SOA_FIELDS:  # each value within its bounds, its error next to its field
        if getattr(soa, name) is not None and name not in check.errors:
            check.field(name, Soa(**{name: getattr(soa, name)}).columns)
    check.done()
    assert servers is not None
    names, addresses = servers
    return ZoneOptions(
        ns=names, glue=addresses or None, notify=notify, allow_transfer=transfer, soa=soa,
        routes=routes,
    )  # fmt: skip
