"""A user's care of their own hosts: a new secret, an address by hand, history, unblocking.

Every record change goes through apply_changes (journal, DNS, secondaries), under the
same rules as a device's update: the host must be active and the plan's minimum update
interval holds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.addresses import parse_address
from homing.domain.errors import InvalidAddress, NotFound
from homing.domain.outcomes import Outcome
from homing.domain.records import RRsetValue
from homing.service import abuse
from homing.service.accounts import Account
from homing.service.changes import ZoneRef, apply_changes, current_rrset
from homing.service.hosts import Created, groups_of_host, refresh_group
from homing.service.portal import HostView, PortalError, get_host
from homing.service.secrets import hash_secret, new_secret
from homing.store.db import Database, Txn, as_utc, now
from homing.store.schema import accounts, hosts, journal, plans, zones

HISTORY_PAGE = 20
MAX_HISTORY_PAGE = 10_000
DEFAULT_UNBLOCK_DAYS = 1  # an account without a plan


@dataclass(frozen=True)
class Unblocking:
    """Whether the owner may unblock the host now, and if not, why or from when."""

    allowed: bool
    days: int  # the plan's self_unblock_days; 0: only an operator
    next_at: datetime | None  # when it is allowed again (None: now, or never)


@dataclass(frozen=True)
class HostDetail:
    host: HostView
    min_interval: int
    unblocking: Unblocking


def _unblocking(days: int, unblocked_at: datetime | None, at: datetime) -> Unblocking:
    if days <= 0:
        return Unblocking(False, 0, None)
    if unblocked_at is not None:
        next_at = unblocked_at + timedelta(days=days)
        if at < next_at:
            return Unblocking(False, days, next_at)
    return Unblocking(True, days, None)


async def _owned(
    conn: AsyncConnection, account: Account, host_id: int
) -> sa.Row[tuple[object, ...]]:
    """The host row with its zone name and the owner's plan rules; NotFound if not theirs."""
    row = (
        await conn.execute(
            sa.select(
                hosts,
                zones.c.name.label("zone_name"),
                plans.c.min_interval,
                plans.c.self_unblock_days,
            )
            .join(zones, zones.c.id == hosts.c.zone_id)
            .join(accounts, accounts.c.id == hosts.c.owner_id)
            .outerjoin(plans, plans.c.id == accounts.c.plan_id)
            .where(hosts.c.id == host_id, hosts.c.owner_id == account.id)
        )
    ).first()
    if row is None:
        raise NotFound("no such host")
    return row


def _unblock_days(row: sa.Row[tuple[object, ...]]) -> int:
    days = row._mapping["self_unblock_days"]
    return DEFAULT_UNBLOCK_DAYS if days is None else int(days)


async def host_detail(db: Database, account: Account, host_id: int) -> HostDetail | None:
    view = await get_host(db, account, host_id)
    if view is None:
        return None

    async def query(conn: AsyncConnection) -> HostDetail:
        row = await _owned(conn, account, host_id)
        unblocking = _unblocking(_unblock_days(row), as_utc(row.unblocked_at), now())
        return HostDetail(view, row.min_interval or 0, unblocking)

    try:
        return await db.read(query)
    except NotFound:
        return None


async def regenerate_secret(db: Database, account: Account, host_id: int) -> Created:
    """A new update secret (shown once); the old one stops working at the commit."""
    secret = new_secret()

    async def unit(txn: Txn) -> Created:
        row = await _owned(txn.conn, account, host_id)
        await txn.conn.execute(
            sa.update(hosts).where(hosts.c.id == host_id).values(secret_hash=hash_secret(secret))
        )
        return Created(host_id, str(row.name), secret)

    return await db.write(unit)


def _address(
    text: str, family: type[ipaddress.IPv4Address | ipaddress.IPv6Address], allow_local: bool
) -> str | None:
    field = "ipv4" if family is ipaddress.IPv4Address else "ipv6"
    text = text.strip()
    if not text:
        return None
    try:
        address = parse_address(text, allow_local=allow_local)
    except InvalidAddress as exc:
        # The rule's own words ("scope IDs are not allowed ..."), with what was entered.
        shown = text[:64]
        raise PortalError("ADDRESS_INVALID", f"{shown}: {str(exc).rstrip('.')}.", field) from exc
    if not isinstance(address, family):
        wanted = "an IPv4" if field == "ipv4" else "an IPv6"
        raise PortalError("ADDRESS_INVALID", f"Enter {wanted} address here.", field)
    return str(address)


@dataclass(frozen=True)
class AddressResult:
    name: str
    changed: bool
    addresses: tuple[str, ...]


async def set_addresses(
    db: Database,
    account: Account,
    host_id: int,
    ipv4: str,
    ipv6: str,
    *,
    client_ip: str,
    group_max_age: int,
    allow_local: bool = False,
) -> AddressResult:
    """Set the host's A and AAAA by hand (an empty field removes that record).

    Refused like a device's update when the host is blocked or disabled, or when an
    address change comes sooner than the plan's minimum interval; an address must meet
    the publishing rules (domain/addresses.py; `allow_local`: the operator's setting).
    """
    wanted = {
        "A": _address(ipv4, ipaddress.IPv4Address, allow_local),
        "AAAA": _address(ipv6, ipaddress.IPv6Address, allow_local),
    }

    async def unit(txn: Txn) -> AddressResult:
        row = await _owned(txn.conn, account, host_id)
        if row.status == "blocked":
            raise PortalError("HOST_BLOCKED", "This host is blocked for abuse; unblock it first.")
        if row.status != "active":
            raise PortalError("HOST_DISABLED", "This host is disabled by the operator.")
        zone = ZoneRef(row.zone_id, row.zone_name)
        values = []
        for rtype, address in wanted.items():
            current = await current_rrset(txn, zone, row.name, rtype)
            value = RRsetValue(row.name, rtype, row.ttl, (address,) if address else ())
            if (current is None and address) or (
                current is not None
                and (current.encode() != value.encode() or (address and current.ttl != row.ttl))
            ):
                values.append(value)
        at = txn.now
        last_change = as_utc(row.last_change_at)
        interval = row.min_interval or 0
        if values and last_change is not None and at - last_change < timedelta(seconds=interval):
            wait = int((last_change + timedelta(seconds=interval) - at).total_seconds()) + 1
            raise PortalError(
                "TOO_SOON",
                f"Your plan allows an address change every {interval} s; try again in {wait} s.",
            )
        entries = await apply_changes(txn, zone, values, actor=f"user:{account.user_id}", via="web")
        state: dict[str, object] = {
            "last_update_at": at,
            "last_client_ip": client_ip[:45],
            "last_via": "web",
            "last_agent": "portal (set by hand)",
            "last_result": (Outcome.GOOD if entries else Outcome.NOCHG).name,
        }
        if entries:
            state["last_change_at"] = at
        await txn.conn.execute(sa.update(hosts).where(hosts.c.id == host_id).values(**state))
        for group_id in await groups_of_host(txn, host_id):
            await refresh_group(txn, group_id, group_max_age)
        shown = tuple(a for a in (wanted["A"], wanted["AAAA"]) if a)
        return AddressResult(str(row.name), bool(entries), shown)

    return await db.write(unit)


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime | None
    serial: int
    rtype: str
    old: tuple[str, ...]
    new: tuple[str, ...]
    actor: str
    via: str
    challenge: bool = False  # at the host's _acme-challenge name (an ACME client's TXT)


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    page: int
    has_next: bool


async def history(db: Database, account: Account, host_id: int, page: int = 1) -> HistoryPage:
    """The host's record changes from the journal, newest first, HISTORY_PAGE per page.

    Only changes since the host was created: a name used before by someone else
    does not show their history.
    """
    page = max(1, min(page, MAX_HISTORY_PAGE))

    async def query(conn: AsyncConnection) -> HistoryPage:
        row = await _owned(conn, account, host_id)
        rows = (
            await conn.execute(
                sa.select(journal)
                .where(
                    journal.c.zone_id == row.zone_id,
                    journal.c.name.in_((row.name, f"_acme-challenge.{row.name}")),
                    journal.c.rtype != "RRSIG",  # a signed zone's signatures: not the user's
                    journal.c.at >= row.created_at,
                )
                .order_by(journal.c.id.desc())
                .limit(HISTORY_PAGE + 1)
                .offset((page - 1) * HISTORY_PAGE)
            )
        ).all()
        entries = [
            HistoryEntry(
                as_utc(r.at),
                r.serial,
                r.rtype,
                RRsetValue.decode_rdatas(r.old),
                RRsetValue.decode_rdatas(r.new),
                r.actor,
                r.via,
                r.name != row.name,
            )
            for r in rows[:HISTORY_PAGE]
        ]
        return HistoryPage(entries, page, len(rows) > HISTORY_PAGE)

    return await db.read(query)


async def unblock_own_host(
    db: Database, account: Account, host_id: int, *, group_max_age: int
) -> str:
    """The owner lifts an abuse block, as often as the plan allows; the host's name.

    The rule: a plan's `self_unblock_days` N > 0 lets the owner unblock a host once
    every N days (counted from the owner's last unblock of that host); 0 leaves it
    to an operator.
    """

    async def unit(txn: Txn) -> str:
        row = await _owned(txn.conn, account, host_id)
        if row.status != "blocked":
            raise PortalError("HOST_NOT_BLOCKED", "This host is not blocked.")
        rule = _unblocking(_unblock_days(row), as_utc(row.unblocked_at), txn.now)
        if rule.days == 0:
            raise PortalError(
                "UNBLOCK_NOT_ALLOWED",
                "Your plan leaves unblocking to the operator; please contact support.",
            )
        if not rule.allowed and rule.next_at is not None:
            raise PortalError(
                "UNBLOCK_TOO_SOON",
                f"Your plan allows unblocking a host once every {rule.days} day"
                f"{'s' if rule.days != 1 else ''}; next from "
                f"{rule.next_at.strftime('%Y-%m-%d %H:%M UTC')}.",
            )
        return await abuse.unblock(txn, host_id, account.id, group_max_age)

    return await db.write(unit)


async def enable_inactive_host(db: Database, account: Account, host_id: int) -> str:
    """The owner takes back a host the inactivity policy disabled; its name.

    The host is active again and counts as seen now (last update: the portal), so the
    policy starts its count over; its records come back with the device's next update.
    """

    async def unit(txn: Txn) -> str:
        row = await _owned(txn.conn, account, host_id)
        if row.status != "inactive":
            raise PortalError("HOST_NOT_INACTIVE", "This host was not disabled for inactivity.")
        await txn.conn.execute(
            sa.update(hosts)
            .where(hosts.c.id == host_id)
            .values(
                status="active",
                last_update_at=txn.now,
                last_via="web",
                last_agent="portal (enabled again)",
                last_result=None,
            )
        )
        return str(row.name)

    return await db.write(unit)
