"""IPv6 prefix hosts: hosts whose AAAA is their router's delegated prefix + an interface id.

A router (any host) whose update carries a prefix (`ip6lanprefix`, `myipv6=P/LEN`)
moves the AAAA of every prefix host that follows it, in the update's own transaction;
its last prefix is kept, so a prefix host added later is addressed at once. A router
and its prefix hosts have one owner; a prefix host is not itself a router.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.actions import iid_problem, parse_iid, with_iid
from homing.domain.errors import Conflict, InvalidAddress, NotFound
from homing.domain.names import normalize
from homing.domain.records import RRsetValue
from homing.service.accounts import user_key
from homing.service.changes import ZoneRef, apply_changes
from homing.store.db import Database, SyncTxn, Txn
from homing.store.schema import accounts, hosts, prefix_hosts, router_prefixes, zones

# With no prefix known yet, an iid must fit the host part of a /64: the LAN prefix
# SLAAC needs, and what routers hand out.
_ASSUMED_PREFIXLEN = 64


class Follower(NamedTuple):
    """A prefix host as its router's update reads it."""

    name: str
    iid: ipaddress.IPv6Address


class PrefixHost(NamedTuple):
    """A prefix host's set-up, as the API and portal show it."""

    router: str
    iid: str
    address: str | None  # the AAAA its router's last prefix gives (None: no prefix yet)


_FOLLOWERS = (
    sa.select(prefix_hosts.c.router_id, prefix_hosts.c.iid, hosts.c.name)
    .join(hosts, hosts.c.id == prefix_hosts.c.host_id)
    .where(prefix_hosts.c.router_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(hosts.c.name)
)
_PREFIXES = sa.select(router_prefixes.c.host_id, router_prefixes.c.prefix).where(
    router_prefixes.c.host_id.in_(sa.bindparam("ids", expanding=True))
)


def followers_sync(
    txn: SyncTxn, router_ids: Iterable[int]
) -> tuple[dict[int, list[Follower]], dict[int, str]]:
    """The prefix hosts of each router (by id), and each router's last prefix."""
    ids = sorted(set(router_ids))
    if not ids:
        return {}, {}
    found: dict[int, list[Follower]] = {}
    for row in txn.conn.execute(_FOLLOWERS, {"ids": ids}):
        found.setdefault(row.router_id, []).append(
            Follower(row.name, ipaddress.IPv6Address(row.iid))
        )
    stored = {row.host_id: row.prefix for row in txn.conn.execute(_PREFIXES, {"ids": ids})}
    return found, stored


def remember_sync(txn: SyncTxn, prefixes: dict[int, str]) -> None:
    """Keep each router's (by id) last prefix."""
    if not prefixes:
        return
    ids = sorted(prefixes)
    txn.conn.execute(sa.delete(router_prefixes).where(router_prefixes.c.host_id.in_(ids)))
    txn.conn.execute(
        sa.insert(router_prefixes),
        [{"host_id": i, "prefix": prefixes[i], "updated_at": txn.now} for i in ids],
    )


def follower_address(prefix: ipaddress.IPv6Network, iid: ipaddress.IPv6Address) -> str | None:
    """The AAAA text of a prefix host under `prefix`; None when its iid does not fit it."""
    try:
        return str(with_iid(prefix, iid))
    except InvalidAddress:
        return None


def moves(
    prefix: ipaddress.IPv6Network,
    followers: Iterable[Follower],
    router: Mapping[str, Any],
    rows: Mapping[str, Mapping[str, Any]],
    rrsets: Mapping[tuple[str, str], RRsetValue],
) -> list[RRsetValue]:
    """The AAAA RRsets of a router's prefix hosts that `prefix` changes, given the update
    batch's host rows and RRsets by name. Only active hosts of the router's owner move; one
    whose interface id does not fit the prefix is left as it is."""
    found = []
    for follower in followers:
        row = rows.get(follower.name)
        if row is None or row["owner_id"] != router["owner_id"] or row["status"] != "active":
            continue
        address = follower_address(prefix, follower.iid)
        if address is None:
            continue
        current = rrsets.get((follower.name, "AAAA"))
        if current is None or current.rdatas != (address,) or current.ttl != row["ttl"]:
            found.append(RRsetValue(follower.name, "AAAA", row["ttl"], (address,)))
    return found


async def _host(txn: Txn, name: str) -> sa.Row[tuple[int, str, int, int, int, str]]:
    row = (
        await txn.conn.execute(
            sa.select(
                hosts.c.id,
                hosts.c.name,
                hosts.c.owner_id,
                hosts.c.zone_id,
                hosts.c.ttl,
                zones.c.name.label("zone_name"),
            )
            .join(zones, zones.c.id == hosts.c.zone_id)
            .where(hosts.c.name == name)
        )
    ).first()
    if row is None:
        raise NotFound(f"no host {name}")
    return row  # type: ignore[return-value]


async def check_prefix_host(db: Database, owner: str, router: str, iid_text: str) -> None:
    """Refuse, before a host is created for it, a prefix set-up set_prefix_host() would
    refuse: an iid that is not one or does not fit, a router that is not `owner`'s host or
    follows a prefix itself."""
    router_name = normalize(router)
    iid = parse_iid(iid_text)

    async def read(conn: AsyncConnection) -> None:
        row = (
            await conn.execute(
                sa.select(hosts.c.id, router_prefixes.c.prefix, prefix_hosts.c.router_id)
                .join(accounts, accounts.c.id == hosts.c.owner_id)
                .outerjoin(router_prefixes, router_prefixes.c.host_id == hosts.c.id)
                .outerjoin(prefix_hosts, prefix_hosts.c.host_id == hosts.c.id)
                .where(hosts.c.name == router_name, accounts.c.user_key == user_key(owner))
            )
        ).first()
        if row is None:
            raise NotFound(f"no host {router_name} of {owner}")
        if row.router_id is not None:
            raise Conflict(f"{router_name} follows a prefix itself: it cannot be a router")
        prefixlen = ipaddress.IPv6Network(row.prefix).prefixlen if row.prefix else None
        problem = iid_problem(iid, prefixlen or _ASSUMED_PREFIXLEN)
        if problem is not None:
            raise InvalidAddress(problem)

    await db.read(read)


async def set_prefix_host(
    db: Database, host: str, router: str, iid_text: str, *, actor: str, via: str
) -> PrefixHost:
    """Make `host` follow `router`'s IPv6 prefix with interface id `iid_text`. Both must
    be hosts of one owner (the caller checks the owner may change `host`). When the
    router's last prefix is known, the host's AAAA is set in the same transaction."""
    host_name, router_name = normalize(host), normalize(router)
    iid = parse_iid(iid_text)
    if host_name == router_name:
        raise Conflict("a host cannot follow its own prefix")

    async def unit(txn: Txn) -> PrefixHost:
        follower = await _host(txn, host_name)
        leader = await _host(txn, router_name)
        if follower.owner_id != leader.owner_id:
            raise NotFound(f"no host {router_name} of the same owner")
        conn = txn.conn
        if await conn.scalar(
            sa.select(prefix_hosts.c.host_id).where(prefix_hosts.c.host_id == leader.id)
        ):
            raise Conflict(f"{router_name} follows a prefix itself: it cannot be a router")
        if await conn.scalar(
            sa.select(prefix_hosts.c.host_id).where(prefix_hosts.c.router_id == follower.id)
        ):
            raise Conflict(f"{host_name} is a router of prefix hosts: it cannot follow one")
        stored = await conn.scalar(
            sa.select(router_prefixes.c.prefix).where(router_prefixes.c.host_id == leader.id)
        )
        prefix = ipaddress.IPv6Network(stored) if stored else None
        problem = iid_problem(iid, prefix.prefixlen if prefix else _ASSUMED_PREFIXLEN)
        if problem is not None:
            raise InvalidAddress(problem)
        await conn.execute(sa.delete(prefix_hosts).where(prefix_hosts.c.host_id == follower.id))
        await conn.execute(
            sa.insert(prefix_hosts).values(host_id=follower.id, router_id=leader.id, iid=str(iid))
        )
        address = follower_address(prefix, iid) if prefix else None
        if address is not None:
            value = RRsetValue(follower.name, "AAAA", follower.ttl, (address,))
            zone = ZoneRef(follower.zone_id, follower.zone_name)
            await apply_changes(txn, zone, [value], actor=actor, via=via)
        return PrefixHost(leader.name, str(iid), address)

    return await db.write(unit)


async def clear_prefix_host(db: Database, host: str) -> bool:
    """`host` no longer follows a prefix (its AAAA stays until changed); False: it did not."""
    name = normalize(host)

    async def unit(txn: Txn) -> bool:
        row = await _host(txn, name)
        result = await txn.conn.execute(
            sa.delete(prefix_hosts).where(prefix_hosts.c.host_id == row.id)
        )
        return bool(result.rowcount)

    return await db.write(unit)


async def prefix_host_of(db: Database, host_id: int) -> PrefixHost | None:
    """The set-up of a prefix host (None: the host does not follow a prefix)."""
    router = hosts.alias("router")

    async def read(conn: AsyncConnection) -> PrefixHost | None:
        row = (
            await conn.execute(
                sa.select(prefix_hosts.c.iid, router.c.name, router_prefixes.c.prefix)
                .join(router, router.c.id == prefix_hosts.c.router_id)
                .outerjoin(router_prefixes, router_prefixes.c.host_id == router.c.id)
                .where(prefix_hosts.c.host_id == host_id)
            )
        ).first()
        if row is None:
            return None
        iid = ipaddress.IPv6Address(row.iid)
        address = follower_address(ipaddress.IPv6Network(row.prefix), iid) if row.prefix else None
        return PrefixHost(row.name, str(iid), address)

    return await db.read(read)
