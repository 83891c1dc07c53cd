"""The operator's inactivity policy: warn after N days without an update, disable after M,
delete after K (0: never), and tell the owner before each step.

A run (on the leader, `serve`) is idempotent and restart-safe: each step's effect, its
notification and the stage it reached (inactivity_marks) are one transaction, and the
next step is decided from what is stored. A step that is due without its warning having
gone out first is warned now and happens `notice_days` later: nobody loses a host
unwarned, even when a policy is switched on over hosts idle for years.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.config import Settings
from homing.domain.notifications import (
    HOST_DELETED,
    HOST_DELETING,
    HOST_DISABLED,
    HOST_DISABLING,
    HOST_STALE,
    Event,
)
from homing.service import alerts
from homing.service.abuse import refresh_groups_of
from homing.service.forms import AdminError, FormCheck
from homing.service.portal import clear_records, remove_host
from homing.store.db import Database, Txn, as_utc
from homing.store.schema import hosts, inactivity_marks, inactivity_policy

INACTIVE = "inactive"  # a host's status once the policy disabled it
ACTOR = "policy:inactivity"
VIA = "policy"
BATCH = 200  # hosts per transaction
MAX_DAYS = 36500


@dataclass(frozen=True)
class Policy:
    warn_days: int = 0  # 0: never; each counts days since the host's last update
    disable_days: int = 0
    delete_days: int = 0
    notice_days: int = 7  # warnings go out this long before a disable or a delete

    @property
    def active(self) -> bool:
        return bool(self.warn_days or self.disable_days or self.delete_days)


def check_policy(policy: Policy) -> Policy:
    """The policy if it makes sense; AdminError naming the field that does not."""
    for name in ("warn_days", "disable_days", "delete_days"):
        value = getattr(policy, name)
        if not 0 <= value <= MAX_DAYS:
            raise AdminError("POLICY_INVALID", f"Enter 0 (never) to {MAX_DAYS} days.", name)
    if not 1 <= policy.notice_days <= 365:
        raise AdminError("POLICY_INVALID", "Warn 1 to 365 days before a step.", "notice_days")
    if policy.disable_days and policy.delete_days and policy.delete_days <= policy.disable_days:
        raise AdminError(
            "POLICY_INVALID", "Delete after more days than disable (or 0: never).", "delete_days"
        )
    later = [d for d in (policy.disable_days, policy.delete_days) if d]
    if policy.warn_days and later and policy.warn_days >= min(later):
        raise AdminError(
            "POLICY_INVALID", "Warn after fewer days than the disable or delete.", "warn_days"
        )
    return policy


def policy_input(form: Mapping[str, str]) -> Policy:
    """The admin form's fields as a checked Policy."""
    check = FormCheck("POLICY_INVALID")  # every field at fault is named at once
    values: dict[str, int] = {}
    for name in ("warn_days", "disable_days", "delete_days", "notice_days"):
        text = form.get(name, "").strip()
        if not text.isdigit() or len(text) > 6:
            check.refuse(name, "Enter a whole number of days.")
        else:
            values[name] = int(text)
    check.done()
    return check_policy(Policy(**values))


def default_policy(settings: Settings) -> Policy:
    return Policy(
        settings.inactivity_warn_days,
        settings.inactivity_disable_days,
        settings.inactivity_delete_days,
        settings.inactivity_notice_days,
    )


async def get_policy(db: Database, settings: Settings) -> tuple[Policy, datetime | None]:
    """The saved policy and when it was saved, or the settings' (None) before any save."""

    async def query(conn: AsyncConnection) -> tuple[Policy, datetime | None]:
        row = (await conn.execute(sa.select(inactivity_policy))).first()
        if row is None:
            return default_policy(settings), None
        policy = Policy(row.warn_days, row.disable_days, row.delete_days, row.notice_days)
        return policy, as_utc(row.updated_at)

    return await db.read(query)


async def save_policy(db: Database, policy: Policy) -> None:
    check_policy(policy)
    values = {
        "warn_days": policy.warn_days,
        "disable_days": policy.disable_days,
        "delete_days": policy.delete_days,
        "notice_days": policy.notice_days,
    }

    async def unit(txn: Txn) -> None:
        found = await txn.conn.scalar(sa.select(inactivity_policy.c.id))
        if found is None:
            await txn.conn.execute(
                sa.insert(inactivity_policy).values(id=1, updated_at=txn.now, **values)
            )
        else:
            await txn.conn.execute(
                sa.update(inactivity_policy).values(updated_at=txn.now, **values)
            )

    await db.write(unit)


# -- deciding ------------------------------------------------------------------------

# The stages an idle spell goes through, in order (a deleted host has no row left).
STAGES = ("", "stale", "disabling", "disabled", "deleting")


@dataclass(frozen=True)
class Step:
    stage: str  # the stage reached by taking it
    event: Event
    details: dict[str, Any]


def _date(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


def next_step(
    policy: Policy, basis: datetime, stage: str, marked_at: datetime | None, at: datetime
) -> Step | None:
    """What the policy does next with a host idle since `basis`, at stage `stage`; None: nothing."""
    idle = at - basis
    days = idle.days
    notice = timedelta(days=policy.notice_days)
    rank = STAGES.index(stage)
    details: dict[str, Any] = {"idle_days": days, "last_update": _date(basis)}
    if policy.warn_days and rank < 1 and idle >= timedelta(days=policy.warn_days):
        return Step("stale", HOST_STALE, details)
    if policy.disable_days:
        due = basis + timedelta(days=policy.disable_days)
        if rank < 2 and at >= due - notice:
            return Step(
                "disabling", HOST_DISABLING, {**details, "on": _date(max(due, at + notice))}
            )
        if rank == 2 and at >= due and marked_at is not None and at >= marked_at + notice:
            return Step("disabled", HOST_DISABLED, details)
        if rank < 3:
            return None  # disabled first, deleted later
    if policy.delete_days:
        due = basis + timedelta(days=policy.delete_days)
        if rank < 4 and at >= due - notice:
            return Step("deleting", HOST_DELETING, {**details, "on": _date(max(due, at + notice))})
        if rank == 4 and at >= due and marked_at is not None and at >= marked_at + notice:
            return Step("deleted", HOST_DELETED, details)
    return None


# -- running -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunReport:
    warned: int = 0  # warning steps (stale, disabling, deleting); an unchosen stale sends nothing
    disabled: int = 0
    deleted: int = 0


_basis = sa.func.coalesce(hosts.c.last_update_at, hosts.c.created_at)


async def run_policy(
    db: Database, policy: Policy, at: datetime, *, group_max_age: int
) -> RunReport:
    """Take every step that is due at `at` (each host as far as it goes now)."""
    if not policy.active:
        return RunReport()
    # Only hosts idle long enough for some step (or its warning) are read.
    thresholds = [policy.warn_days] if policy.warn_days else []
    thresholds += [d - policy.notice_days for d in (policy.disable_days, policy.delete_days) if d]
    idle_since = at - timedelta(days=max(min(thresholds), 0))
    totals = {"warned": 0, "disabled": 0, "deleted": 0}
    after = 0
    while True:

        async def unit(txn: Txn, after: int = after) -> tuple[int, int]:
            rows = (
                await txn.conn.execute(
                    sa.select(
                        hosts.c.id,
                        hosts.c.name,
                        hosts.c.owner_id,
                        hosts.c.status,
                        _basis.label("basis"),
                        inactivity_marks.c.basis.label("mark_basis"),
                        inactivity_marks.c.stage,
                        inactivity_marks.c.marked_at,
                    )
                    .outerjoin(inactivity_marks, inactivity_marks.c.host_id == hosts.c.id)
                    # An operator's suspension is the operator's business, not the policy's.
                    .where(hosts.c.id > after, hosts.c.status != "suspended", _basis <= idle_since)
                    .order_by(hosts.c.id)
                    .limit(BATCH)
                )
            ).all()
            for row in rows:
                await _advance(txn, policy, row, at, group_max_age, totals)
            return len(rows), rows[-1].id if rows else after

        count, after = await db.write(unit)
        if count < BATCH:
            return RunReport(**totals)


async def _advance(
    txn: Txn, policy: Policy, row: Any, at: datetime, group_max_age: int, totals: dict[str, int]
) -> None:
    basis = as_utc(row.basis)
    assert basis is not None
    same_spell = row.stage is not None and as_utc(row.mark_basis) == basis
    stage = row.stage if same_spell else ""
    marked_at = as_utc(row.marked_at) if same_spell else None
    has_mark = row.stage is not None
    while (step := next_step(policy, basis, stage, marked_at, at)) is not None:
        if step.stage == "deleted":
            await alerts.notify(txn, row.owner_id, step.event, row.name, step.details)
            await remove_host(
                txn, row.id, row.owner_id, actor=ACTOR, group_max_age=group_max_age, via=VIA
            )
            totals["deleted"] += 1
            return
        if step.stage == "disabled":
            await clear_records(txn, row.id, row.owner_id, actor=ACTOR, via=VIA)
            await txn.conn.execute(
                sa.update(hosts).where(hosts.c.id == row.id).values(status=INACTIVE)
            )
            await refresh_groups_of(txn, [row.id], group_max_age)
            totals["disabled"] += 1
        else:
            totals["warned"] += 1
        await alerts.notify(txn, row.owner_id, step.event, row.name, step.details)
        await _mark(txn, row.id, basis, step.stage, at, exists=has_mark)
        stage, marked_at, has_mark = step.stage, at, True


async def _mark(
    txn: Txn, host_id: int, basis: datetime, stage: str, at: datetime, *, exists: bool
) -> None:
    values = {"basis": basis, "stage": stage, "marked_at": at}
    if exists:
        await txn.conn.execute(
            sa.update(inactivity_marks)
            .where(inactivity_marks.c.host_id == host_id)
            .values(**values)
        )
    else:
        await txn.conn.execute(sa.insert(inactivity_marks).values(host_id=host_id, **values))


async def stage_counts(db: Database) -> dict[str, int]:
    """How many hosts sit at each stage of a current idle spell (for the admin page)."""

    async def query(conn: AsyncConnection) -> dict[str, int]:
        rows = await conn.execute(
            sa.select(inactivity_marks.c.stage, sa.func.count())
            .join(hosts, hosts.c.id == inactivity_marks.c.host_id)
            .where(inactivity_marks.c.basis == _basis)
            .group_by(inactivity_marks.c.stage)
        )
        found = {str(stage): int(count) for stage, count in rows}
        return {stage: found.get(stage, 0) for stage in STAGES[1:]}

    return await db.read(query)
