"""The operator's work on accounts: find them, disable or enable one (its hosts with it),
move one to another plan, make one an operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import NotFound
from homing.service.abuse import refresh_groups_of
from homing.service.forms import AdminError
from homing.store.db import Database, Txn, as_utc
from homing.store.schema import accounts, hosts, plans

ROLES = ("user", "admin")
PAGE_SIZE = 50
# A host of a disabled account is "suspended": refused like a disabled one, restored on enable.
SUSPENDED = "suspended"


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
