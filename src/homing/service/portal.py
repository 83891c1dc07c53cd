"""What the web portal reads and writes: plans, offered zones, a user's hosts, host lifecycle."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import Conflict, HomingError, InvalidName, NotFound, QuotaExceeded
from homing.domain.names import normalize, zone_for
from homing.domain.outcomes import Outcome
from homing.domain.records import RRsetValue
from homing.service import hosts as host_service
from homing.service.accounts import Account, account_of
from homing.service.changes import ZoneRef, apply_change
from homing.service.zones import zone_refs
from homing.store.db import Database, Txn, as_utc
from homing.store.schema import accounts, group_members, groups, hosts, plans, rrsets, zones

ADDRESS_TYPES = ("A", "AAAA")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Names that would pass for the operator's own (name servers, web, mail).
RESERVED_LABELS = frozenset(
    {"ns", "ns0", "ns1", "ns2", "ns3", "ns4", "dns", "www", "mail", "smtp", "mx", "admin", "api"}
    | {"hostmaster", "postmaster", "abuse", "root", "localhost", "wpad", "autoconfig"}
)


class PortalError(HomingError):
    """A portal form was refused; `code` is stable, `field` names the form field at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class Plan:
    id: int
    name: str
    max_hosts: int
    max_groups: int
    min_interval: int  # seconds
    custom_ttl: bool
    price_cents: int
    currency: str
    period: str
    is_default: bool
    self_unblock_days: int = 1  # 0: only the operator unblocks


@dataclass(frozen=True)
class Status:
    """A host's state the way a DVR status screen shows it."""

    code: str  # "ACT", "ERR 0x8000800N", or "—" before the first update
    meaning: str
    ok: bool | None  # None: no update yet


@dataclass(frozen=True)
class HostView:
    id: int
    name: str
    zone: str
    addresses: tuple[str, ...]  # IPv4 first, then IPv6
    status: str  # active, blocked, disabled
    last_update_at: datetime | None
    last_client_ip: str | None
    last_via: str | None
    last_agent: str | None
    display: Status


@dataclass(frozen=True)
class Dashboard:
    account: Account
    plan: Plan | None
    hosts: list[HostView]

    @property
    def can_add_host(self) -> bool:
        return self.plan is None or len(self.hosts) < self.plan.max_hosts


@dataclass(frozen=True)
class Availability:
    name: str
    available: bool
    message: str


def status_of(status: str, last_result: str | None, updated: bool = False) -> Status:
    """ACT or ERR with its meaning; a blocked or disabled host says so whatever came last.
    `updated`: the host has had updates (an unblock or re-enable clears the last answer)."""
    if status == "blocked":
        outcome: Outcome | None = Outcome.ABUSE
    elif status == "inactive":  # the operator's inactivity policy (service/inactivity.py)
        return Status(Outcome.DISABLED.dvr, "disabled: no update for too long", False)
    elif status != "active":
        outcome = Outcome.DISABLED
    else:
        outcome = Outcome.__members__.get(last_result or "")
    if outcome is None:
        waiting = "waiting for its next update" if updated else "waiting for the first update"
        return Status("—", waiting, None)
    return Status(outcome.dvr, outcome.description, outcome.dvr == "ACT")


def plan_from_row(row: sa.Row[tuple[object, ...]]) -> Plan:
    r = row._mapping
    return Plan(
        id=r["id"],
        name=r["name"],
        max_hosts=r["max_hosts"],
        max_groups=r["max_groups"],
        min_interval=r["min_interval"],
        custom_ttl=bool(r["custom_ttl"]),
        price_cents=r["price_cents"],
        currency=r["currency"],
        period=r["period"],
        is_default=bool(r["is_default"]),
        self_unblock_days=r["self_unblock_days"],
    )


async def list_plans(db: Database) -> list[Plan]:
    """Every plan, cheapest first (the pricing page)."""

    async def query(conn: AsyncConnection) -> list[Plan]:
        rows = await conn.execute(sa.select(plans).order_by(plans.c.price_cents, plans.c.name))
        return [plan_from_row(row) for row in rows]

    return await db.read(query)


async def offered_zones(db: Database) -> list[str]:
    """The zones sign-up users may create hosts in."""

    async def query(conn: AsyncConnection) -> list[str]:
        rows = await conn.execute(
            sa.select(zones.c.name).where(zones.c.public.is_(True)).order_by(zones.c.name)
        )
        return [row.name for row in rows]

    return await db.read(query)


async def account_by_id(db: Database, account_id: int) -> Account | None:
    async def query(conn: AsyncConnection) -> Account | None:
        row = (await conn.execute(sa.select(accounts).where(accounts.c.id == account_id))).first()
        if row is None:
            return None
        return account_of(row)

    return await db.read(query)


async def _host_views(conn: AsyncConnection, where: sa.ColumnElement[bool]) -> list[HostView]:
    rows = (
        await conn.execute(
            sa.select(hosts, zones.c.name.label("zone_name"))
            .join(zones, zones.c.id == hosts.c.zone_id)
            .where(where)
            .order_by(hosts.c.name)
        )
    ).all()
    if not rows:
        return []
    records = await conn.execute(
        sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.rdatas)
        .join(hosts, sa.and_(hosts.c.zone_id == rrsets.c.zone_id, hosts.c.name == rrsets.c.name))
        .where(where, rrsets.c.rtype.in_(ADDRESS_TYPES))
    )
    addresses: dict[str, dict[str, tuple[str, ...]]] = {}
    for record in records:
        addresses.setdefault(record.name, {})[record.rtype] = RRsetValue.decode_rdatas(
            record.rdatas
        )
    views = []
    for row in rows:
        r = row._mapping
        found = addresses.get(r["name"], {})
        views.append(
            HostView(
                id=r["id"],
                name=r["name"],
                zone=r["zone_name"],
                addresses=found.get("A", ()) + found.get("AAAA", ()),
                status=r["status"],
                last_update_at=as_utc(r["last_update_at"]),
                last_client_ip=r["last_client_ip"],
                last_via=r["last_via"],
                last_agent=r["last_agent"],
                display=status_of(r["status"], r["last_result"], r["last_update_at"] is not None),
            )
        )
    return views


async def dashboard(db: Database, account: Account) -> Dashboard:
    """The account's plan and its hosts with their current addresses and status."""

    async def query(conn: AsyncConnection) -> Dashboard:
        plan_row = None
        if account.plan_id is not None:
            plan_row = (
                await conn.execute(sa.select(plans).where(plans.c.id == account.plan_id))
            ).first()
        views = await _host_views(conn, hosts.c.owner_id == account.id)
        return Dashboard(account, None if plan_row is None else plan_from_row(plan_row), views)

    return await db.read(query)


async def get_host(db: Database, account: Account, host_id: int) -> HostView | None:
    """One of the account's hosts, or None (another user's host is as absent as a missing one)."""

    async def query(conn: AsyncConnection) -> HostView | None:
        views = await _host_views(
            conn, sa.and_(hosts.c.id == host_id, hosts.c.owner_id == account.id)
        )
        return views[0] if views else None

    return await db.read(query)


def host_name(label: str, zone: str) -> str:
    """`label.zone`, normalised; PortalError naming the field at fault."""
    text = label.strip().rstrip(".")
    if not text:
        raise PortalError("HOST_LABEL_INVALID", "Enter a name for the host.", "label")
    try:
        ascii_label = normalize(text)
    except InvalidName as exc:
        raise PortalError(
            "HOST_LABEL_INVALID",
            "A host name is letters, digits and dashes (up to 63), not starting or "
            "ending with a dash.",
            "label",
        ) from exc
    if "." in ascii_label or not _LABEL.match(ascii_label):
        raise PortalError(
            "HOST_LABEL_INVALID", "Enter one name without dots; choose the zone below.", "label"
        )
    if ascii_label in RESERVED_LABELS:
        raise PortalError(
            "HOST_NAME_RESERVED",
            f"{ascii_label} is reserved for the service itself; choose another name.",
            "label",
        )
    try:
        zone_name = normalize(zone)
    except InvalidName as exc:
        raise PortalError("ZONE_INVALID", "Choose one of the offered zones.", "zone") from exc
    return f"{ascii_label}.{zone_name}"


async def check_name_free(conn: AsyncConnection, name: str) -> None:
    """Raise PortalError unless `name` is in an offered zone and nothing else uses it."""
    public = {
        row.name: row.id
        for row in await conn.execute(
            sa.select(zones.c.name, zones.c.id).where(zones.c.public.is_(True))
        )
    }
    label, _, zone = name.partition(".")
    if zone not in public:
        raise PortalError("ZONE_INVALID", "Choose one of the offered zones.", "zone")
    # A zone delegated below the offered one owns this name, not the offered zone.
    if zone_for(name, frozenset(await zone_refs(conn))) != zone:
        raise PortalError("HOST_NAME_DUPLICATE", f"{name} is not available.", "label")
    taken = await conn.scalar(
        sa.select(hosts.c.id)
        .where(hosts.c.name == name)
        .union(
            sa.select(rrsets.c.id).where(rrsets.c.zone_id == public[zone], rrsets.c.name == name)
        )
    )
    if taken is not None:
        raise PortalError("HOST_NAME_DUPLICATE", f"{name} is already taken.", "label")
    # Groups share the host name space.
    if await conn.scalar(sa.select(groups.c.id).where(groups.c.name == name)) is not None:
        raise PortalError("HOST_NAME_DUPLICATE", f"{name} is already taken.", "label")


async def host_name_available(db: Database, label: str, zone: str) -> Availability:
    """The live check on the create-host form."""
    name = host_name(label, zone)

    async def query(conn: AsyncConnection) -> Availability:
        try:
            await check_name_free(conn, name)
        except PortalError as exc:
            return Availability(name, False, str(exc))
        return Availability(name, True, f"{name} is available.")

    return await db.read(query)


async def create_host(
    db: Database, account: Account, label: str, zone: str
) -> host_service.Created:
    """A host `label.zone` in an offered zone, within the plan; its secret is returned once."""
    name = host_name(label, zone)
    await db.read(lambda conn: check_name_free(conn, name))
    try:
        return await host_service.add_host(db, name, account.user_id)
    except QuotaExceeded as exc:
        raise PortalError(
            "HOST_QUOTA", "Your plan's host limit is reached; delete a host first."
        ) from exc
    except (Conflict, NotFound) as exc:  # lost a race, or the zone went away meanwhile
        raise PortalError("HOST_NAME_DUPLICATE", f"{name} is not available.", "label") from exc


async def delete_host(db: Database, account: Account, host_id: int, *, group_max_age: int) -> str:
    """Remove the host and every record at its name, through apply_change (DNS and journal follow).

    Groups the host belonged to are republished without it. Returns the host's name.
    """
    return await db.write(
        lambda txn: remove_host(
            txn, host_id, account.id, actor=f"user:{account.user_id}", group_max_age=group_max_age
        )
    )


async def clear_records(
    txn: Txn, host_id: int, owner_id: int, *, actor: str, via: str = "web"
) -> str:
    """Delete every RRset at the host's name through apply_change (inside a write); its name."""
    row = (
        await txn.conn.execute(
            sa.select(hosts.c.id, hosts.c.name, hosts.c.zone_id, zones.c.name.label("zone"))
            .join(zones, zones.c.id == hosts.c.zone_id)
            .where(hosts.c.id == host_id, hosts.c.owner_id == owner_id)
        )
    ).first()
    if row is None:
        raise NotFound("no such host")
    zone = ZoneRef(row.zone_id, row.zone)
    records = await txn.conn.execute(
        sa.select(rrsets.c.rtype, rrsets.c.ttl).where(
            rrsets.c.zone_id == row.zone_id, rrsets.c.name == row.name
        )
    )
    for record in records.all():
        await apply_change(
            txn, zone, RRsetValue(row.name, record.rtype, record.ttl, ()), actor=actor, via=via
        )
    return str(row.name)


async def remove_host(
    txn: Txn, host_id: int, owner_id: int, *, actor: str, group_max_age: int, via: str = "web"
) -> str:
    """The host deletion inside a write: records, group membership, the host row; its name."""
    name = await clear_records(txn, host_id, owner_id, actor=actor, via=via)
    group_ids = await host_service.groups_of_host(txn, host_id)
    await txn.conn.execute(sa.delete(group_members).where(group_members.c.host_id == host_id))
    await txn.conn.execute(sa.delete(hosts).where(hosts.c.id == host_id))
    for group_id in group_ids:
        await host_service.refresh_group(txn, group_id, group_max_age)
    return name
