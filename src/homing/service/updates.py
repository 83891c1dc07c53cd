"""The address update use case behind dyndns2 and the DVR endpoint.

Order of checks per request: credentials, then per host name: syntax, ownership,
status, unchanged (nochg, counted toward abuse), minimum interval, change.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.addresses import AddressSet
from homing.domain.errors import InvalidName
from homing.domain.names import is_fqdn, normalize
from homing.domain.outcomes import Outcome
from homing.domain.records import RRsetValue
from homing.service.accounts import authenticate
from homing.service.changes import ZoneRef, apply_change, current_rrset
from homing.service.hosts import groups_of_host, refresh_group
from homing.service.secrets import secret_matches
from homing.store.db import Database, Txn, as_utc
from homing.store.schema import accounts, group_members, groups, hosts, plans, zones


@dataclass(frozen=True)
class UpdatePolicy:
    """The operator's abuse rules (from Settings)."""

    max_hosts_per_request: int = 20
    abuse_nochg_limit: int = 10
    abuse_window: int = 3600
    group_member_max_age: int = 3600


@dataclass(frozen=True)
class UpdateRequest:
    username: str
    password: str
    hostnames: list[str] | None  # None: the hosts the credentials stand for
    addresses: AddressSet
    via: str  # "dyndns2", "dvr", ...
    client_ip: str
    agent: str = ""


@dataclass(frozen=True)
class HostResult:
    hostname: str
    outcome: Outcome
    addresses: AddressSet = field(default_factory=AddressSet)

    def dyndns2_line(self) -> str:
        if self.outcome.carries_address:
            return f"{self.outcome.dyndns2} {self.addresses.to_text()}"
        return self.outcome.dyndns2


@dataclass(frozen=True)
class _Grant:
    """Which host ids the credentials may update, and which they stand for by default."""

    allowed: frozenset[int]
    default_names: tuple[str, ...]


UNKNOWN_NAME = _Grant(frozenset(), ())  # the user name is a host name we do not know


async def _resolve_credentials(db: Database, username: str, password: str) -> _Grant | None:
    """Host secret, group secret, or account password (in that order); None: badauth.

    UNKNOWN_NAME when the user name is a host name that is neither host, group nor
    account here: the request is about a domain we do not have (nohost), not a bad password.
    """
    try:
        name = normalize(username) if "." in username else None
    except InvalidName:
        name = None

    async def by_secret(conn: AsyncConnection) -> _Grant | None:
        if name is None:
            return None
        host = (
            await conn.execute(
                sa.select(hosts.c.id, hosts.c.secret_hash).where(hosts.c.name == name)
            )
        ).first()
        if host is not None:
            if secret_matches(password, host.secret_hash):
                return _Grant(frozenset({host.id}), (name,))
            return None
        group = (
            await conn.execute(
                sa.select(groups.c.id, groups.c.secret_hash).where(groups.c.name == name)
            )
        ).first()
        if group is not None and secret_matches(password, group.secret_hash):
            rows = await conn.execute(
                sa.select(hosts.c.id, hosts.c.name)
                .join(group_members, group_members.c.host_id == hosts.c.id)
                .where(group_members.c.group_id == group.id)
                .order_by(hosts.c.name)
            )
            members = rows.all()
            return _Grant(frozenset(m.id for m in members), tuple(m.name for m in members))
        return None

    grant = await db.read(by_secret)
    if grant is not None:
        return grant
    account = await authenticate(db, username, password)
    if account is None:
        if name is not None and not await db.read(lambda conn: _name_exists(conn, name)):
            return UNKNOWN_NAME
        return None

    async def owned(conn: AsyncConnection) -> _Grant:
        rows = await conn.execute(sa.select(hosts.c.id).where(hosts.c.owner_id == account.id))
        return _Grant(frozenset(r.id for r in rows), ())

    return await db.read(owned)


async def _name_exists(conn: AsyncConnection, name: str) -> bool:
    for column in (hosts.c.name, groups.c.name):
        if await conn.scalar(sa.select(column).where(column == name)) is not None:
            return True
    return False


async def update(db: Database, request: UpdateRequest, policy: UpdatePolicy) -> list[HostResult]:
    """Apply one update request; one result per requested host, in order."""
    requested = request.hostnames
    if requested is not None and len(requested) > policy.max_hosts_per_request:
        return [HostResult(",".join(requested)[:64], Outcome.NUMHOST)]
    grant = await _resolve_credentials(db, request.username, request.password)
    if grant is None or grant is UNKNOWN_NAME:
        outcome = Outcome.BADAUTH if grant is None else Outcome.NOHOST
        names = requested if requested else [request.username]
        return [HostResult(n, outcome) for n in names]
    if requested is None:
        if not grant.default_names:
            return [HostResult(request.username, Outcome.NOTFQDN)]
        requested = list(grant.default_names)
    if not requested:
        return [HostResult("", Outcome.NOTFQDN)]

    async def unit(txn: Txn) -> list[HostResult]:
        return [await _update_one(txn, name, grant, request, policy) for name in requested]

    return await db.write(unit)


async def _update_one(
    txn: Txn, hostname: str, grant: _Grant, request: UpdateRequest, policy: UpdatePolicy
) -> HostResult:
    try:
        name = normalize(hostname)
    except InvalidName:
        return HostResult(hostname, Outcome.NOTFQDN)
    if not is_fqdn(name):
        return HostResult(hostname, Outcome.NOTFQDN)
    conn = txn.conn
    row = (
        await conn.execute(
            sa.select(hosts, zones.c.name.label("zone_name"), plans.c.min_interval)
            .join(zones, zones.c.id == hosts.c.zone_id)
            .join(accounts, accounts.c.id == hosts.c.owner_id)
            .outerjoin(plans, plans.c.id == accounts.c.plan_id)
            .where(hosts.c.name == name)
        )
    ).first()
    if row is None or row.id not in grant.allowed:
        return HostResult(hostname, Outcome.NOHOST)
    if row.status == "blocked":
        return await _record(txn, row.id, request, Outcome.ABUSE, hostname)
    if row.status != "active":
        return await _record(txn, row.id, request, Outcome.DISABLED, hostname)

    zone = ZoneRef(row.zone_id, row.zone_name)
    wanted: list[RRsetValue] = []
    for rtype, address in (("A", request.addresses.ipv4), ("AAAA", request.addresses.ipv6)):
        if address is None:
            continue  # one family's update never touches the other
        current = await current_rrset(txn, zone, name, rtype)
        value = RRsetValue(name, rtype, row.ttl, (str(address),))
        if current is None or current.encode() != value.encode() or current.ttl != value.ttl:
            wanted.append(value)

    now = txn.now
    if not wanted:
        return await _nochg(txn, row, request, policy, hostname)
    last_change = as_utc(row.last_change_at)
    min_interval = row.min_interval or 0
    if last_change is not None and now - last_change < timedelta(seconds=min_interval):
        return await _record(txn, row.id, request, Outcome.TOO_SOON, hostname)
    for value in wanted:
        await apply_change(txn, zone, value, actor=_actor(request), via=request.via)
    await conn.execute(
        sa.update(hosts)
        .where(hosts.c.id == row.id)
        .values(
            last_update_at=now,
            last_change_at=now,
            last_client_ip=request.client_ip[:45],
            last_via=request.via,
            last_agent=request.agent[:255],
            last_result=Outcome.GOOD.name,
            nochg_count=0,
            nochg_window_start=None,
        )
    )
    for group_id in await groups_of_host(txn, row.id):
        await refresh_group(txn, group_id, policy.group_member_max_age)
    return HostResult(hostname, Outcome.GOOD, request.addresses)


async def _nochg(
    txn: Txn,
    row: sa.Row[tuple[object, ...]],
    request: UpdateRequest,
    policy: UpdatePolicy,
    hostname: str,
) -> HostResult:
    """Unchanged address: answered nochg, counted; past the limit in the window, blocked."""
    r = row._mapping
    now = txn.now
    window_start = as_utc(r["nochg_window_start"])
    count = r["nochg_count"]
    if window_start is None or now - window_start > timedelta(seconds=policy.abuse_window):
        window_start, count = now, 0
    count += 1
    blocked = count > policy.abuse_nochg_limit
    outcome = Outcome.ABUSE if blocked else Outcome.NOCHG
    await txn.conn.execute(
        sa.update(hosts)
        .where(hosts.c.id == r["id"])
        .values(
            status="blocked" if blocked else r["status"],
            nochg_count=count,
            nochg_window_start=window_start,
            last_update_at=now,
            last_client_ip=request.client_ip[:45],
            last_via=request.via,
            last_agent=request.agent[:255],
            last_result=outcome.name,
        )
    )
    if blocked:
        for group_id in await groups_of_host(txn, r["id"]):
            await refresh_group(txn, group_id, policy.group_member_max_age)
        return HostResult(hostname, Outcome.ABUSE)
    return HostResult(hostname, Outcome.NOCHG, request.addresses)


async def _record(
    txn: Txn, host_id: int, request: UpdateRequest, outcome: Outcome, hostname: str
) -> HostResult:
    """Remember a refused request's result for the status screen; nothing else changes."""
    await txn.conn.execute(
        sa.update(hosts)
        .where(hosts.c.id == host_id)
        .values(last_result=outcome.name, last_client_ip=request.client_ip[:45])
    )
    return HostResult(hostname, outcome)


def _actor(request: UpdateRequest) -> str:
    return f"{request.username[:64]}@{request.client_ip}"


def source_addresses(client_ip: str) -> AddressSet:
    """The request's own source address, used when no address is given."""
    return AddressSet.of(ipaddress.ip_address(client_ip))
