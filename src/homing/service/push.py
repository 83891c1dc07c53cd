"""Hidden primary: the push state in the store, and how an update waits for its push.

When a zone has a push target, every change committed here is also sent to an
external primary (BIND, Knot, PowerDNS) by `homing.dns.push`. The store keeps the
last serial that server acknowledged; an update is answered `good` only once its own
serial got there, and `dnserr` when the push failed or took too long (the change stays
committed, and the pusher keeps retrying). This module holds the service's side of
that, so the service never imports the DNS layer: the web layer hands the results to
`confirm_pushed` with whatever `PushWaiter` the server set up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.outcomes import Outcome
from homing.service.updates import HostResult
from homing.store.db import Database, Txn
from homing.store.schema import zones


class PushWaiter(Protocol):
    """What an update asks before it answers `good`."""

    async def pushed(self, zone: str, serial: int, within: float) -> bool:
        """True once the zone's external primary has `serial` (at once for a zone that
        pushes nowhere); False when the push failed or `within` seconds passed."""
        ...

    def pushes_nowhere(self, zone: str) -> bool:
        """True when the zone is known to have no external primary: nothing to wait for."""
        ...


@dataclass(frozen=True)
class PushState:
    """Where a zone stands: its serial here, and the last one its external primary has."""

    zone_id: int
    zone: str
    serial: int
    target: str | None
    key: str | None
    pushed: int | None  # None: the external primary needs the whole zone first


async def push_state(conn: AsyncConnection, zone: str) -> PushState | None:
    """A zone's push state, or None when there is no such zone."""
    row = (
        await conn.execute(
            sa.select(
                zones.c.id, zones.c.name, zones.c.serial, zones.c.push_target, zones.c.push_key,
                zones.c.pushed_serial,
            ).where(zones.c.name == zone)
        )
    ).first()  # fmt: skip
    if row is None:
        return None
    return PushState(row.id, row.name, row.serial, row.push_target, row.push_key, row.pushed_serial)


async def mark_pushed(db: Database, zone: str, target: str, serial: int) -> bool:
    """Record that `target` acknowledged the zone up to `serial`; False when the zone has
    been pointed elsewhere meanwhile (its new target then starts from the whole zone)."""

    async def unit(txn: Txn) -> bool:
        result = await txn.conn.execute(
            sa.update(zones)
            .where(
                zones.c.name == zone,
                zones.c.push_target == target,
                sa.or_(zones.c.pushed_serial.is_(None), zones.c.pushed_serial < serial),
            )
            .values(pushed_serial=serial)
        )
        return bool(result.rowcount)

    return await db.write(unit)


async def confirm_pushed(
    results: Sequence[HostResult], waiter: PushWaiter, within: float
) -> list[HostResult]:
    """The results, with each `good` whose change did not reach its zone's external
    primary within `within` seconds turned into `dnserr`. Zones are awaited together."""
    wanted: dict[str, int] = {}
    for result in results:
        if result.outcome is Outcome.GOOD and result.zone is not None and result.serial:
            wanted[result.zone] = max(wanted.get(result.zone, 0), result.serial)
    names = sorted(zone for zone in wanted if not waiter.pushes_nowhere(zone))
    if not names:
        return list(results)  # the common case: no hidden primary, no task to wait on
    answers = await asyncio.gather(*(waiter.pushed(z, wanted[z], within) for z in names))
    failed = {zone for zone, ok in zip(names, answers, strict=True) if not ok}
    return [
        r._replace(outcome=Outcome.DNSERR) if r.outcome is Outcome.GOOD and r.zone in failed else r
        for r in results
    ]
