"""DNSSEC use cases: signing on and off, DS for the parent, signatures renewed before expiry."""

from __future__ import annotations

import asyncio
import logging
import time
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
    CDNSKEY_DELETE,
    CDS_DELETE,
    DEFAULT_ALGORITHM,
    DNSKEY_TTL,
    PUBLISHED,
    DnssecError,
    ZoneKey,
    add_key_sync,
    algorithm_number,
    dnskey_texts,
    ds_texts,
    generate,
    key_ttl_sync,
    parsed_key,
    unsigning_sync,
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
from homing.service import keyroll, parentds
from homing.service.changes import ZoneRef, apply_changes_sync
from homing.service.zones import own_records, zone_row
from homing.store.db import Database, SyncTxn, Txn, as_utc, now
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
    # "signed"; "unsigning": signed still, CDS/CDNSKEY DELETE published until the parent
    # drops its DS; "resumed": signed on, the DELETE withdrawn; "unsigned": keys and
    # signatures gone.
    state: str = "signed"


async def enable(
    db: Database, name: str, *, algorithm: str = DEFAULT_ALGORITHM, split: bool = False
) -> Signing:
    """Sign the zone: new keys (a CSK, or a KSK and a ZSK with `split`), then every RRset
    signed and the NSEC3 chain built, in one transaction. The signatures are made first,
    from a snapshot, outside it; only RRsets changed since are signed inside."""
    zone_name = normalize(name)
    number = algorithm_number(algorithm)
    resumed = await _resume(db, zone_name)
    if resumed is not None:
        return resumed
    pems = [(role, generate(number)) for role in (("ksk", "zsk") if split else ("csk",))]

    def presign(conn: sa.Connection) -> changes.Pending:
        row = conn.execute(sa.select(zones).where(zones.c.name == zone_name)).first()
        if row is None:
            return changes.Pending()  # the write says so
        keys = [parsed_key(0, role, number, ACTIVE, pem, row.created_at) for role, pem in pems]
        apex = key_rrsets(zone_name, keys, row.minimum, min(DNSKEY_TTL, row.soa_ttl))
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
    values = key_rrsets(ref.name, keys, int(minimum or 0), key_ttl_sync(txn.conn, ref.id))
    with changes.everything(memo):
        entries = apply_changes_sync(txn, ref, values, actor=changes.ACTOR, via=changes.ACTOR)
    return Signing(ref.name, len(keys), len(entries))


def key_rrsets(zone: str, keys: list[ZoneKey], ttl: int, key_ttl: int) -> list[RRsetValue]:
    """The apex RRsets the keys make: DNSKEY (with `key_ttl`) and NSEC3PARAM (with the
    zone's negative TTL, `ttl`)."""
    return [
        RRsetValue(zone, "DNSKEY", key_ttl, dnskey_texts(keys)),
        RRsetValue(zone, "NSEC3PARAM", ttl, (NSEC3PARAM,)),
    ]


async def _resume(db: Database, zone_name: str) -> Signing | None:
    """Turning signing on in the unsigning phase: the zone stays signed with its keys and
    the DELETE records are withdrawn. None when the zone is not in that phase."""

    async def unit(txn: Txn) -> Signing | None:
        ref = own_records(await zone_row(txn.conn, zone_name), "signatures")
        return await txn.run_sync(lambda sync: _resume_sync(sync, ref))

    return await db.write(unit)


def _resume_sync(txn: SyncTxn, ref: ZoneRef) -> Signing | None:
    if not unsigning_sync(txn.conn, ref.id, ref.name):
        return None
    keys = zone_keys_sync(txn.conn, ref.id)
    values = keyroll.apex_values(ref.name, keys, key_ttl_sync(txn.conn, ref.id))
    entries = apply_changes_sync(txn, ref, values, actor=changes.ACTOR, via=changes.ACTOR)
    return Signing(ref.name, len(keys), len(entries), "resumed")


async def disable(db: Database, name: str, *, at_once: bool = False) -> Signing:
    """Stop signing. The zone stays signed and publishes CDS and CDNSKEY DELETE (RFC 8078)
    until the parent no longer has a DS for it and the DS's TTL has passed (the leader
    checks: maintain()); then, or with `at_once`, the keys, signatures, NSEC3 chain and
    DNSKEY go in one transaction. Removed while resolvers still hold a DS, the zone would
    be bogus to them: docs/dnssec.md."""
    zone_name = normalize(name)

    async def unit(txn: Txn) -> Signing:
        ref = own_records(await zone_row(txn.conn, zone_name), "signatures")
        if at_once:
            return await txn.run_sync(lambda sync: _disable(sync, ref))
        return await txn.run_sync(lambda sync: _start_unsigning(sync, ref))

    return await db.write(unit)


def _start_unsigning(txn: SyncTxn, ref: ZoneRef) -> Signing:
    keys = zone_keys_sync(txn.conn, ref.id)
    if not keys:
        raise DnssecError(f"zone {ref.name} is not signed")
    if unsigning_sync(txn.conn, ref.id, ref.name):
        raise DnssecError(
            f"zone {ref.name} is being unsigned already: it waits for the parent to drop its"
            " DS (--now removes the signatures at once)"
        )
    if any(k.state != ACTIVE for k in keys):
        raise DnssecError(f"a key roll is under way in zone {ref.name}: finish it first (--step)")
    ttl = key_ttl_sync(txn.conn, ref.id)
    values = [
        RRsetValue(ref.name, "CDS", ttl, (CDS_DELETE,)),
        RRsetValue(ref.name, "CDNSKEY", ttl, (CDNSKEY_DELETE,)),
    ]
    entries = apply_changes_sync(txn, ref, values, actor=changes.ACTOR, via=changes.ACTOR)
    return Signing(ref.name, len(keys), len(entries), "unsigning")


def _disable(txn: SyncTxn, ref: ZoneRef) -> Signing:
    conn = txn.conn
    count = conn.execute(sa.delete(dnssec_keys).where(dnssec_keys.c.zone_id == ref.id)).rowcount
    if not count:
        raise DnssecError(f"zone {ref.name} is not signed")
    conn.execute(sa.update(zones).where(zones.c.id == ref.id).values(signed=False))
    rows = conn.execute(
        sa.select(rrsets.c.name, rrsets.c.rtype).where(
            rrsets.c.zone_id == ref.id, rrsets.c.rtype.in_(sorted(changes.SIGNER_TYPES))
        )
    ).all()
    values = [RRsetValue(r.name, r.rtype, 0) for r in rows]
    entries = apply_changes_sync(txn, ref, values, actor=changes.ACTOR, via=changes.ACTOR)
    return Signing(ref.name, count, len(entries), "unsigned")


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
    seconds left), at most `batch` owners a pass, and the apex when its signatures are due
    or its SOA's values changed; with `owners` False, the apex alone. How many owners were
    re-signed.

    The due owners are read and their signatures made outside any write transaction (in a
    thread); a short transaction then writes those whose RRsets are still as read. An
    owner changed meanwhile was signed afresh by that change, or is due at the next pass.
    """

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
        for _ in range(_MAX_BATCHES):

            async def read(conn: AsyncConnection, ref: ZoneRef = ref) -> _Due | None:
                return await conn.run_sync(
                    lambda sync: _due_snapshot(sync, ref, owners=owners, before=before, batch=batch)
                )

            snapshot = await db.read(read)
            if snapshot is None:
                break
            fresh = await asyncio.to_thread(snapshot.sign)

            async def unit(
                txn: Txn, snapshot: _Due = snapshot, fresh: list[RRsetValue] = fresh
            ) -> int:
                return await txn.run_sync(lambda sync: _write_resigned(sync, snapshot, fresh))

            written = await db.write(unit)
            total += written
            if len(snapshot.names) < batch or not written:
                break  # the last batch, or every owner in it changed: the next pass
        else:
            continue

        async def apex(txn: Txn, ref: ZoneRef = ref) -> None:
            await txn.run_sync(lambda sync: _refresh_apex_if_stale(sync, ref, before))

        await db.write(apex)
    return total


@dataclass(frozen=True)
class _Due:
    """Owners of one zone with signatures due, their RRsets as read, the keys that sign."""

    ref: ZoneRef
    keys: tuple[ZoneKey, ...]
    now: float
    names: tuple[str, ...]
    stored: dict[str, dict[str, RRsetValue]]

    def sign(self) -> list[RRsetValue]:
        """Each owner's RRSIG RRset made afresh over the types its signatures cover (CPU
        only: no store, no event loop)."""
        signer = Signer(self.ref.name, list(self.keys), self.now)
        values = []
        for name in self.names:
            node = self.stored.get(name, {})
            old = node.get("RRSIG")
            if old is None:
                continue
            types = sorted({covered(s) for s in old.rdatas} & set(node))
            sigs = [s for t in types for s in signer.signatures(node[t])]
            values.append(RRsetValue(name, "RRSIG", old.ttl, tuple(sorted(sigs))))
        return values


def _key_state(keys: list[ZoneKey] | tuple[ZoneKey, ...]) -> list[tuple[int, str]]:
    return [(k.id, k.state) for k in keys]


def _due_snapshot(
    conn: sa.Connection, ref: ZoneRef, *, owners: bool, before: float, batch: int
) -> _Due | None:
    """The zone's owners with signatures due (at most `batch`), read; None: none is due."""
    keys = zone_keys_sync(conn, ref.id)
    if not keys or not owners:
        return None
    now = time.time()
    horizon = now + before
    due: list[str] = []
    query = sa.select(rrsets.c.name, rrsets.c.rdatas).where(
        rrsets.c.zone_id == ref.id, rrsets.c.rtype == "RRSIG", rrsets.c.name != ref.name
    )
    for row in conn.execute(query):
        if any(expiration(s) < horizon for s in RRsetValue.decode_rdatas(row.rdatas)):
            due.append(row.name)
            if len(due) >= batch:
                break
    if not due:
        return None
    return _Due(ref, tuple(keys), now, tuple(due), _owners(conn, ref, due))


def _owners(
    conn: sa.Connection, ref: ZoneRef, names: list[str]
) -> dict[str, dict[str, RRsetValue]]:
    """Every RRset stored at `names`, by name and type."""
    stored: dict[str, dict[str, RRsetValue]] = {}
    for r in conn.execute(
        sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.ttl, rrsets.c.rdatas).where(
            rrsets.c.zone_id == ref.id, rrsets.c.name.in_(names)
        )
    ):
        value = RRsetValue(r.name, r.rtype, r.ttl, RRsetValue.decode_rdatas(r.rdatas))
        stored.setdefault(r.name, {})[r.rtype] = value
    return stored


def _write_resigned(txn: SyncTxn, due: _Due, fresh: list[RRsetValue]) -> int:
    """Write the signatures made apart for the owners whose RRsets are as they were read
    (and with the same keys signing); how many were written."""
    if _key_state(zone_keys_sync(txn.conn, due.ref.id)) != _key_state(due.keys):
        return 0  # a key roll's step came between: everything is signed again next pass
    now = _owners(txn.conn, due.ref, list(due.names))
    unchanged = [
        value
        for value in fresh
        if _same_node(now.get(value.name, {}), due.stored.get(value.name, {}))
    ]
    apply_changes_sync(txn, due.ref, unchanged, actor=changes.ACTOR, via=changes.ACTOR)
    return len(unchanged)


def _same_node(a: dict[str, RRsetValue], b: dict[str, RRsetValue]) -> bool:
    return a.keys() == b.keys() and all(
        a[t].ttl == b[t].ttl and a[t].encode() == b[t].encode() for t in a
    )


def _refresh_apex_if_stale(txn: SyncTxn, ref: ZoneRef, before: float) -> None:
    if zone_keys_sync(txn.conn, ref.id) and _apex_stale(
        txn.conn, ref, txn.now.timestamp() + before
    ):
        _touch_apex(txn, ref)


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


async def set_parent_servers(db: Database, name: str, servers: list[str]) -> list[str]:
    """The parent name servers (ADDRESS[:PORT]) the leader asks for the zone's DS; an empty
    list: none, the operator takes those steps (--step, --now)."""
    zone_name = normalize(name)
    chosen = parentds.parse_servers(servers)

    async def unit(txn: Txn) -> list[str]:
        row = await zone_row(txn.conn, zone_name)
        await txn.conn.execute(
            sa.update(zones).where(zones.c.id == row.id).values(parent_servers="\n".join(chosen))
        )
        return chosen

    return await db.write(unit)


@dataclass(frozen=True)
class _Waiting:
    """A signed zone whose next step waits for its parent."""

    id: int
    name: str
    servers: tuple[str, ...]
    goal: str  # "unsign" (no DS at all wanted) or "switch" (the new entry key's DS wanted)
    key: ZoneKey | None  # the new entry key of a switch
    key_ttl: int  # of the DNSKEY RRset: how long resolvers may trust the keys they hold


class ParentWatch:
    """The leader's watch on the parents of zones waiting for them: a KSK roll's switch
    once every server names the new key in its DS RRset, the end of signing once none
    has a DS, each once the largest DS TTL seen has passed since it was first so (and
    the DNSKEY TTL: for the end of signing after it, for a switch since the new key was
    published).

    What was seen is kept in memory: a new leader starts watching afresh (and waits a
    TTL again), which is safe."""

    def __init__(self, interval: float = 300.0) -> None:
        self.interval = interval
        self._checked: dict[int, float] = {}  # zone id -> loop time of the last check
        self._since: dict[int, tuple[str, float]] = {}  # zone id -> (goal, first met)
        self._ttl: dict[int, int] = {}  # zone id -> the largest DS TTL seen

    async def check(self, db: Database) -> list[str]:
        """Ask the parents of the zones due a check; take the steps whose time has come.
        What was done, one line per zone."""
        done = []
        waiting = await db.read(lambda conn: conn.run_sync(_waiting_zones))
        for gone in set(self._checked) - {w.id for w in waiting}:
            self._forget(gone)
        clock = asyncio.get_running_loop().time()
        for zone in waiting:
            last = self._checked.get(zone.id)
            if last is not None and clock - last < self.interval:
                continue
            self._checked[zone.id] = clock
            line = await self._check_zone(db, zone, clock)
            if line:
                done.append(line)
        return done

    async def _check_zone(self, db: Database, zone: _Waiting, clock: float) -> str | None:
        results = await asyncio.gather(
            *(parentds.ask(s, zone.name) for s in zone.servers), return_exceptions=True
        )
        answers = []
        for server, result in zip(zone.servers, results, strict=True):
            if isinstance(result, parentds.ParentAnswer):
                answers.append(result)
            elif isinstance(result, parentds.ParentError):
                log.warning("dnssec: zone %s: parent %s", zone.name, result)
            else:
                log.warning("dnssec: zone %s: parent %s: %r", zone.name, server, result)
        if len(answers) < len(zone.servers):
            self._since.pop(zone.id, None)  # every server must agree, checked afresh
            return None
        ttl = max([self._ttl.get(zone.id, 0), *(a.ttl for a in answers)])
        self._ttl[zone.id] = ttl
        if zone.goal == "unsign":
            met = all(not a.ds for a in answers)
        else:
            assert zone.key is not None
            key = zone.key.dnskey
            met = all(parentds.names_key(a, zone.name, key) for a in answers)
        if not met:
            self._since.pop(zone.id, None)
            return None
        goal, since = self._since.setdefault(zone.id, (zone.goal, clock))
        if goal != zone.goal:
            self._since[zone.id] = (zone.goal, clock)
            since = clock
        # Unsigned, the zone must find no resolver still holding its DS, nor its DNSKEY
        # RRset fetched while the DS was still there. The new key signs once no resolver
        # holds the DS RRset without it, nor the DNSKEY RRset without it.
        if zone.goal == "unsign":
            wait = ttl + zone.key_ttl - (clock - since)
        else:
            assert zone.key is not None
            published = (now() - (as_utc(zone.key.changed_at) or now())).total_seconds()
            wait = max(ttl - (clock - since), zone.key_ttl - published)
        if wait > 0:
            log.info(
                "dnssec: zone %s: the parent is ready (%s); waiting %d s for the TTLs",
                zone.name, zone.goal, int(wait) + 1,
            )  # fmt: skip
            return None
        self._forget(zone.id)
        if zone.goal == "unsign":
            unsigned = await disable(db, zone.name, at_once=True)
            return f"zone {unsigned.zone}: the parent has no DS; unsigned"
        assert zone.key is not None
        step = await keyroll.switch(db, zone.name, zone.key.id)
        return (
            None
            if step is None
            else f"zone {step.zone}: the parent has the new DS; {step.role} roll {step.state}"
        )

    def _forget(self, zone_id: int) -> None:
        for memory in (self._checked, self._since, self._ttl):
            memory.pop(zone_id, None)


def _waiting_zones(conn: sa.Connection) -> list[_Waiting]:
    """The signed zones with parent servers named whose next step waits for the parent."""
    rows = conn.execute(
        sa.select(zones.c.id, zones.c.name, zones.c.parent_servers)
        .where(zones.c.id.in_(sa.select(dnssec_keys.c.zone_id)), zones.c.parent_servers != "")
        .order_by(zones.c.id)
    ).all()
    out = []
    for row in rows:
        servers = tuple(s for s in row.parent_servers.splitlines() if s)
        ttl = key_ttl_sync(conn, row.id)
        if unsigning_sync(conn, row.id, row.name):
            out.append(_Waiting(row.id, row.name, servers, "unsign", None, ttl))
            continue
        keys = zone_keys_sync(conn, row.id)
        new = next((k for k in keys if k.entry and k.state == PUBLISHED), None)
        if new is not None:
            out.append(_Waiting(row.id, row.name, servers, "switch", new, ttl))
    return out


async def maintain(
    db: Database, interval: float = 60.0, rescan: float = 3600.0, parents: float = 300.0
) -> None:
    """The leader's periodic job: every `interval` the apex of each signed zone is checked
    (signatures due, an SOA changed) and the key rolls' due steps taken, every `rescan`
    every owner's signatures; a zone waiting for its parent has it asked every `parents`."""
    last_scan = -rescan
    watch = ParentWatch(parents)
    while True:
        try:
            clock = asyncio.get_running_loop().time()
            owners = clock - last_scan >= rescan
            for step in await keyroll.advance_due(db):
                log.info("dnssec: zone %s %s roll %s", step.zone, step.role, step.state)
            for line in await watch.check(db):
                log.info("dnssec: %s", line)
            count = await resign_due(db, owners=owners)
            if owners:
                last_scan = clock
            if count:
                log.info("dnssec: %d owners re-signed", count)
        except Exception:
            log.exception("dnssec: re-signing failed; retrying")
        await asyncio.sleep(min(interval, parents))  # a periodic job, like group ageing
