"""Reverse zones: the network a reverse zone's name stands for, and PTRs kept in step with hosts.

A reverse zone with `auto_ptr` gives every host whose A or AAAA address falls inside it
a PTR to the host's name, written by `follow_sync` in the transaction that changed the
address (so journal, serial, NOTIFY and IXFR carry it like any change). Rules:

- The most recent change owns an address's PTR: when two hosts publish one address, the
  PTR names the host whose address was set last.
- When a host's address moves away (or the host goes), the PTR at the old address is
  removed if it still names that host; a PTR naming another host is left alone. It is
  not handed to another host that still has the address: that host gets it back with
  its next address change, or when the operator turns auto-ptr off and on.
- Only host names get PTRs (not groups, wildcards or names set by RFC 2136: a DHCP
  server writes its own PTRs).
- When several auto-ptr reverse zones hold an address (a /24 and a classless /26 inside
  it), the most specific one gets the PTR.

Classless (RFC 2317) zones are named FIRST-LAST.C.B.A.in-addr.arpa, e.g.
0-63.2.0.192.in-addr.arpa for 192.0.2.0/26; the PTR of 192.0.2.5 is then
5.0-63.2.0.192.in-addr.arpa. (The FIRST/BITS form is no host name and is not taken.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import HomingError, NotFound
from homing.domain.names import normalize
from homing.domain.records import JournalEntry, RRsetValue
from homing.service.changes import ZoneRef, apply_changes_sync, current_many_sync
from homing.store.db import Database, SyncTxn, Txn
from homing.store.schema import hosts, rrsets, zones

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

V4_SUFFIX = ".in-addr.arpa"
V6_SUFFIX = ".ip6.arpa"
VIA = "auto-ptr"


@dataclass(frozen=True)
class ReverseZone:
    ref: ZoneRef
    network: IpNetwork
    classless: bool  # an RFC 2317 zone: the PTR's label is the last octet alone

    def ptr_name(self, address: IpAddress) -> str:
        """The owner name of `address`'s PTR in this zone."""
        if self.classless:
            return f"{int(address) & 0xFF}.{self.ref.name}"
        return address.reverse_pointer


def reverse_network(zone_name: str) -> tuple[IpNetwork, bool] | None:
    """The network a reverse zone covers and whether it is classless; None: not a reverse zone."""
    name = zone_name.lower().rstrip(".")
    if name.endswith(V4_SUFFIX):
        labels = name[: -len(V4_SUFFIX)].split(".")
        classless = len(labels) == 4 and "-" in labels[0]
        if classless:
            first, _, last = labels[0].partition("-")
            octets = [*reversed(labels[1:])]
            if not (_octet(first) and _octet(last)) or not all(_octet(o) for o in octets):
                return None
            low, high = int(first), int(last)
            size = high - low + 1
            if size < 1 or size & (size - 1) or low % size:
                return None  # not an aligned block: no CIDR network
            prefix = 32 - size.bit_length() + 1
            text = ".".join([*octets, str(low)]) + f"/{prefix}"
            return ipaddress.ip_network(text), True
        if not 1 <= len(labels) <= 3 or not all(_octet(o) for o in labels):
            return None
        octets = [*reversed(labels)] + ["0"] * (4 - len(labels))
        return ipaddress.ip_network(".".join(octets) + f"/{8 * len(labels)}"), False
    if name.endswith(V6_SUFFIX):
        nibbles = name[: -len(V6_SUFFIX)].split(".")
        if not 1 <= len(nibbles) <= 31 or not all(
            len(n) == 1 and n in "0123456789abcdef" for n in nibbles
        ):
            return None
        hexdigits = "".join(reversed(nibbles)).ljust(32, "0")
        value = int(hexdigits, 16)
        return ipaddress.IPv6Network((value, 4 * len(nibbles))), False
    return None


def _octet(text: str) -> bool:
    return text.isdigit() and len(text) <= 3 and int(text) <= 255 and str(int(text)) == text


def reverse_zone(ref: ZoneRef) -> ReverseZone | None:
    found = reverse_network(ref.name)
    return None if found is None else ReverseZone(ref, *found)


def _best(reverse_zones: Sequence[ReverseZone], address: IpAddress) -> ReverseZone | None:
    best: ReverseZone | None = None
    for zone in reverse_zones:
        inside = address.version == zone.network.version and address in zone.network
        if inside and (best is None or zone.network.prefixlen > best.network.prefixlen):
            best = zone
    return best


_AUTO_ZONES = sa.select(zones.c.id, zones.c.name).where(
    zones.c.auto_ptr.is_(True), zones.c.primary_target.is_(None)
)
_ADDRESS_TYPES = ("A", "AAAA")


def _auto_zones(txn: SyncTxn) -> list[ReverseZone]:
    found = []
    for row in txn.conn.execute(_AUTO_ZONES):
        zone = reverse_zone(ZoneRef(row.id, row.name))
        if zone is not None:
            found.append(zone)
    return found


def follow_sync(txn: SyncTxn, entries: Sequence[JournalEntry]) -> None:
    """Move the PTRs of hosts whose addresses these journal entries changed (see the module)."""
    moved = [e for e in entries if e.rtype in _ADDRESS_TYPES]
    if not moved:
        return
    auto = _auto_zones(txn)
    if not auto:
        return
    names = sorted({e.name for e in moved})
    host_names = set(txn.conn.scalars(sa.select(hosts.c.name).where(hosts.c.name.in_(names))))
    # zone id -> {PTR owner: (the host to name, or None: remove the PTR if it names
    # `host`; host; TTL)}
    plans: dict[int, dict[str, tuple[str | None, str, int]]] = {}
    by_id = {z.ref.id: z for z in auto}
    for entry in moved:
        if entry.name not in host_names:
            continue
        old, new = set(entry.old), set(entry.new)
        for text, target in [(a, None) for a in sorted(old - new)] + [
            (a, entry.name) for a in sorted(new)
        ]:
            address = _address(text)
            zone = None if address is None else _best(auto, address)
            if zone is None or address is None:
                continue
            owner = zone.ptr_name(address)
            if target is None and owner in plans.get(zone.ref.id, {}):
                continue  # set by a later address of this batch
            if target is not None and text in old:
                continue  # unchanged address: its PTR stays whoever owns it
            plans.setdefault(zone.ref.id, {})[owner] = (target, entry.name, entry.ttl)
    for zone_id, wanted in plans.items():
        _write(txn, by_id[zone_id].ref, wanted)


def _write(txn: SyncTxn, zone: ZoneRef, wanted: dict[str, tuple[str | None, str, int]]) -> int:
    """Set or remove the PTRs `wanted` asks for; how many changed."""
    # Two probes per name: every RRset at those names is read (a CNAME there matters).
    probes = [RRsetValue(owner, t, 0) for owner in wanted for t in ("PTR", "CNAME")]
    current = current_many_sync(txn, zone, probes)
    values = []
    for owner, (target, host, ttl) in sorted(wanted.items()):
        stored = current.get((owner, "PTR"))
        if (owner, "CNAME") in current:
            continue  # an RFC 2317 parent's CNAME (or an operator's): no data beside it
        if target is None:
            if stored is not None and stored.rdatas == (f"{host}.",):
                values.append(RRsetValue(owner, "PTR", stored.ttl, ()))
        else:
            values.append(RRsetValue(owner, "PTR", ttl, (f"{target}.",)))
    if not values:
        return 0
    return len(apply_changes_sync(txn, zone, values, actor="auto-ptr", via=VIA, stored=current))


def _address(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _host_addresses(txn: SyncTxn, network: IpNetwork) -> dict[IpAddress, tuple[str, int]]:
    """Each address inside `network` with the host that owns its PTR (the latest change)."""
    rtype = "A" if network.version == 4 else "AAAA"
    rows = txn.conn.execute(
        sa.select(rrsets.c.name, rrsets.c.ttl, rrsets.c.rdatas, hosts.c.last_change_at)
        .select_from(rrsets.join(hosts, hosts.c.name == rrsets.c.name))
        .where(rrsets.c.rtype == rtype)
        .order_by(hosts.c.last_change_at.is_(None).desc(), hosts.c.last_change_at, hosts.c.id)
    )
    owners: dict[IpAddress, tuple[str, int]] = {}
    for row in rows:  # oldest change first: a later host overwrites
        for text in RRsetValue.decode_rdatas(row.rdatas):
            address = _address(text)
            if address is not None and address in network:
                owners[address] = (row.name, row.ttl)
    return owners


def fill_or_clear_sync(txn: SyncTxn, zone: ReverseZone, on: bool) -> int:
    """Give every host address inside `zone` its PTR (`on`), or remove those PTRs."""
    others = [z for z in _auto_zones(txn) if z.ref.id != zone.ref.id]
    wanted: dict[str, tuple[str | None, str, int]] = {}
    for address, (host, ttl) in _host_addresses(txn, zone.network).items():
        best = _best([*others, zone], address)
        if best is not zone:
            continue  # a more specific auto-ptr zone holds it
        wanted[zone.ptr_name(address)] = (host if on else None, host, ttl)
    return _write(txn, zone.ref, wanted)


async def set_auto_ptr(db: Database, name: str | int, on: bool) -> tuple[str, int]:
    """Turn a reverse zone's auto-ptr on (filling the PTRs of existing hosts) or off
    (removing the PTRs that name a host at its own address). `name`: the zone's name or
    id. Returns the zone's name and how many PTRs changed."""
    where = zones.c.id == name if isinstance(name, int) else zones.c.name == normalize(name)

    async def unit(txn: Txn) -> tuple[str, int]:
        row = (
            await txn.conn.execute(
                sa.select(zones.c.id, zones.c.name, zones.c.primary_target).where(where)
            )
        ).first()
        if row is None:
            raise NotFound(f"no zone {name}")
        zone_name = str(row.name)
        zone = reverse_zone(ZoneRef(row.id, zone_name))
        if zone is None:
            raise HomingError(f"{zone_name} is not a reverse zone (in-addr.arpa or ip6.arpa)")
        if row.primary_target is not None:
            raise HomingError(
                f"zone {zone_name} is a secondary zone: its PTRs come from its primary"
            )
        await txn.conn.execute(sa.update(zones).where(zones.c.id == row.id).values(auto_ptr=on))
        count = await txn.run_sync(lambda sync_txn: fill_or_clear_sync(sync_txn, zone, on))
        return zone_name, count

    return await db.write(unit)


def check_reverse(name: str) -> None:
    """HomingError unless `name` is a reverse zone auto-ptr can keep."""
    if reverse_network(normalize(name)) is None:
        raise HomingError(
            f"{name} is not a reverse zone: auto-ptr needs a zone under in-addr.arpa (e.g."
            " 2.0.192.in-addr.arpa, or 0-63.2.0.192.in-addr.arpa for a classless block) or"
            " ip6.arpa"
        )


@dataclass(frozen=True)
class HostPtr:
    address: str
    owner: str  # the PTR's name
    target: str | None  # the name the PTR gives; None: no PTR there


async def host_ptrs(db: Database, host_name: str, addresses: Iterable[str]) -> list[HostPtr]:
    """The PTR at each of a host's addresses in the reverse zones served here."""

    async def query(conn: AsyncConnection) -> list[HostPtr]:
        rows = await conn.execute(
            sa.select(zones.c.id, zones.c.name).where(
                sa.or_(zones.c.name.like("%.in-addr.arpa"), zones.c.name.like("%.ip6.arpa"))
            )
        )
        served = [z for z in (reverse_zone(ZoneRef(r.id, r.name)) for r in rows) if z]
        found = []
        for text in addresses:
            address = _address(text)
            zone = None if address is None else _best(served, address)
            if zone is None or address is None:
                continue
            owner = zone.ptr_name(address)
            value = await conn.scalar(
                sa.select(rrsets.c.rdatas).where(
                    rrsets.c.zone_id == zone.ref.id,
                    rrsets.c.name == owner,
                    rrsets.c.rtype == "PTR",
                )
            )
            targets = RRsetValue.decode_rdatas(value)
            found.append(HostPtr(text, owner, targets[0].rstrip(".") if targets else None))
        return found

    return await db.read(query)
