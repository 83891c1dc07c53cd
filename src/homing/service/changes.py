"""apply_change: the one way records change. Records, serial and journal move in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from homing.domain.records import JournalEntry, RRsetValue
from homing.store.db import Txn
from homing.store.schema import journal, rrsets, zones

# Serials are 32-bit (RFC 1982); at the top they wrap to 1 and keep moving forward.
SERIAL_MODULUS = 2**32


@dataclass(frozen=True)
class ZoneRef:
    id: int
    name: str


async def current_rrset(txn: Txn, zone: ZoneRef, name: str, rtype: str) -> RRsetValue | None:
    row = (
        await txn.conn.execute(
            sa.select(rrsets.c.ttl, rrsets.c.rdatas).where(
                rrsets.c.zone_id == zone.id, rrsets.c.name == name, rrsets.c.rtype == rtype
            )
        )
    ).first()
    if row is None:
        return None
    return RRsetValue(name, rtype, row.ttl, RRsetValue.decode_rdatas(row.rdatas))


async def apply_change(
    txn: Txn, zone: ZoneRef, value: RRsetValue, *, actor: str, via: str
) -> JournalEntry | None:
    """Set one RRset (empty rdatas delete it). Returns the journal entry, or None if unchanged.

    Runs inside the caller's write transaction; the entry reaches DNS after the commit.
    """
    old = await current_rrset(txn, zone, value.name, value.rtype)
    new_text = value.encode()
    old_rdatas = old.rdatas if old is not None else ()
    if old is not None and old.encode() == new_text and old.ttl == value.ttl:
        return None
    if old is None and not value.rdatas:
        return None
    conn = txn.conn
    where = (
        rrsets.c.zone_id == zone.id,
        rrsets.c.name == value.name,
        rrsets.c.rtype == value.rtype,
    )
    if not value.rdatas:
        await conn.execute(sa.delete(rrsets).where(*where))
    elif old is None:
        await conn.execute(
            sa.insert(rrsets).values(
                zone_id=zone.id, name=value.name, rtype=value.rtype, ttl=value.ttl, rdatas=new_text
            )
        )
    else:
        await conn.execute(sa.update(rrsets).where(*where).values(ttl=value.ttl, rdatas=new_text))
    # The row lock this takes orders concurrent writers of one zone across processes.
    serial = (
        await conn.execute(
            sa.update(zones)
            .where(zones.c.id == zone.id)
            .values(
                serial=sa.case((zones.c.serial >= SERIAL_MODULUS - 1, 1), else_=zones.c.serial + 1)
            )
            .returning(zones.c.serial)
        )
    ).scalar_one()
    result = await conn.execute(
        sa.insert(journal)
        .values(
            zone_id=zone.id,
            serial=serial,
            name=value.name,
            rtype=value.rtype,
            ttl=value.ttl,
            old="\n".join(sorted(old_rdatas)),
            new=new_text,
            actor=actor[:128],
            via=via[:16],
            at=txn.now,
        )
        .returning(journal.c.id)
    )
    entry = JournalEntry(
        position=result.scalar_one(),
        zone=zone.name,
        serial=serial,
        name=value.name,
        rtype=value.rtype,
        ttl=value.ttl,
        old=tuple(sorted(old_rdatas)),
        new=tuple(sorted(value.rdatas)),
        actor=actor,
        via=via,
    )
    txn.emit(entry)
    return entry
