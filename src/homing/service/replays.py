"""Signed UPDATEs seen recently: a copy sent again gets the first answer and changes nothing.

A TSIG-signed message stays valid for its whole time window (the time it was signed,
plus or minus the fudge it carries), so a copy captured on the wire could be sent
again a minute later and undo a change made since. Each signed UPDATE's MAC is written
first thing in the transaction that applies it (a refusal's, in one of its own); the
primary key (key name, MAC) makes that atomic across worker processes and nodes: of two
copies racing, one commits and the other's transaction rolls back and is answered with
the first one's rcode.
Rows are kept until the window has passed, after which the time check refuses the
copy anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.rcode
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from homing.domain.errors import HomingError
from homing.domain.outcomes import Outcome
from homing.store.db import Database, Txn
from homing.store.schema import tsig_seen

__all__ = ["Repeated", "SignedRequest", "claim", "remember_refusal"]

# Kept this long past the window, for nodes whose clocks are a little ahead of ours.
CLOCK_SKEW = 300.0


@dataclass(frozen=True)
class SignedRequest:
    """What identifies one signed message, and until when a copy could still pass TSIG."""

    key: str
    mac: bytes
    valid_until: float  # Unix time: the time signed plus the fudge

    @property
    def until(self) -> float:
        return self.valid_until + CLOCK_SKEW


class Repeated(HomingError):
    """A signed UPDATE answered before: the same answer again, nothing applied."""

    outcome = Outcome.BAD_REQUEST

    def __init__(self, rcode: dns.rcode.Rcode) -> None:
        super().__init__(f"a copy of an UPDATE answered {rcode.name} before")
        self.rcode = rcode


async def claim(txn: Txn, request: SignedRequest, rcode: dns.rcode.Rcode) -> None:
    """Note the message's answer in the caller's transaction, first thing in it; raise
    Repeated (and so roll it back) when a copy was answered before.

    A racing copy on PostgreSQL waits at the insert for the first one's transaction:
    after its commit the insert finds the row, after its rollback it takes its place.
    """
    conn = txn.conn
    mac = request.mac.hex()
    await conn.execute(sa.delete(tsig_seen).where(tsig_seen.c.until < txn.now.timestamp()))
    insert = (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(tsig_seen)
    result = await conn.execute(
        insert.values(
            key_name=request.key, mac=mac, rcode=int(rcode), until=request.until
        ).on_conflict_do_nothing()
    )
    if result.rowcount:
        return
    first = await conn.scalar(
        sa.select(tsig_seen.c.rcode).where(
            tsig_seen.c.key_name == request.key, tsig_seen.c.mac == mac
        )
    )
    raise Repeated(dns.rcode.Rcode(rcode if first is None else first))


async def remember_refusal(db: Database, request: SignedRequest, rcode: dns.rcode.Rcode) -> None:
    """Note a refusal (nothing was changed) in a transaction of its own, so a copy sent
    after the reason went away is not applied late; raise Repeated when a copy was
    answered first."""

    async def unit(txn: Txn) -> None:
        await claim(txn, request, rcode)

    await db.write(unit)
