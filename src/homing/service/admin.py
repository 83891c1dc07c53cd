"""The operator's use cases: zones offered, plans and prices, accounts, abuse blocks, figures."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import Conflict, HomingError, InvalidName, NotFound
from homing.service import reverse
from homing.service import zones as zone_service
from homing.service.hosts import groups_of_host, refresh_group
from homing.service.portal import Plan, plan_from_row
from homing.store.db import Database, Txn, as_utc, now
from homing.store.schema import accounts, hosts, journal, plans, zones

ROLES = ("user", "admin")
PERIODS = ("month", "year")
_PLAN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
PAGE_SIZE = 50
MAX_QUOTA = 100_000
MAX_INTERVAL = 86_400
MAX_PRICE_CENTS = 100_000_000
MAX_UNBLOCK_DAYS = 365
# A host of a disabled account is "suspended": refused like a disabled one, restored on enable.
SUSPENDED = "suspended"


class AdminError(HomingError):
    """An operator form was refused; `code` is stable, `field` names the field at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


# -- live figures ------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    accounts: int
    active_accounts: int
    admins: int
    hosts: int
    blocked_hosts: int
    zones: int
    public_zones: int
    changes_last_minute: int  # host address changes in the journal in the last 60 s
    changes_last_hour: int
    updates_last_minute: int  # hosts whose device reported in the last 60 s (good or nochg)
    at: datetime


async def figures(db: Database) -> Figures:
    """Counts for the admin overview, read in one snapshot."""
    at = now()

    async def query(conn: AsyncConnection) -> Figures:
        def count(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.Select[Any]:
            return sa.select(sa.func.count()).select_from(table).where(*where)

        async def scalar(select: sa.Select[Any]) -> int:
            return int(await conn.scalar(select) or 0)

        minute, hour = at - timedelta(minutes=1), at - timedelta(hours=1)
        # Host addresses as devices, users and UPDATE set them; not zone set-up or groups.
        address_change = sa.and_(journal.c.rtype.in_(("A", "AAAA")), journal.c.via != "group")
        return Figures(
            accounts=await scalar(count(accounts)),
            active_accounts=await scalar(count(accounts, accounts.c.status == "active")),
            admins=await scalar(count(accounts, accounts.c.role == "admin")),
            hosts=await scalar(count(hosts)),
            blocked_hosts=await scalar(count(hosts, hosts.c.status == "blocked")),
            zones=await scalar(count(zones)),
            public_zones=await scalar(count(zones, zones.c.public.is_(True))),
            changes_last_minute=await scalar(
                count(journal, journal.c.at >= minute, address_change)
            ),
            changes_last_hour=await scalar(count(journal, journal.c.at >= hour, address_change)),
            updates_last_minute=await scalar(count(hosts, hosts.c.last_update_at >= minute)),
            at=at,
        )

    return await db.read(query)


# -- DNS queries per second -------------------------------------------------------
#
# `homing serve` reads the DNS responses answered so far, its own and (with --workers)
# the other workers' as they last published them, once a second into a QueryMeter; the
# overview, served by any worker, asks that worker's meter for the change over time.

QUERY_WINDOW = 10.0  # seconds the rate is averaged over


@dataclass(frozen=True)
class QueryRate:
    per_second: float | None  # None: not measured (no DNS server in this process)
    answered: int  # responses since start, over every worker
    window: float  # seconds the rate spans (up to QUERY_WINDOW)
    limited: int = 0  # UDP answers response rate limiting dropped or truncated since start


@dataclass
class QueryMeter:
    """Readings of the total answered, trimmed to the window; sans-I/O."""

    window: float = QUERY_WINDOW
    readings: deque[tuple[float, int]] = field(default_factory=deque)
    limited: int = 0  # the latest total of answers held back by rate limiting

    def add(self, at: float, total: int) -> None:
        if self.readings and total < self.readings[-1][1]:
            # A worker restarted and its count began again: old readings would give a
            # negative rate, so the window starts afresh.
            self.readings.clear()
        self.readings.append((at, total))
        # Keep the newest reading that is at least a window old, so the pair spans it.
        while len(self.readings) > 2 and self.readings[1][0] <= at - self.window:
            self.readings.popleft()

    def rate(self) -> QueryRate:
        if not self.readings:
            return QueryRate(None, 0, 0.0)
        (t0, c0), (t1, c1) = self.readings[0], self.readings[-1]
        span = t1 - t0
        return QueryRate((c1 - c0) / span if span > 0 else 0.0, c1, span, self.limited)


# -- zones -------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneRow:
    id: int
    name: str
    public: bool
    serial: int
    hosts: int
    created_at: datetime | None
    auto_ptr: bool = False
    reverse: bool = False  # a reverse zone (in-addr.arpa, ip6.arpa): auto-ptr may be on


async def list_zones(db: Database) -> list[ZoneRow]:
    async def query(conn: AsyncConnection) -> list[ZoneRow]:
        counts = (
            sa.select(hosts.c.zone_id, sa.func.count().label("n"))
            .group_by(hosts.c.zone_id)
            .subquery()
        )
        rows = await conn.execute(
            sa.select(zones, sa.func.coalesce(counts.c.n, 0).label("host_count"))
            .outerjoin(counts, counts.c.zone_id == zones.c.id)
            .order_by(zones.c.name)
        )
        return [
            ZoneRow(
                r.id,
                r.name,
                bool(r.public),
                r.serial,
                r.host_count,
                as_utc(r.created_at),
                bool(r.auto_ptr),
                reverse.reverse_network(r.name) is not None,
            )
            for r in rows
        ]

    return await db.read(query)


async def create_zone(db: Database, name: str, nameservers: list[str], public: bool) -> str:
    """A new zone (SOA and NS through apply_change); its normalised name."""
    if not name.strip():
        raise AdminError("ZONE_INVALID", "Enter the zone's name, e.g. dyn.example.net.", "name")
    try:
        zone = await zone_service.add_zone(
            db, name.strip(), ns=[n for n in nameservers if n] or None, public=public
        )
    except InvalidName as exc:
        field = "name" if exc.name == name.strip() else "ns"
        raise AdminError("ZONE_INVALID", f"Not a valid DNS name: {exc.name}", field) from exc
    except Conflict as exc:
        raise AdminError("ZONE_DUPLICATE", "That zone exists already.", "name") from exc
    return zone.name


async def set_zone_public(db: Database, zone_id: int, public: bool) -> str:
    """Offer the zone to users (or stop offering it: existing hosts stay)."""

    async def unit(txn: Txn) -> str:
        name = await txn.conn.scalar(
            sa.update(zones)
            .where(zones.c.id == zone_id)
            .values(public=public)
            .returning(zones.c.name)
        )
        if name is None:
            raise NotFound("no such zone")
        return str(name)

    return await db.write(unit)


# -- plans -------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanInput:
    name: str
    max_hosts: int
    max_groups: int
    min_interval: int
    custom_ttl: bool
    price_cents: int
    currency: str
    period: str
    self_unblock_days: int


def _int(form: Mapping[str, str], field: str, label: str, low: int, high: int) -> int:
    text = form.get(field, "").strip()
    try:
        value = int(text)
    except ValueError:
        raise AdminError("PLAN_INVALID", f"{label} must be a whole number.", field) from None
    if not low <= value <= high:
        raise AdminError("PLAN_INVALID", f"{label} must be between {low} and {high}.", field)
    return value


def price_cents(text: str) -> int:
    """'3', '3.5', '3.50' → 350; AdminError otherwise."""
    cleaned = text.strip().replace(",", ".")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        amount = Decimal(-1)
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise AdminError(
            "PLAN_INVALID", "The price is an amount like 3 or 3.50 (0 for free).", "price"
        )
    cents = int(amount * 100)
    if cents > MAX_PRICE_CENTS:
        raise AdminError("PLAN_INVALID", "That price is too high.", "price")
    return cents


def plan_input(form: Mapping[str, str]) -> PlanInput:
    """The plan form's fields, checked; AdminError names the first field at fault."""
    name = form.get("name", "").strip()
    if not _PLAN_NAME.match(name):
        raise AdminError(
            "PLAN_INVALID",
            "A plan name is 1 to 64 letters, digits, spaces, dots or dashes.",
            "name",
        )
    currency = form.get("currency", "").strip().upper()
    if not _CURRENCY.match(currency):
        raise AdminError("PLAN_INVALID", "The currency is a 3-letter code like EUR.", "currency")
    period = form.get("period", "").strip()
    if period not in PERIODS:
        raise AdminError("PLAN_INVALID", "The billing period is month or year.", "period")
    return PlanInput(
        name=name,
        max_hosts=_int(form, "max_hosts", "Hosts", 0, MAX_QUOTA),
        max_groups=_int(form, "max_groups", "Groups", 0, MAX_QUOTA),
        min_interval=_int(form, "min_interval", "Minimum update interval", 0, MAX_INTERVAL),
        custom_ttl=form.get("custom_ttl", "") in ("on", "1", "yes", "true"),
        price_cents=price_cents(form.get("price", "")),
        currency=currency,
        period=period,
        self_unblock_days=_int(
            form, "self_unblock_days", "Self-service unblock", 0, MAX_UNBLOCK_DAYS
        ),
    )


def _plan_values(plan: PlanInput) -> dict[str, object]:
    return {
        "name": plan.name,
        "max_hosts": plan.max_hosts,
        "max_groups": plan.max_groups,
        "min_interval": plan.min_interval,
        "custom_ttl": plan.custom_ttl,
        "price_cents": plan.price_cents,
        "currency": plan.currency,
        "period": plan.period,
        "self_unblock_days": plan.self_unblock_days,
    }


async def _check_plan_name(conn: AsyncConnection, name: str, plan_id: int | None) -> None:
    other = await conn.scalar(
        sa.select(plans.c.id).where(sa.func.lower(plans.c.name) == name.lower())
    )
    if other is not None and other != plan_id:
        raise AdminError("PLAN_DUPLICATE", "Another plan has that name.", "name")


async def create_plan(db: Database, plan: PlanInput) -> int:
    async def unit(txn: Txn) -> int:
        await _check_plan_name(txn.conn, plan.name, None)
        return int(
            (
                await txn.conn.execute(
                    sa.insert(plans)
                    .values(**_plan_values(plan), is_default=False)
                    .returning(plans.c.id)
                )
            ).scalar_one()
        )

    return await db.write(unit)


async def update_plan(db: Database, plan_id: int, plan: PlanInput) -> None:
    """New quotas apply from the next request on; hosts over a lowered limit stay."""

    async def unit(txn: Txn) -> None:
        await _check_plan_name(txn.conn, plan.name, plan_id)
        result = await txn.conn.execute(
            sa.update(plans).where(plans.c.id == plan_id).values(**_plan_values(plan))
        )
        if result.rowcount == 0:
            raise NotFound("no such plan")

    await db.write(unit)


async def get_plan(db: Database, plan_id: int) -> Plan | None:
    async def query(conn: AsyncConnection) -> Plan | None:
        row = (await conn.execute(sa.select(plans).where(plans.c.id == plan_id))).first()
        return None if row is None else plan_from_row(row)

    return await db.read(query)


async def set_default_plan(db: Database, plan_id: int) -> str:
    """The plan new sign-ups get; exactly one plan is the default."""

    async def unit(txn: Txn) -> str:
        name = await txn.conn.scalar(sa.select(plans.c.name).where(plans.c.id == plan_id))
        if name is None:
            raise NotFound("no such plan")
        await txn.conn.execute(
            sa.update(plans).values(is_default=sa.case((plans.c.id == plan_id, True), else_=False))
        )
        return str(name)

    return await db.write(unit)


@dataclass(frozen=True)
class PlanRow:
    plan: Plan
    accounts: int


async def list_plans(db: Database) -> list[PlanRow]:
    async def query(conn: AsyncConnection) -> list[PlanRow]:
        counts = (
            sa.select(accounts.c.plan_id, sa.func.count().label("n"))
            .group_by(accounts.c.plan_id)
            .subquery()
        )
        rows = await conn.execute(
            sa.select(plans, sa.func.coalesce(counts.c.n, 0).label("account_count"))
            .outerjoin(counts, counts.c.plan_id == plans.c.id)
            .order_by(plans.c.price_cents, plans.c.name)
        )
        return [PlanRow(plan_from_row(r), r.account_count) for r in rows]

    return await db.read(query)


# -- accounts ----------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    id: int
    user_id: str
    email: str
    role: str
    status: str
    plan_id: int | None
    plan: str | None
    hosts: int
    created_at: datetime | None


@dataclass(frozen=True)
class AccountPage:
    query: str
    rows: list[AccountRow]
    page: int
    has_next: bool


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_accounts(db: Database, query_text: str = "", page: int = 1) -> AccountPage:
    """Accounts whose user ID or email contains `query_text` (case-insensitive), newest first."""
    text = query_text.strip()[:254]
    page = max(1, min(page, 10_000))

    async def query(conn: AsyncConnection) -> AccountPage:
        counts = (
            sa.select(hosts.c.owner_id, sa.func.count().label("n"))
            .group_by(hosts.c.owner_id)
            .subquery()
        )
        select = (
            sa.select(
                accounts,
                plans.c.name.label("plan_name"),
                sa.func.coalesce(counts.c.n, 0).label("host_count"),
            )
            .outerjoin(plans, plans.c.id == accounts.c.plan_id)
            .outerjoin(counts, counts.c.owner_id == accounts.c.id)
            .order_by(accounts.c.id.desc())
            .limit(PAGE_SIZE + 1)
            .offset((page - 1) * PAGE_SIZE)
        )
        if text:
            pattern = _like(text.casefold())
            select = select.where(
                sa.or_(
                    accounts.c.user_key.like(pattern, escape="\\"),
                    accounts.c.email_key.like(pattern, escape="\\"),
                )
            )
        rows = (await conn.execute(select)).all()
        found = [
            AccountRow(
                r.id,
                r.user_id,
                r.email,
                r.role,
                r.status,
                r.plan_id,
                r.plan_name,
                r.host_count,
                as_utc(r.created_at),
            )
            for r in rows[:PAGE_SIZE]
        ]
        return AccountPage(text, found, page, len(rows) > PAGE_SIZE)

    return await db.read(query)


async def refresh_groups_of(txn: Txn, host_ids: list[int], max_age: int) -> None:
    group_ids: set[int] = set()
    for host_id in host_ids:
        group_ids.update(await groups_of_host(txn, host_id))
    for group_id in sorted(group_ids):
        await refresh_group(txn, group_id, max_age)


async def _account_row(txn: Txn, account_id: int) -> sa.Row[tuple[object, ...]]:
    row = (await txn.conn.execute(sa.select(accounts).where(accounts.c.id == account_id))).first()
    if row is None:
        raise NotFound("no such account")
    return row


async def set_account_status(
    db: Database, account_id: int, active: bool, *, acting_id: int, group_max_age: int
) -> str:
    """Disable (no login, its hosts refuse updates) or enable an account; its user ID."""
    if account_id == acting_id and not active:
        raise AdminError("ACCOUNT_SELF", "You cannot disable your own account.")

    async def unit(txn: Txn) -> str:
        row = await _account_row(txn, account_id)
        before, after = ("active", SUSPENDED) if not active else (SUSPENDED, "active")
        host_ids = [
            r.id
            for r in await txn.conn.execute(
                sa.update(hosts)
                .where(hosts.c.owner_id == account_id, hosts.c.status == before)
                .values(status=after)
                .returning(hosts.c.id)
            )
        ]
        await txn.conn.execute(
            sa.update(accounts)
            .where(accounts.c.id == account_id)
            .values(status="active" if active else "disabled")
        )
        await refresh_groups_of(txn, host_ids, group_max_age)
        return str(row.user_id)

    return await db.write(unit)


async def set_account_plan(db: Database, account_id: int, plan_id: int) -> tuple[str, str]:
    """Move an account to a plan; (user ID, plan name)."""

    async def unit(txn: Txn) -> tuple[str, str]:
        row = await _account_row(txn, account_id)
        plan_name = await txn.conn.scalar(sa.select(plans.c.name).where(plans.c.id == plan_id))
        if plan_name is None:
            raise AdminError("PLAN_INVALID", "Choose one of the plans.", "plan_id")
        await txn.conn.execute(
            sa.update(accounts).where(accounts.c.id == account_id).values(plan_id=plan_id)
        )
        return str(row.user_id), str(plan_name)

    return await db.write(unit)


async def set_account_role(db: Database, account_id: int, role: str, *, acting_id: int) -> str:
    """Make an account an operator (admin) or a plain user again; its user ID."""
    if role not in ROLES:
        raise AdminError("ROLE_INVALID", "The role is user or admin.", "role")
    if account_id == acting_id and role != "admin":
        raise AdminError("ACCOUNT_SELF", "You cannot take away your own admin role.")

    async def unit(txn: Txn) -> str:
        row = await _account_row(txn, account_id)
        await txn.conn.execute(
            sa.update(accounts).where(accounts.c.id == account_id).values(role=role)
        )
        return str(row.user_id)

    return await db.write(unit)


# -- hosts blocked for abuse --------------------------------------------------------


@dataclass(frozen=True)
class BlockedHost:
    id: int
    name: str
    owner: str
    last_client_ip: str | None
    blocked_at: datetime | None  # the request that tipped it over
    last_agent: str | None
    nochg_count: int


async def blocked_hosts(db: Database) -> list[BlockedHost]:
    async def query(conn: AsyncConnection) -> list[BlockedHost]:
        rows = await conn.execute(
            sa.select(hosts, accounts.c.user_id.label("owner"))
            .join(accounts, accounts.c.id == hosts.c.owner_id)
            .where(hosts.c.status == "blocked")
            .order_by(hosts.c.last_update_at.desc(), hosts.c.name)
            .limit(500)
        )
        return [
            BlockedHost(
                r.id,
                r.name,
                r.owner,
                r.last_client_ip,
                as_utc(r.last_update_at),
                r.last_agent,
                r.nochg_count,
            )
            for r in rows
        ]

    return await db.read(query)


async def unblock(txn: Txn, host_id: int, owner_id: int | None, group_max_age: int) -> str:
    """Set a blocked host active again with a fresh abuse count (inside a write); its name."""
    where = [hosts.c.id == host_id, hosts.c.status == "blocked"]
    if owner_id is not None:
        where.append(hosts.c.owner_id == owner_id)
    values: dict[str, object] = {
        "status": "active",
        "nochg_count": 0,
        "nochg_window_start": None,
        "last_result": None,
    }
    if owner_id is not None:
        values["unblocked_at"] = txn.now
    name = await txn.conn.scalar(
        sa.update(hosts).where(*where).values(**values).returning(hosts.c.name)
    )
    if name is None:
        raise NotFound("no such blocked host")
    await refresh_groups_of(txn, [host_id], group_max_age)
    return str(name)


async def unblock_host(db: Database, host_id: int, *, group_max_age: int) -> str:
    """The operator lifts an abuse block; the host's name."""
    return await db.write(lambda txn: unblock(txn, host_id, None, group_max_age))
