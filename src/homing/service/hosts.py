"""Hosts and groups: creation with a one-time secret, membership, group records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from homing.domain.addresses import record_address_problem
from homing.domain.errors import Conflict, HomingError, InvalidName, NotFound, QuotaExceeded
from homing.domain.names import is_fqdn, normalize, zone_for
from homing.domain.records import DEFAULT_HOST_TTL, RRsetValue
from homing.service.accounts import find_account
from homing.service.changes import ZoneRef, apply_changes_sync, current_rrset_sync
from homing.service.secrets import hash_secret, new_secret
from homing.service.zones import zone_refs
from homing.store.db import Database, SyncTxn, Txn, as_utc
from homing.store.schema import group_members, groups, hosts, plans, rrsets, zones

ADDRESS_TYPES = ("A", "AAAA")


@dataclass(frozen=True)
class Created:
    """A new host or group and its secret, shown once and never stored in clear."""

    id: int
    name: str
    secret: str


async def _owner_with_plan(txn: Txn, owner: str) -> tuple[int, int | None, int | None]:
    account = await find_account(txn.conn, owner)
    if account is None:
        raise NotFound(f"no user {owner}")
    row = (
        await txn.conn.execute(
            sa.select(plans.c.max_hosts, plans.c.max_groups).where(plans.c.id == account.plan_id)
        )
    ).first()
    return account.id, (row.max_hosts if row else None), (row.max_groups if row else None)


async def _zone_of(txn: Txn, name: str) -> ZoneRef:
    refs = await zone_refs(txn.conn)
    zone_name = zone_for(name, frozenset(refs))
    if zone_name is None or zone_name == name:
        raise NotFound(f"{name} is not in a zone served here")
    return refs[zone_name]


async def _name_taken(txn: Txn, name: str) -> bool:
    for table in (hosts, groups):
        if await txn.conn.scalar(sa.select(table.c.id).where(table.c.name == name)):
            return True
    return False


async def _delegated(txn: Txn, name: str) -> str | None:
    """The zone cut `name` lies at or below (NS below a zone's apex), None when there is none:
    such a name is answered by other servers, so a host or group there would never be seen."""
    labels = name.split(".")
    ancestors = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    return await txn.conn.scalar(
        sa.select(rrsets.c.name)
        .join(zones, zones.c.id == rrsets.c.zone_id)
        .where(rrsets.c.rtype == "NS", rrsets.c.name.in_(ancestors), rrsets.c.name != zones.c.name)
        .limit(1)
    )


async def _check_quota(
    txn: Txn, table: sa.Table, owner_id: int, allowed: int | None, what: str
) -> None:
    """QuotaExceeded when the owner already has `allowed` rows of `table` (None: no limit)."""
    if allowed is None:
        return
    count = await txn.conn.scalar(
        sa.select(sa.func.count()).select_from(table).where(table.c.owner_id == owner_id)
    )
    if (count or 0) >= allowed:
        raise QuotaExceeded(f"the plan allows {allowed} {what}")


async def add_host(
    db: Database, fqdn: str, owner: str, *, ttl: int = DEFAULT_HOST_TTL, enforce_quota: bool = True
) -> Created:
    """A host under one of our zones, owned by `owner`; returns its secret once."""
    name = normalize(fqdn)
    if not is_fqdn(name):
        raise InvalidName(fqdn)
    if not 1 <= ttl <= 86400:
        raise HomingError(f"TTL out of range: {ttl}")
    secret = new_secret()

    async def unit(txn: Txn) -> Created:
        zone = await _zone_of(txn, name)
        owner_id, max_hosts, _ = await _owner_with_plan(txn, owner)
        if await _name_taken(txn, name):
            raise Conflict(f"{name} is taken")
        if cut := await _delegated(txn, name):
            raise Conflict(f"{name} lies in {cut}, which is delegated to other name servers")
        if enforce_quota:
            await _check_quota(txn, hosts, owner_id, max_hosts, "hosts")
        host_id = (
            await txn.conn.execute(
                sa.insert(hosts)
                .values(
                    name=name,
                    zone_id=zone.id,
                    owner_id=owner_id,
                    secret_hash=hash_secret(secret),
                    ttl=ttl,
                    status="active",
                    nochg_count=0,
                    created_at=txn.now,
                )
                .returning(hosts.c.id)
            )
        ).scalar_one()
        return Created(host_id, name, secret)

    return await db.write(unit)


async def add_group(
    db: Database,
    name: str,
    owner: str,
    members: list[str] | None = None,
    *,
    ttl: int = DEFAULT_HOST_TTL,
    enforce_quota: bool = True,
    max_age: int = 3600,
) -> Created:
    """A group of the owner's hosts with its own secret.

    A group named inside one of our zones is published at once: its name answers with
    the addresses of its members updated within `max_age` seconds.
    """
    group_name = normalize(name)
    member_names = [normalize(m) for m in members or []]
    secret = new_secret()

    async def unit(txn: Txn) -> Created:
        owner_id, _, max_groups = await _owner_with_plan(txn, owner)
        refs = await zone_refs(txn.conn)
        zone_name = zone_for(group_name, frozenset(refs))
        if zone_name == group_name:
            raise Conflict(f"{group_name} is a zone apex")
        if await _name_taken(txn, group_name):
            raise Conflict(f"{group_name} is taken")
        if cut := await _delegated(txn, group_name):
            raise Conflict(f"{group_name} lies in {cut}, which is delegated to other name servers")
        if enforce_quota:
            await _check_quota(txn, groups, owner_id, max_groups, "groups")
        group_id = (
            await txn.conn.execute(
                sa.insert(groups)
                .values(
                    owner_id=owner_id,
                    name=group_name,
                    zone_id=refs[zone_name].id if zone_name else None,
                    secret_hash=hash_secret(secret),
                    ttl=ttl,
                    created_at=txn.now,
                )
                .returning(groups.c.id)
            )
        ).scalar_one()
        for member in member_names:
            host_id = await txn.conn.scalar(
                sa.select(hosts.c.id).where(hosts.c.name == member, hosts.c.owner_id == owner_id)
            )
            if host_id is None:
                raise NotFound(f"no host {member} owned by {owner}")
            await txn.conn.execute(
                sa.insert(group_members).values(group_id=group_id, host_id=host_id)
            )
        if zone_name is not None:
            await refresh_group(txn, group_id, max_age)
        return Created(group_id, group_name, secret)

    return await db.write(unit)


async def refresh_group(txn: Txn, group_id: int, max_age: int) -> None:
    """Publish the group's name with the addresses of members updated within `max_age` seconds."""
    await txn.run_sync(lambda sync_txn: refresh_group_sync(sync_txn, group_id, max_age))


def refresh_group_sync(txn: SyncTxn, group_id: int, max_age: int) -> None:
    """refresh_group() for synchronous write code (the update batch)."""
    group = txn.conn.execute(
        sa.select(groups.c.name, groups.c.zone_id, groups.c.ttl).where(groups.c.id == group_id)
    ).first()
    if group is None or group.zone_id is None:
        return
    zone_name = txn.conn.scalar(sa.select(zones.c.name).where(zones.c.id == group.zone_id))
    zone = ZoneRef(group.zone_id, str(zone_name))
    fresh_since = txn.now - timedelta(seconds=max_age)
    members = txn.conn.execute(
        sa.select(hosts.c.name, hosts.c.last_update_at, hosts.c.zone_id)
        .join(group_members, group_members.c.host_id == hosts.c.id)
        .where(group_members.c.group_id == group_id, hosts.c.status == "active")
    )
    live: dict[str, set[str]] = {rtype: set() for rtype in ADDRESS_TYPES}
    for member in members:
        last = as_utc(member.last_update_at)
        if last is None or last < fresh_since:
            continue
        member_zone = ZoneRef(member.zone_id, "")
        for rtype in ADDRESS_TYPES:
            value = current_rrset_sync(txn, member_zone, member.name, rtype)
            if value is not None:
                # A member's row DNS could not serve (an older version's) is not copied:
                # the group's own RRset must stay servable, or its refresh would fail.
                live[rtype].update(
                    text for text in value.rdatas if record_address_problem(rtype, text) is None
                )
    for rtype in ADDRESS_TYPES:
        value = RRsetValue(group.name, rtype, group.ttl, tuple(sorted(live[rtype])))
        apply_changes_sync(txn, zone, [value], actor=f"group:{group.name}", via="group")


async def groups_of_host(txn: Txn, host_id: int) -> list[int]:
    rows = await txn.conn.execute(
        sa.select(group_members.c.group_id).where(group_members.c.host_id == host_id)
    )
    return [row.group_id for row in rows]


async def refresh_all_groups(db: Database, max_age: int) -> None:
    """Age stale members out of every published group (run periodically by `serve`)."""

    async def unit(txn: Txn) -> None:
        ids = await txn.conn.execute(sa.select(groups.c.id).where(groups.c.zone_id.is_not(None)))
        for row in ids.all():
            await refresh_group(txn, row.id, max_age)

    await db.write(unit)
