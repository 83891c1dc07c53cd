"""A user's groups: create (secret shown once), members in and out, delete.

A group named under an offered zone is published: its name answers with the
addresses of its live members, refreshed through refresh_group (apply_change) each
time the members change. An unpublished group is only a login for updating all
its members with one secret.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import Conflict, InvalidName, NotFound, QuotaExceeded
from homing.domain.names import is_fqdn, normalize, zone_for
from homing.domain.records import RRsetValue
from homing.service import hosts as host_service
from homing.service.accounts import Account
from homing.service.changes import ZoneRef, apply_change
from homing.service.portal import PortalError, check_name_free, host_name
from homing.service.secrets import hash_secret, new_secret
from homing.service.zones import zone_refs
from homing.store.db import Database, Txn
from homing.store.schema import group_members, groups, hosts, rrsets, zones

ADDRESS_TYPES = ("A", "AAAA")


@dataclass(frozen=True)
class Member:
    id: int
    name: str


@dataclass(frozen=True)
class GroupView:
    id: int
    name: str
    zone: str | None  # None: not published
    members: tuple[Member, ...]
    addresses: tuple[str, ...]  # what the published name answers now


async def _views(conn: AsyncConnection, where: sa.ColumnElement[bool]) -> list[GroupView]:
    rows = (
        await conn.execute(
            sa.select(groups.c.id, groups.c.name, groups.c.zone_id, zones.c.name.label("zone"))
            .outerjoin(zones, zones.c.id == groups.c.zone_id)
            .where(where)
            .order_by(groups.c.name)
        )
    ).all()
    views = []
    for row in rows:
        members = await conn.execute(
            sa.select(hosts.c.id, hosts.c.name)
            .join(group_members, group_members.c.host_id == hosts.c.id)
            .where(group_members.c.group_id == row.id)
            .order_by(hosts.c.name)
        )
        addresses: tuple[str, ...] = ()
        if row.zone_id is not None:
            records = await conn.execute(
                sa.select(rrsets.c.rtype, rrsets.c.rdatas)
                .where(
                    rrsets.c.zone_id == row.zone_id,
                    rrsets.c.name == row.name,
                    rrsets.c.rtype.in_(ADDRESS_TYPES),
                )
                .order_by(rrsets.c.rtype)
            )
            for record in records:
                addresses += RRsetValue.decode_rdatas(record.rdatas)
        views.append(
            GroupView(
                row.id,
                row.name,
                row.zone,
                tuple(Member(m.id, m.name) for m in members),
                addresses,
            )
        )
    return views


async def list_groups(db: Database, account: Account) -> list[GroupView]:
    """The account's groups with their members and published addresses."""
    return await db.read(lambda conn: _views(conn, groups.c.owner_id == account.id))


async def get_group(db: Database, account: Account, group_id: int) -> GroupView | None:
    """One of the account's groups, or None (another user's is as absent as a missing one)."""
    found = await db.read(
        lambda conn: _views(conn, sa.and_(groups.c.id == group_id, groups.c.owner_id == account.id))
    )
    return found[0] if found else None


async def _unpublished_name(conn: AsyncConnection, text: str) -> str:
    try:
        name = normalize(text)
    except InvalidName as exc:
        raise PortalError("GROUP_NAME_INVALID", "Enter a name like office.alice.", "name") from exc
    if not is_fqdn(name):
        raise PortalError(
            "GROUP_NAME_INVALID", "A group's name has at least one dot, e.g. office.alice.", "name"
        )
    if zone_for(name, frozenset(await zone_refs(conn))) is not None:
        raise PortalError(
            "GROUP_NAME_INVALID",
            "That name is inside a zone served here; choose “published” and a zone instead.",
            "name",
        )
    return name


async def create_group(
    db: Database,
    account: Account,
    label: str,
    zone: str,
    member_ids: list[int],
    *,
    group_max_age: int,
) -> host_service.Created:
    """A group `label.zone` (published) or `label` (zone empty: unpublished); secret once."""
    if zone:
        name = host_name(label, zone)
        await db.read(lambda conn: check_name_free(conn, name))
    else:
        name = await db.read(lambda conn: _unpublished_name(conn, label))

    async def member_names(conn: AsyncConnection) -> list[str]:
        if not member_ids:
            return []
        rows = await conn.scalars(
            sa.select(hosts.c.name).where(
                hosts.c.id.in_(member_ids), hosts.c.owner_id == account.id
            )
        )
        names = list(rows.all())
        if len(names) != len(set(member_ids)):
            raise PortalError("GROUP_MEMBER_INVALID", "Choose among your own hosts.", "members")
        return names

    members = await db.read(member_names)
    try:
        created = await host_service.add_group(db, name, account.user_id, members)
    except QuotaExceeded as exc:
        raise PortalError(
            "GROUP_QUOTA", "Your plan's group limit is reached; delete a group first."
        ) from exc
    except (Conflict, NotFound) as exc:
        raise PortalError("GROUP_NAME_DUPLICATE", f"{name} is not available.", "name") from exc

    async def publish(txn: Txn) -> None:
        await host_service.refresh_group(txn, created.id, group_max_age)

    await db.write(publish)
    return created


async def _owned_group(txn: Txn, account: Account, group_id: int) -> tuple[int, str, int | None]:
    """The group's id, name and zone id; NotFound unless the account owns it."""
    row = (
        await txn.conn.execute(
            sa.select(groups.c.id, groups.c.name, groups.c.zone_id).where(
                groups.c.id == group_id, groups.c.owner_id == account.id
            )
        )
    ).first()
    if row is None:
        raise NotFound("no such group")
    return row.id, row.name, row.zone_id


async def set_member(
    db: Database,
    account: Account,
    group_id: int,
    host_id: int,
    member: bool,
    *,
    group_max_age: int,
) -> str:
    """Add (`member` True) or remove one of the account's hosts; the host's name.

    The published name follows at once through refresh_group.
    """

    async def unit(txn: Txn) -> str:
        await _owned_group(txn, account, group_id)
        name = await txn.conn.scalar(
            sa.select(hosts.c.name).where(hosts.c.id == host_id, hosts.c.owner_id == account.id)
        )
        if name is None:
            raise PortalError("GROUP_MEMBER_INVALID", "Choose among your own hosts.", "members")
        present = await txn.conn.scalar(
            sa.select(group_members.c.host_id).where(
                group_members.c.group_id == group_id, group_members.c.host_id == host_id
            )
        )
        if member and present is None:
            await txn.conn.execute(
                sa.insert(group_members).values(group_id=group_id, host_id=host_id)
            )
        elif not member and present is not None:
            await txn.conn.execute(
                sa.delete(group_members).where(
                    group_members.c.group_id == group_id, group_members.c.host_id == host_id
                )
            )
        await host_service.refresh_group(txn, group_id, group_max_age)
        return str(name)

    return await db.write(unit)


async def regenerate_secret(db: Database, account: Account, group_id: int) -> host_service.Created:
    """A new group secret (shown once); the old one stops working at the commit."""
    secret = new_secret()

    async def unit(txn: Txn) -> host_service.Created:
        _, name, _ = await _owned_group(txn, account, group_id)
        await txn.conn.execute(
            sa.update(groups).where(groups.c.id == group_id).values(secret_hash=hash_secret(secret))
        )
        return host_service.Created(group_id, name, secret)

    return await db.write(unit)


async def delete_group(db: Database, account: Account, group_id: int) -> str:
    """Remove the group, its members list and its published records; the group's name."""

    async def unit(txn: Txn) -> str:
        _, name, zone_id = await _owned_group(txn, account, group_id)
        if zone_id is not None:
            zone_name = await txn.conn.scalar(sa.select(zones.c.name).where(zones.c.id == zone_id))
            zone = ZoneRef(zone_id, str(zone_name))
            records = await txn.conn.execute(
                sa.select(rrsets.c.rtype, rrsets.c.ttl).where(
                    rrsets.c.zone_id == zone_id, rrsets.c.name == name
                )
            )
            for record in records.all():
                await apply_change(
                    txn,
                    zone,
                    RRsetValue(name, record.rtype, record.ttl, ()),
                    actor=f"user:{account.user_id}",
                    via="web",
                )
        await txn.conn.execute(sa.delete(group_members).where(group_members.c.group_id == group_id))
        await txn.conn.execute(sa.delete(groups).where(groups.c.id == group_id))
        return name

    return await db.write(unit)
