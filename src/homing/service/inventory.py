"""What the operator's command line lists and removes: hosts, accounts, groups, zones."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import Conflict, NotFound
from homing.domain.names import normalize
from homing.service import accounts as account_service
from homing.service.portal import remove_host
from homing.service.secrets import hash_password
from homing.store.db import Database, Txn
from homing.store.schema import (
    accounts,
    group_members,
    groups,
    hosts,
    journal,
    rrsets,
    tsig_key_zones,
    tsig_keys,
    zones,
)


def as_json(row: object) -> dict[str, Any]:
    """A row as JSON-ready values (times as ISO 8601 text)."""
    values = asdict(row)  # type: ignore[call-overload]
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


@dataclass(frozen=True)
class HostRow:
    name: str
    owner: str
    status: str
    addresses: list[str]
    last_update: datetime | None


async def list_hosts(db: Database, owner: str | None = None) -> list[HostRow]:
    """Every host (or one user's), with the addresses it answers now."""

    async def query(conn: AsyncConnection) -> list[HostRow]:
        select = (
            sa.select(hosts.c.name, hosts.c.zone_id, hosts.c.status, hosts.c.last_update_at)
            .add_columns(accounts.c.user_id)
            .join(accounts, accounts.c.id == hosts.c.owner_id)
            .order_by(hosts.c.name)
        )
        if owner is not None:
            select = select.where(accounts.c.user_key == account_service.user_key(owner))
        rows = (await conn.execute(select)).all()
        addresses: dict[str, list[str]] = {}
        found = await conn.execute(
            sa.select(rrsets.c.name, rrsets.c.rdatas)
            .join(
                hosts, sa.and_(hosts.c.name == rrsets.c.name, hosts.c.zone_id == rrsets.c.zone_id)
            )
            .where(rrsets.c.rtype.in_(("A", "AAAA")))
        )
        for name, rdatas in found:
            addresses.setdefault(name, []).extend((rdatas or "").split("\n"))
        return [
            HostRow(
                r.name, r.user_id, r.status, sorted(addresses.get(r.name, [])), r.last_update_at
            )
            for r in rows
        ]

    return await db.read(query)


async def delete_host(db: Database, name: str, *, group_max_age: int) -> str:
    """Remove a host with its records and group memberships (its name)."""
    host_name = normalize(name)

    async def unit(txn: Txn) -> str:
        row = (
            await txn.conn.execute(
                sa.select(hosts.c.id, hosts.c.owner_id).where(hosts.c.name == host_name)
            )
        ).first()
        if row is None:
            raise NotFound(f"no host {host_name}")
        return await remove_host(
            txn, row.id, row.owner_id, actor="operator", group_max_age=group_max_age, via="cli"
        )

    return await db.write(unit)


@dataclass(frozen=True)
class UserRow:
    user: str
    email: str
    role: str
    status: str
    hosts: int
    created: datetime | None


async def list_users(db: Database) -> list[UserRow]:
    async def query(conn: AsyncConnection) -> list[UserRow]:
        counts = (
            sa.select(hosts.c.owner_id, sa.func.count().label("n"))
            .group_by(hosts.c.owner_id)
            .subquery()
        )
        rows = await conn.execute(
            sa.select(accounts, sa.func.coalesce(counts.c.n, 0).label("host_count"))
            .outerjoin(counts, counts.c.owner_id == accounts.c.id)
            .order_by(accounts.c.user_key)
        )
        return [
            UserRow(r.user_id, r.email, r.role, r.status, r.host_count, r.created_at) for r in rows
        ]

    return await db.read(query)


async def set_password(db: Database, user: str, password: str) -> str:
    """A new password for the account (the sign-up rules apply); its portal sessions end."""
    key = account_service.user_key(user)
    found = await db.read(lambda conn: account_service.find_account(conn, user))
    if found is None:
        raise NotFound(f"no user {user}")
    account_service.check_password(password, None, found.user_id)
    password_hash = await hash_password(password)

    async def unit(txn: Txn) -> str:
        await txn.conn.execute(
            sa.update(accounts)
            .where(accounts.c.user_key == key)
            .values(password_hash=password_hash, session_epoch=accounts.c.session_epoch + 1)
        )
        return found.user_id

    return await db.write(unit)


@dataclass(frozen=True)
class GroupRow:
    name: str
    owner: str
    published: bool
    members: list[str]


async def list_groups(db: Database) -> list[GroupRow]:
    async def query(conn: AsyncConnection) -> list[GroupRow]:
        rows = (
            await conn.execute(
                sa.select(groups.c.id, groups.c.name, groups.c.zone_id, accounts.c.user_id)
                .join(accounts, accounts.c.id == groups.c.owner_id)
                .order_by(groups.c.name)
            )
        ).all()
        members: dict[int, list[str]] = {}
        for group_id, host in await conn.execute(
            sa.select(group_members.c.group_id, hosts.c.name).join(
                hosts, hosts.c.id == group_members.c.host_id
            )
        ):
            members.setdefault(group_id, []).append(host)
        return [
            GroupRow(r.name, r.user_id, r.zone_id is not None, sorted(members.get(r.id, [])))
            for r in rows
        ]

    return await db.read(query)


@dataclass(frozen=True)
class ZoneContents:
    name: str
    rrsets: int
    keys: int
    history: int  # journal entries
    hosts: int
    groups: int


async def zone_contents(db: Database, name: str) -> ZoneContents:
    """What deleting the zone would remove; NotFound for no such zone."""
    zone_name = normalize(name)

    async def query(conn: AsyncConnection) -> ZoneContents:
        zone_id = await conn.scalar(sa.select(zones.c.id).where(zones.c.name == zone_name))
        if zone_id is None:
            raise NotFound(f"no zone {zone_name}")
        counts = [
            int(await conn.scalar(sa.select(sa.func.count()).where(where)) or 0)
            for where in (
                rrsets.c.zone_id == zone_id,
                tsig_keys.c.zone_id == zone_id,
                journal.c.zone_id == zone_id,
                hosts.c.zone_id == zone_id,
                groups.c.zone_id == zone_id,
            )
        ]
        return ZoneContents(zone_name, *counts)

    return await db.read(query)


async def delete_zone(db: Database, name: str) -> str:
    """Remove a zone with no hosts or groups left, its records, journal and keys."""
    zone_name = normalize(name)

    async def unit(txn: Txn) -> str:
        zone_id = await txn.conn.scalar(sa.select(zones.c.id).where(zones.c.name == zone_name))
        if zone_id is None:
            raise NotFound(f"no zone {zone_name}")
        for table, what in ((hosts, "hosts"), (groups, "groups")):
            count = await txn.conn.scalar(
                sa.select(sa.func.count()).where(table.c.zone_id == zone_id)
            )
            if count:
                raise Conflict(f"zone {zone_name} still has {count} {what}: delete them first")
        await txn.conn.execute(sa.delete(tsig_key_zones).where(tsig_key_zones.c.zone_id == zone_id))
        await txn.conn.execute(sa.delete(tsig_keys).where(tsig_keys.c.zone_id == zone_id))
        await txn.conn.execute(sa.delete(journal).where(journal.c.zone_id == zone_id))
        await txn.conn.execute(sa.delete(rrsets).where(rrsets.c.zone_id == zone_id))
        await txn.conn.execute(sa.delete(zones).where(zones.c.id == zone_id))
        return zone_name

    return await db.write(unit)
