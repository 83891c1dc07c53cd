"""DNSSEC use cases: signing on and off, DS for the parent, signatures renewed before expiry."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import dns.dnssec
import dns.exception
import dns.name
import dns.rrset
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.dnssec import changes
from homing.dnssec.keys import (
    ACTIVE,
    DEFAULT_ALGORITHM,
    DNSKEY_TTL,
    DnssecError,
    ZoneKey,
    add_key_sync,
    algorithm_number,
    dnskey_texts,
    ds_texts,
    generate,
    parsed_key,
    zone_keys_sync,
)
from homing.dnssec.signer import (
    NSEC3PARAM,
    RESIGN_BEFORE,
    Signer,
    covered,
    expiration,
    soa_value,
)
from homing.domain.names import normalize
from homing.domain.records import RRsetValue
from homing.service import keyroll
from homing.service.changes import ZoneRef, apply_changes_sync
from homing.service.zones import own_records, zone_row
from homing.store.db import Database, SyncTxn, Txn
from homing.store.schema import dnssec_keys, rrsets, zones

log = logging.getLogger(__name__)

# Owners re-signed per transaction by the periodic job: a large zone's refresh is spread
# over several short transactions, never one long one.
RESIGN_BATCH = 1000
_MAX_BATCHES = 10_000  # a bound on one pass: ten million owners


@dataclass(frozen=True)
class Signing:
    """What turning signing on or off did."""

    zone: str
    keys: int
    changed: int  # RRsets written (signatures, NSEC3 records, DNSKEY...)


async def enable(
    db: Database, name: str, *, algorithm: str = DEFAULT_ALGORITHM, split: bool = False
) -> Signing:
    """Sign the zone: new keys (a CSK, or a KSK and a ZSK with `split`), then every RRset
    signed and the NSEC3 chain built, in one transaction. The signatures are made first,
    from a snapshot, outside it; only RRsets changed since are signed inside."""
    zone_name = normalize(name)
    number = algorithm_number(algorithm)
    pems = [(role, generate(number)) for role in (("ksk", "zsk") if split else ("csk",))]

    def presign(conn: sa.Connection) -> changes.Pending:
        row = conn.execute(sa.select(zones).where(zones.c.name == zone_name)).first()
        if row is None:
            return changes.Pending()  # the write says so
        keys = [parsed_key(0, role, number, ACTIVE, pem, row.created_at) for role, pem in pems]
        apex = key_rrsets(zone_name, keys, row.minimum)
        return changes.presign(conn, row.id, zone_name, keys, apex)

    memo = await changes.signed_apart(await db.read(lambda conn: conn.run_sync(presign)))

    async def unit(txn: Txn) -> Signing:
        ref = own_records(await zone_row(txn.conn, zone_name), "signatures")
        return await txn.run_sync(lambda sync: _enable(sync, ref, number, pems, memo))

    return await db.write(unit)


def _enable(
    txn: SyncTxn, ref: ZoneRef, algorithm: int, pems: list[tuple[str, str]], memo: changes.Memo
) -> Signing:
    if zone_keys_sync(txn.conn, ref.id):
        raise DnssecError(f"zone {ref.name} is signed already")
    for role, pem in pems:
        add_key_sync(txn.conn, ref.id, role, algorithm, ACTIVE, txn.now, pem)
    keys = zone_keys_sync(txn.conn, ref.id)
    minimum = txn.conn.scalar(sa.select(zones.c.minimum).where(zones.c.id == ref.id))
    values = key_rrsets(ref.name, keys, int(minimum or 0))
    with changes.everything(memo):
        entries = apply_changes_sync(txn, ref, values, actor=changes.ACTOR, via=changes.ACTOR)
    return Signing(ref.name, len(keys), len(entries))


def key_rrsets(zone: str, keys: list[ZoneKey], ttl: int) -> list[RRsetValue]:
    """The apex RRsets the keys make: DNSKEY and NSEC3PARAM (with the zone's negative TTL)."""
    return [
        RRsetValue(zone, "DNSKEY", DNSKEY_TTL, dnskey_texts(keys)),
        RRsetValue(zone, "NSEC3PARAM", ttl, (NSEC3PARAM,)),
    ]


async def disable(db: Database, name: str) -> Signing:
    """Stop signing: the keys, signatures, NSEC3 chain and DNSKEY go in one transaction.

    The parent's DS must be gone (and its TTL passed) first, or validating resolvers
    take the zone for bogus: docs/dnssec.md.
    """
    zone_name = normalize(name)

    async def unit(txn: Txn) -> Signing:
        ref = own_records(await zone_row(txn.conn, zone_name), "signatures")
        return await txn.run_sync(lambda sync: _disable(sync, ref))

    return await db.write(unit)


def _disable(txn: SyncTxn, ref: ZoneRef) -> Signing:
    conn = txn.conn
    count = conn.execute(sa.delete(dnssec_keys).where(dnssec_keys.c.zone_id == ref.id)).rowcount
    if not count:
        raise DnssecError(f"zone {ref.name} is not signed")
    rows = conn.execute(
        sa.select(rrsets.c.name, rrsets.c.rtype).where(
            rrsets.c.zone_id == ref.id, rrsets.c.rtype.in_(sorted(changes.SIGNER_TYPES))
        )
    ).all()
    values = [RRsetValue(r.name, r.rtype, 0) for r in rows]
    entries = apply_changes_sync(txn, ref, values, actor=changes.ACTOR, via=changes.ACTOR)
    return Signing(ref.name, count, len(entries))


async def ds_records(db: Database, name: str) -> list[str]:
    """The DS records (SHA-256) the parent should publish, as zone-file lines."""
    zone_name = normalize(name)

    async def unit(txn: Txn) -> list[str]:
        row = await zone_row(txn.conn, zone_name)
        keys = await txn.run_sync(lambda sync: zone_keys_sync(sync.conn, row.id))
        if not keys:
            raise DnssecError(f"zone {zone_name} is not signed: homing zone set {name} --dnssec on")
        return [f"{zone_name}. IN DS {text}" for text in ds_texts(zone_name, keys)]

    return await db.write(unit)


async def resign_due(
    db: Database, *, owners: bool = True, before: float = RESIGN_BEFORE, batch: int = RESIGN_BATCH
) -> int:
    """Re-sign, in every signed zone, the owners with a signature due (fewer than `before`
    seconds left), at most `batch` owners a transaction, and the apex when its signatures
    are due or its SOA's values changed; with `owners` False, the apex alone. How many
    owners were re-signed."""

    async def signed(conn: AsyncConnection) -> list[tuple[int, str]]:
        rows = await conn.execute(
            sa.select(zones.c.id, zones.c.name)
            .where(zones.c.id.in_(sa.select(dnssec_keys.c.zone_id)))
            .order_by(zones.c.id)
        )
        return [(r.id, r.name) for r in rows]

    total = 0
    for zone_id, zone_name in await db.read(signed):
        ref = ZoneRef(zone_id, zone_name)

        async def unit(txn: Txn, ref: ZoneRef = ref) -> int:
            return await txn.run_sync(
                lambda sync: _resign_sync(sync, ref, owners=owners, before=before, batch=batch)
            )

        for _ in range(_MAX_BATCHES):
            done = await db.write(unit)
            total += done
            if done < batch:
                break
    return total


def _resign_sync(txn: SyncTxn, ref: ZoneRef, *, owners: bool, before: float, batch: int) -> int:
    conn = txn.conn
    keys = zone_keys_sync(conn, ref.id)
    if not keys:
        return 0
    now = txn.now.timestamp()
    horizon = now + before
    due: list[str] = []
    query = sa.select(rrsets.c.name, rrsets.c.rdatas).where(
        rrsets.c.zone_id == ref.id, rrsets.c.rtype == "RRSIG", rrsets.c.name != ref.name
    )
    for row in conn.execute(query) if owners else ():
        if any(expiration(s) < horizon for s in RRsetValue.decode_rdatas(row.rdatas)):
            due.append(row.name)
            if len(due) >= batch:
                break
    if not due:
        if _apex_stale(conn, ref, horizon):
            _touch_apex(txn, ref)
        return 0
    signer = Signer(ref.name, keys, now)
    stored: dict[str, dict[str, RRsetValue]] = {}
    for r in conn.execute(
        sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.ttl, rrsets.c.rdatas).where(
            rrsets.c.zone_id == ref.id, rrsets.c.name.in_(due)
        )
    ):
        value = RRsetValue(r.name, r.rtype, r.ttl, RRsetValue.decode_rdatas(r.rdatas))
        stored.setdefault(r.name, {})[r.rtype] = value
    values = []
    for name in due:
        node = stored.get(name, {})
        old = node.get("RRSIG")
        if old is None:
            continue
        types = sorted({covered(s) for s in old.rdatas} & set(node))
        sigs = [s for t in types for s in signer.signatures(node[t])]
        values.append(RRsetValue(name, "RRSIG", old.ttl, tuple(sorted(sigs))))
    apply_changes_sync(txn, ref, values, actor=changes.ACTOR, via=changes.ACTOR)
    return len(due)


def _apex_stale(conn: sa.Connection, ref: ZoneRef, horizon: float) -> bool:
    """Whether the apex's signatures are due, or its SOA's no longer fits the SOA served
    (its values changed without a change of records)."""
    stored = {
        r.rtype: RRsetValue(ref.name, r.rtype, r.ttl, RRsetValue.decode_rdatas(r.rdatas))
        for r in conn.execute(
            sa.select(rrsets.c.rtype, rrsets.c.ttl, rrsets.c.rdatas).where(
                rrsets.c.zone_id == ref.id,
                rrsets.c.name == ref.name,
                rrsets.c.rtype.in_(("RRSIG", "DNSKEY")),
            )
        )
    }
    sigs, dnskey = stored.get("RRSIG"), stored.get("DNSKEY")
    if sigs is None or dnskey is None:
        return sigs is not None or dnskey is not None
    if any(expiration(s) < horizon for s in sigs.rdatas):
        return True
    row = conn.execute(sa.select(zones).where(zones.c.id == ref.id)).one()
    soa = soa_value(ref.name, row, row.serial)
    origin = dns.name.from_text(ref.name)
    soa_sigs = [s for s in sigs.rdatas if covered(s) == "SOA"]
    try:
        dns.dnssec.validate(
            dns.rrset.from_text_list(origin, soa.ttl, "IN", "SOA", list(soa.rdatas)),
            dns.rrset.from_text_list(origin, soa.ttl, "IN", "RRSIG", soa_sigs),
            {
                origin: dns.rrset.from_text_list(
                    origin, dnskey.ttl, "IN", "DNSKEY", list(dnskey.rdatas)
                )
            },
        )
    except dns.exception.DNSException:  # ValidationFailure among them
        return True
    return False


async def refresh_apex(txn: Txn, zone: ZoneRef) -> None:
    """Sign a signed zone's SOA afresh (its values changed); nothing for an unsigned zone."""
    await txn.run_sync(lambda sync: _touch_apex(sync, zone))


def _touch_apex(txn: SyncTxn, ref: ZoneRef) -> None:
    """Re-sign the apex's due signatures: asking for its RRSIG RRset to go is a change, and
    the signer puts it back, made afresh."""
    values = [RRsetValue(ref.name, "RRSIG", 0)]
    apply_changes_sync(txn, ref, values, actor=changes.ACTOR, via=changes.ACTOR)


async def maintain(db: Database, interval: float = 60.0, rescan: float = 3600.0) -> None:
    """The leader's periodic job: every `interval` the apex of each signed zone is checked
    (signatures due, an SOA changed), every `rescan` every owner's signatures."""
    last_scan = -rescan
    while True:
        try:
            clock = asyncio.get_running_loop().time()
            owners = clock - last_scan >= rescan
            for step in await keyroll.advance_due(db):
                log.info("dnssec: zone %s %s roll %s", step.zone, step.role, step.state)
            count = await resign_due(db, owners=owners)
            if owners:
                last_scan = clock
            if count:
                log.info("dnssec: %d owners re-signed", count)
        except Exception:
            log.exception("dnssec: re-signing failed; retrying")
        await asyncio.sleep(interval)  # a periodic job, like group ageing
