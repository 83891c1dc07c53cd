"""Plans and prices the operator sets: the plan form checked field by field, plans created,
changed, listed, and the one new accounts get."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import NotFound
from homing.service.forms import AdminError, FormCheck
from homing.service.portal import Plan, plan_from_row
from homing.store.db import Database, Txn
from homing.store.schema import accounts, plans

PERIODS = ("month", "year")
_PLAN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_QUOTA = 100_000
MAX_INTERVAL = 86_400
MAX_PRICE_CENTS = 100_000_000
MAX_UNBLOCK_DAYS = 365


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


def _name(text: str) -> str:
    name = text.strip()
    if not _PLAN_NAME.match(name):
        raise AdminError(
            "PLAN_INVALID", "A plan name is 1 to 64 letters, digits, spaces, dots or dashes."
        )
    return name


def _currency(text: str) -> str:
    currency = text.strip().upper()
    if not _CURRENCY.match(currency):
        raise AdminError("PLAN_INVALID", "The currency is a 3-letter code like EUR.")
    return currency


def _period(text: str) -> str:
    period = text.strip()
    if period not in PERIODS:
        raise AdminError("PLAN_INVALID", "The billing period is month or year.")
    return period


def plan_input(form: Mapping[str, str]) -> PlanInput:
    """The plan form's fields, checked; AdminError names every field at fault."""
    check = FormCheck("PLAN_INVALID")

    def number(field: str, label: str, high: int) -> int | None:
        return check.field(field, lambda: _int(form, field, label, 0, high))

    name = check.field("name", lambda: _name(form.get("name", "")))
    price = check.field("price", lambda: price_cents(form.get("price", "")))
    currency = check.field("currency", lambda: _currency(form.get("currency", "")))
    period = check.field("period", lambda: _period(form.get("period", "")))
    max_hosts = number("max_hosts", "Hosts", MAX_QUOTA)
    max_groups = number("max_groups", "Groups", MAX_QUOTA)
    min_interval = number("min_interval", "Minimum update interval", MAX_INTERVAL)
    unblock_days = number("self_unblock_days", "Self-service unblock", MAX_UNBLOCK_DAYS)
    check.done()
    assert name is not None and price is not None and currency is not None
    assert period is not None and max_hosts is not None and max_groups is not None
    assert min_interval is not None and unblock_days is not None
    return PlanInput(
        name=name,
        max_hosts=max_hosts,
        max_groups=max_groups,
        min_interval=min_interval,
        custom_ttl=form.get("custom_ttl", "") in ("on", "1", "yes", "true"),
        price_cents=price,
        currency=currency,
        period=period,
        self_unblock_days=unblock_days,
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
