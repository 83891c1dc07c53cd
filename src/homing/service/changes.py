"""apply_change: the one way records change. Records, serial and journal move in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from homing.domain.errors import SecondaryZone
from homing.domain.records import JournalEntry, RRsetValue
from homing.domain.servable import check_servable
from homing.store.db import ReadChanged, SyncTxn, Txn
from homing.store.schema import journal, rrsets, zones
from homing.store.statements import execute_many, fetch_all

# Above this many RRsets, read the whole zone once instead of naming each RRset.
_WHOLE_ZONE_READ = 500
_ADDRESS_TYPES = frozenset({"A", "AAAA"})


@dataclass(frozen=True)
class ZoneRef:
    id: int
    name: str


async def current_rrset(txn: Txn, zone: ZoneRef, name: str, rtype: str) -> RRsetValue | None:
    return await txn.run_sync(lambda sync_txn: current_rrset_sync(sync_txn, zone, name, rtype))


def current_rrset_sync(txn: SyncTxn, zone: ZoneRef, name: str, rtype: str) -> RRsetValue | None:
    """current_rrset() for synchronous write code."""
    row = (
        txn.conn.execute(
            sa.select(rrsets.c.ttl, rrsets.c.rdatas).where(
                rrsets.c.zone_id == zone.id, rrsets.c.name == name, rrsets.c.rtype == rtype
            )
        )
    ).first()
    if row is None:
        return None
    return RRsetValue(name, rtype, row.ttl, RRsetValue.decode_rdatas(row.rdatas))


def current_many_sync(
    txn: SyncTxn, zone: ZoneRef, values: Sequence[RRsetValue]
) -> dict[tuple[str, str], RRsetValue]:
    """The stored RRsets of `values`' names and types (others of those names too), by key."""
    if len(values) == 1:
        found = current_rrset_sync(txn, zone, values[0].name, values[0].rtype)
        return {} if found is None else {(found.name, found.rtype): found}
    query = sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.ttl, rrsets.c.rdatas).where(
        rrsets.c.zone_id == zone.id
    )
    if len(values) <= _WHOLE_ZONE_READ:
        query = query.where(rrsets.c.name.in_(sorted({v.name for v in values})))
    rows = txn.conn.execute(query)
    return {
        (r.name, r.rtype): RRsetValue(r.name, r.rtype, r.ttl, RRsetValue.decode_rdatas(r.rdatas))
        for r in rows
    }


def _differs(old: RRsetValue | None, new: RRsetValue) -> bool:
    if old is None:
        return bool(new.rdatas)
    return old.encode() != new.encode() or (bool(new.rdatas) and old.ttl != new.ttl)


async def apply_changes(
    txn: Txn,
    zone: ZoneRef,
    values: Sequence[RRsetValue],
    *,
    actor: str | Sequence[str],
    via: str | Sequence[str],
) -> list[JournalEntry]:
    """Set RRsets (empty rdatas delete one); see apply_changes_sync()."""
    return await txn.run_sync(
        lambda sync_txn: apply_changes_sync(sync_txn, zone, values, actor=actor, via=via)
    )


# The write path's statements, built once.
_RRSET_INSERT = sa.insert(rrsets)
_JOURNAL_INSERT = sa.insert(journal)
_RRSET_DELETE = sa.delete(rrsets).where(
    rrsets.c.zone_id == sa.bindparam("b_zone_id"),
    rrsets.c.name == sa.bindparam("b_name"),
    rrsets.c.rtype == sa.bindparam("b_rtype"),
)
_RRSET_UPDATE = (
    sa.update(rrsets)
    .where(
        rrsets.c.zone_id == sa.bindparam("b_zone_id"),
        rrsets.c.name == sa.bindparam("b_name"),
        rrsets.c.rtype == sa.bindparam("b_rtype"),
    )
    .values(ttl=sa.bindparam("b_ttl"), rdatas=sa.bindparam("b_rdatas"))
)
_SERIAL_MOVE = (
    sa.update(zones)
    .where(zones.c.id == sa.bindparam("b_zone_id"), zones.c.primary_target.is_(None))
    .values(serial=zones.c.serial + sa.bindparam("b_count", type_=sa.BigInteger))
    .returning(zones.c.serial)
)
# When addresses change, the same statement says whether any reverse zone follows them:
# the check costs no round trip of its own.
_AUTO_PTR_ZONES = zones.alias("auto_ptr_zones")
_SERIAL_MOVE_ADDRESSES = _SERIAL_MOVE.returning(
    sa.exists().where(_AUTO_PTR_ZONES.c.auto_ptr.is_(True))
)

# PostgreSQL: the serial's move and the journal rows it numbers, as one statement (a
# data-modifying WITH); the rows come as arrays, one element per change, in serial order.
_JOURNAL_ARRAYS = ("name", "rtype", "ttl", "actor", "via", "old_ttl")


def _move_and_journal(addresses: bool) -> sa.TextualSelect:
    follows = (
        ", EXISTS (SELECT 1 FROM zones AS auto_ptr_zones WHERE auto_ptr_zones.auto_ptr)"
        if addresses
        else ""
    )
    statement = sa.text(
        "WITH moved AS (UPDATE zones SET serial = zones.serial + :b_count"
        " WHERE zones.id = :b_zone_id AND zones.primary_target IS NULL"
        f" RETURNING zones.serial{follows}, zones.signed),"
        " written AS (INSERT INTO journal"
        ' (zone_id, serial, name, rtype, ttl, "old", "new", actor, via, at, old_ttl)'
        " SELECT :b_zone_id, moved.serial - :b_count + r.n, r.name, r.rtype,"
        " r.ttl, r.old, r.new, r.actor, r.via, :b_at, r.old_ttl"
        " FROM moved, unnest(:b_name, :b_rtype, :b_ttl, :b_old, :b_new, :b_actor, :b_via,"
        " :b_old_ttl) WITH ORDINALITY AS r (name, rtype, ttl, old, new, actor, via, old_ttl, n))"
        " SELECT * FROM moved"
    ).bindparams(
        sa.bindparam("b_count", type_=sa.BigInteger),
        sa.bindparam("b_zone_id", type_=sa.Integer),
        sa.bindparam("b_at", type_=journal.c.at.type),
        *(
            sa.bindparam(f"b_{name}", type_=sa.ARRAY(journal.c[name].type))
            for name in (*_JOURNAL_ARRAYS, "old", "new")
        ),
    )
    signed = sa.column("signed", sa.Boolean)
    if addresses:
        return statement.columns(
            sa.column("serial", sa.BigInteger), sa.column("exists", sa.Boolean), signed
        )
    return statement.columns(sa.column("serial", sa.BigInteger), signed)


_MOVE_AND_JOURNAL = _move_and_journal(addresses=False)
_MOVED_AND_JOURNALED = frozenset({"zones", "journal"})  # what either reads and writes
_MOVE_AND_JOURNAL_ADDRESSES = _move_and_journal(addresses=True)


def apply_changes_sync(
    txn: SyncTxn,
    zone: ZoneRef,
    values: Sequence[RRsetValue],
    *,
    actor: str | Sequence[str],
    via: str | Sequence[str],
    stored: Mapping[tuple[str, str], RRsetValue] | None = None,
    unsigned: bool = False,
) -> list[JournalEntry]:
    """Set RRsets (empty rdatas delete one); one serial and one journal row per changed RRset.

    `actor` and `via` are one for all values, or one per value. Runs inside the caller's
    write transaction; the entries reach DNS after the commit. Unchanged RRsets cost
    nothing and leave no journal row. `stored`: the values' RRsets as this transaction
    read them (absent: none stored), for a caller that has them already. `unsigned`: this
    transaction read that the zone has no DNSSEC keys, so signing's read of them is left
    out. A value DNS could not serve raises (InvalidAddress or UnservableRecord) before
    anything is written.
    """
    actors = [actor] * len(values) if isinstance(actor, str) else list(actor)
    vias = [via] * len(values) if isinstance(via, str) else list(via)
    current = current_many_sync(txn, zone, values) if stored is None else stored
    latest: dict[tuple[str, str], tuple[RRsetValue, str, str]] = {}
    for value, who, how in zip(values, actors, vias, strict=True):
        latest[(value.name, value.rtype)] = (value, who, how)  # the last value given wins
    changed = [
        (current.get(key), new, who, how)
        for key, (new, who, how) in latest.items()
        if _differs(current.get(key), new)
    ]
    if not changed:
        return []
    # Nothing DNS could not serve is committed: such a row would stop the zone's followers
    # and every later change behind it. Addresses cost an inet_pton; other types a render.
    check_servable(new for _, new, _, _ in changed)
    # A signed zone's RRSIGs, NSEC3 chain and SOA signature go with the change.
    if not unsigned:
        changed = signing.sign_changes(txn, zone.id, zone.name, changed)
    conn = txn.conn
    deleted = [new for _, new, _, _ in changed if not new.rdatas]
    inserted = [new for old, new, _, _ in changed if old is None]
    updated = [new for old, new, _, _ in changed if old is not None and new.rdatas]
    if deleted:
        execute_many(
            conn,
            _RRSET_DELETE,
            [{"b_zone_id": zone.id, "b_name": v.name, "b_rtype": v.rtype} for v in deleted],
        )
    if inserted:
        execute_many(
            conn,
            _RRSET_INSERT,
            [
                {
                    "zone_id": zone.id,
                    "name": v.name,
                    "rtype": v.rtype,
                    "ttl": v.ttl,
                    "rdatas": v.encode(),
                }
                for v in inserted
            ],
        )
    if updated:
        execute_many(
            conn,
            _RRSET_UPDATE,
            [
                {
                    "b_zone_id": zone.id,
                    "b_name": v.name,
                    "b_rtype": v.rtype,
                    "b_ttl": v.ttl,
                    "b_rdatas": v.encode(),
                }
                for v in updated
            ],
        )
    # The row lock this takes orders concurrent writers of one zone, across processes too.
    # A secondary zone's serial is its primary's: no write of ours goes there (the whole
    # transaction is rolled back).
    addresses = not _ADDRESS_TYPES.isdisjoint(new.rtype for _, new, _, _ in changed)
    entries = [
        JournalEntry(
            position=0,
            zone=zone.name,
            serial=i,  # from 0; the first serial is added once the serial has moved
            name=new.name,
            rtype=new.rtype,
            ttl=new.ttl,
            old=old.rdatas if old is not None else (),
            new=tuple(sorted(new.rdatas)),
            actor=who[:128],
            via=how[:16],
            old_ttl=old.ttl if old is not None else None,
        )
        for i, (old, new, who, how) in enumerate(changed)
    ]
    if conn.dialect.name == "postgresql":
        # The serial's move and the journal rows in one statement: the zone's row lock,
        # which every other writer of the zone waits for, is held a round trip less. The
        # RRset and host writes held back so far go in it too, as its first WITHs.
        moved = fetch_all(
            conn,
            _MOVE_AND_JOURNAL_ADDRESSES if addresses else _MOVE_AND_JOURNAL,
            {
                "b_zone_id": zone.id,
                "b_count": len(changed),
                "b_at": txn.now,
                **{f"b_{c}": [getattr(e, c) for e in entries] for c in _JOURNAL_ARRAYS},
                "b_old": ["\n".join(e.old) for e in entries],
                "b_new": ["\n".join(e.new) for e in entries],
            },
            touches=_MOVED_AND_JOURNALED,
        )[1]
    else:
        moved = fetch_all(
            conn,
            _SERIAL_MOVE_ADDRESSES if addresses else _SERIAL_MOVE,
            {"b_zone_id": zone.id, "b_count": len(changed)},
        )[1]
    last = moved[0][0] if moved else None
    if last is None:
        raise SecondaryZone(f"zone {zone.name} is a secondary zone: change it at its primary")
    if unsigned and conn.dialect.name == "postgresql" and moved[0][-1]:
        # Signed by a transaction that committed after this one read the zone unsigned
        # and before it took the zone's row: its change needs signatures.
        raise ReadChanged(f"zone {zone.name} was signed meanwhile")
    first = last - len(changed) + 1
    entries = [e._replace(serial=first + e.serial) for e in entries]
    if conn.dialect.name != "postgresql":
        execute_many(
            conn,
            _JOURNAL_INSERT,
            [
                {
                    "zone_id": zone.id,
                    "serial": e.serial,
                    "name": e.name,
                    "rtype": e.rtype,
                    "ttl": e.ttl,
                    "old": "\n".join(e.old),
                    "new": "\n".join(e.new),
                    "actor": e.actor,
                    "via": e.via,
                    "old_ttl": e.old_ttl,
                    "at": txn.now,
                }
                for e in entries
            ],
        )
    for entry in entries:
        txn.emit(entry)
    if addresses and moved[0][1]:
        reverse.follow_sync(txn, entries)  # reverse zones with auto-ptr, in this transaction
    return entries


async def apply_change(
    txn: Txn, zone: ZoneRef, value: RRsetValue, *, actor: str, via: str
) -> JournalEntry | None:
    """Set one RRset (empty rdatas delete it); the journal entry, or None if nothing changed."""
    entries = await apply_changes(txn, zone, [value], actor=actor, via=via)
    return entries[0] if entries else None


# reverse.py builds on this module's writes; imported last so either module may load first.
from homing.dnssec import changes as signing  # noqa: E402
from homing.service import reverse  # noqa: E402
