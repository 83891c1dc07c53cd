"""Key rolls of a signed zone, in three steps each (RFC 6781 4.1, RFC 7583).

A ZSK roll pre-publishes (4.1.1.1): the new key joins the DNSKEY RRset, after
ZSK_PUBLISH_WAIT it signs the zone in place of the old one, which stays published for
RETIRE_WAIT and then goes. The leader takes these steps by itself.

A KSK (or CSK) roll uses double DS (4.1.2): the new key joins the DNSKEY RRset and the
CDS/CDNSKEY RRsets (RFC 7344) name both keys, so a parent that polls them, or the
operator with `homing zone ds`, adds the new DS. Once every parent server the zone names
(`zone set --parent-ns`) publishes it and its TTL has passed, the leader makes the new
key sign (switch(); CDS/CDNSKEY name it alone, the old DS can go); without parent
servers, `homing zone roll ZONE --ksk --step` does. RETIRE_WAIT later, the old key goes.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.dnssec import changes
from homing.dnssec.keys import (
    ACTIVE,
    DNSKEY_TTL,
    PUBLISHED,
    RETIRED,
    DnssecError,
    ZoneKey,
    add_key_sync,
    cds_texts,
    dnskey_texts,
    key_ttl_sync,
    unsigning_sync,
    zone_keys_sync,
)
from homing.domain.names import normalize
from homing.domain.records import RRsetValue
from homing.service.changes import ZoneRef, apply_changes_sync
from homing.service.zones import own_records, zone_row
from homing.store.db import Database, SyncTxn, Txn, as_utc, now
from homing.store.schema import dnssec_keys, zones

log = logging.getLogger(__name__)

# A new ZSK is published this long before it signs: the old DNSKEY RRset has left caches
# (whatever the zone's DNSKEY TTL, at most DNSKEY_TTL).
ZSK_PUBLISH_WAIT = 2 * DNSKEY_TTL
# A key that stopped signing stays published this long: signatures it made have left
# caches (their TTLs are far shorter).
RETIRE_WAIT = 86400


@dataclass(frozen=True)
class RollStep:
    """Where a roll stands after a step."""

    zone: str
    role: str
    state: str  # "started", "switched" (the new key signs) or "done" (the old key gone)


async def roll(db: Database, name: str, role: str, *, step: bool = False) -> RollStep:
    """Start a roll of the zone's ZSK or KSK (a CSK for a zone with one key); with `step`,
    take the next step of the roll under way at once."""
    if role not in ("zsk", "ksk"):
        raise DnssecError(f"a roll is of the zsk or the ksk, not {role!r}")
    zone_name = normalize(name)
    memo = await _presigned(db, zone_name, role) if step else None

    async def unit(txn: Txn) -> RollStep:
        ref = own_records(await zone_row(txn.conn, zone_name), "keys")
        return await txn.run_sync(lambda sync: _roll(sync, ref, role, step, memo))

    return await db.write(unit)


async def switch(db: Database, name: str, key_id: int) -> RollStep | None:
    """A KSK (or CSK) roll's switch to the new key `key_id`, taken when the parent publishes
    its DS (service/dnssec.py ParentWatch); None if that key no longer waits to sign (the
    operator took the step meanwhile)."""
    zone_name = normalize(name)
    memo = await _presigned(db, zone_name, "ksk")

    async def unit(txn: Txn) -> RollStep | None:
        ref = own_records(await zone_row(txn.conn, zone_name), "keys")

        def step(sync: SyncTxn) -> RollStep | None:
            keys = zone_keys_sync(sync.conn, ref.id)
            if not any(k.id == key_id and k.state == PUBLISHED for k in keys):
                return None
            return _advance(sync, ref, keys, "ksk", memo)

        return await txn.run_sync(step)

    return await db.write(unit)


async def _presigned(db: Database, zone_name: str, role: str) -> changes.Memo | None:
    """When the next step of a roll makes a new key sign: the zone's signatures with it,
    made from a snapshot before the write transaction (see changes.presign)."""

    def presign(conn: sa.Connection) -> changes.Pending | None:
        zone_id = conn.scalar(sa.select(zones.c.id).where(zones.c.name == zone_name))
        if zone_id is None:
            return None
        keys = zone_keys_sync(conn, zone_id)
        switched = _switched(keys, role)
        if switched is None:
            return None
        apex = apex_values(zone_name, switched, key_ttl_sync(conn, zone_id))
        return changes.presign(conn, zone_id, zone_name, switched, apex)

    pending = await db.read(lambda conn: conn.run_sync(presign))
    return None if pending is None else await changes.signed_apart(pending)


def _switched(keys: list[ZoneKey], role: str) -> list[ZoneKey] | None:
    """The keys as they will be once the new key of `role`'s kind signs; None when no new
    key waits."""
    kind = {k.id for k in keys if (k.role == "zsk") == (role == "zsk")}
    if not any(k.id in kind and k.state == PUBLISHED for k in keys):
        return None
    after = {PUBLISHED: ACTIVE, ACTIVE: RETIRED}
    return [
        dataclasses.replace(k, state=after.get(k.state, k.state)) if k.id in kind else k
        for k in keys
    ]


def _rolling(keys: list[ZoneKey], role: str) -> list[ZoneKey]:
    """The keys of `role`'s kind (zone keys, or entry keys) in a roll: not active."""
    kind = [k for k in keys if (k.role == "zsk") == (role == "zsk")]
    return [k for k in kind if k.state != ACTIVE]


def _roll(txn: SyncTxn, ref: ZoneRef, role: str, step: bool, memo: changes.Memo | None) -> RollStep:
    keys = zone_keys_sync(txn.conn, ref.id)
    if not keys:
        raise DnssecError(f"zone {ref.name} is not signed")
    if role == "zsk" and not any(k.role == "zsk" for k in keys):
        raise DnssecError(f"zone {ref.name} has one combined key (a CSK): roll it with --ksk")
    under_way = _rolling(keys, role)
    if not under_way:
        if unsigning_sync(txn.conn, ref.id, ref.name):
            raise DnssecError(f"zone {ref.name} is being unsigned: no key roll now")
        if step:
            raise DnssecError(f"no {role} roll under way in zone {ref.name}")
        old = next(k for k in keys if k.state == ACTIVE and (k.role == "zsk") == (role == "zsk"))
        add_key_sync(txn.conn, ref.id, old.role, old.algorithm, PUBLISHED, txn.now)
        _publish(txn, ref)
        return RollStep(ref.name, role, "started")
    if not step:
        raise DnssecError(f"a {role} roll is under way in zone {ref.name}: --step takes it on")
    return _advance(txn, ref, keys, role, memo)


def _advance(
    txn: SyncTxn, ref: ZoneRef, keys: list[ZoneKey], role: str, memo: changes.Memo | None
) -> RollStep:
    """The next step of the roll under way: the new key signs, or the old one goes."""
    conn = txn.conn
    kind = [k for k in keys if (k.role == "zsk") == (role == "zsk")]
    new = [k for k in kind if k.state == PUBLISHED]
    if new:
        old = [k for k in kind if k.state == ACTIVE]
        _set_state(conn, [k.id for k in new], ACTIVE, txn)
        _set_state(conn, [k.id for k in old], RETIRED, txn)
        _publish(txn, ref, resign=True, memo=memo)
        return RollStep(ref.name, role, "switched")
    retired = [k.id for k in kind if k.state == RETIRED]
    conn.execute(sa.delete(dnssec_keys).where(dnssec_keys.c.id.in_(retired)))
    _publish(txn, ref)
    return RollStep(ref.name, role, "done")


def _set_state(conn: sa.Connection, ids: list[int], state: str, txn: SyncTxn) -> None:
    if ids:
        conn.execute(
            sa.update(dnssec_keys)
            .where(dnssec_keys.c.id.in_(ids))
            .values(state=state, changed_at=txn.now)
        )


def apex_values(zone: str, keys: list[ZoneKey], ttl: int) -> list[RRsetValue]:
    """The apex's DNSKEY RRset as the keys are, and CDS/CDNSKEY while an entry key is
    rolled (empty otherwise)."""
    entry_roll = any(k.entry and k.state != ACTIVE for k in keys)
    cds, cdnskey = cds_texts(zone, keys) if entry_roll else ((), ())
    return [
        RRsetValue(zone, "DNSKEY", ttl, dnskey_texts(keys)),
        RRsetValue(zone, "CDS", ttl, cds),
        RRsetValue(zone, "CDNSKEY", ttl, cdnskey),
    ]


def _publish(
    txn: SyncTxn, ref: ZoneRef, *, resign: bool = False, memo: changes.Memo | None = None
) -> None:
    """The apex's key RRsets as the stored keys now are; with `resign`, every RRset signed
    again with the keys that now sign (reusing `memo`'s signatures)."""
    keys = zone_keys_sync(txn.conn, ref.id)
    values = apex_values(ref.name, keys, key_ttl_sync(txn.conn, ref.id))
    if not resign:
        apply_changes_sync(txn, ref, values, actor=changes.ACTOR, via=changes.ACTOR)
        return
    # Asking for the apex's RRSIGs to go is always a change: the signer makes them again,
    # and with everything() every other RRset's too.
    values.append(RRsetValue(ref.name, "RRSIG", 0))
    with changes.everything(memo):
        apply_changes_sync(txn, ref, values, actor=changes.ACTOR, via=changes.ACTOR)


async def advance_due(db: Database) -> list[RollStep]:
    """The steps whose time has come: a ZSK published ZSK_PUBLISH_WAIT ago signs, a key
    retired RETIRE_WAIT ago goes. (A KSK's switch waits for the parent: switch().)"""

    async def due(conn: AsyncConnection) -> list[tuple[int, str, str]]:
        rows = await conn.execute(
            sa.select(zones.c.id, zones.c.name, dnssec_keys.c.role, dnssec_keys.c.state,
                      dnssec_keys.c.changed_at)
            .join(dnssec_keys, dnssec_keys.c.zone_id == zones.c.id)
            .where(dnssec_keys.c.state != ACTIVE)
        )  # fmt: skip
        found = []
        moment = now()
        for r in rows:
            age = moment - (as_utc(r.changed_at) or moment)
            if r.state == PUBLISHED and r.role == "zsk" and age >= timedelta(0, ZSK_PUBLISH_WAIT):
                found.append((r.id, r.name, "zsk"))
            elif r.state == RETIRED and age >= timedelta(0, RETIRE_WAIT):
                found.append((r.id, r.name, "zsk" if r.role == "zsk" else "ksk"))
        return sorted(set(found))

    steps = []
    for zone_id, zone_name, role in await db.read(due):
        ref = ZoneRef(zone_id, zone_name)
        memo = await _presigned(db, zone_name, role)

        async def unit(
            txn: Txn, ref: ZoneRef = ref, role: str = role, memo: changes.Memo | None = memo
        ) -> RollStep:
            return await txn.run_sync(
                lambda sync: _advance(sync, ref, zone_keys_sync(sync.conn, ref.id), role, memo)
            )

        steps.append(await db.write(unit))
    return steps
