"""RFC 2136 UPDATE semantics over the store: prerequisites, then RRset changes, in one transaction.

The DNS layer parses and authenticates the message and hands over plain values; this
module decides with the store's data (not the in-memory index), so concurrent writers
from other processes are seen, and every change goes through apply_change.

A zone key may change anything in its zones but the SOA and the apex NS, or with an
update policy only what its grants allow (see `keypolicy`). A host key
stands in for its host's update secret, so it gets no more than dyndns2 gives: A, AAAA
and TXT at the host's own name and TXT at `_acme-challenge.<host>` (for ACME DNS-01),
deletes that take only those types, the host's TTL whatever the request asks, and only
while the host may update (status active: not blocked, suspended, disabled or inactive).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

import dns.rcode
import sqlalchemy as sa

from homing.domain.addresses import record_address_problem
from homing.domain.errors import HomingError
from homing.domain.names import in_zone
from homing.domain.outcomes import Outcome
from homing.domain.records import RRsetValue
from homing.service.challenges import DEFAULT_CHANGES_PER_HOUR as ACME_PER_HOUR
from homing.service.challenges import DEFAULT_VALUES as ACME_VALUES
from homing.service.challenges import limit_reached
from homing.service.changes import ZoneRef, apply_change
from homing.service.keypolicy import Grant, allowed_types
from homing.service.replays import SignedRequest, claim, remember_refusal
from homing.store.db import Database, Txn, as_utc
from homing.store.schema import accounts, hosts, plans, rrsets, zones

PrerequisiteKind = Literal[
    "name_in_use", "name_absent", "rrset_exists", "rrset_absent", "rrset_equals"
]
OperationKind = Literal["add", "delete_rrset", "delete_name", "delete_rr"]

HOST_KEY_TYPES = frozenset({"A", "AAAA", "TXT"})
ACME_LABEL = "_acme-challenge"
ACME_TYPES = frozenset({"TXT"})
ADDRESS_TYPES = frozenset({"A", "AAAA"})
# The SOA is homing's own (its serial is the journal position); apex NS only via the operator.
PROTECTED_AT_APEX = frozenset({"SOA", "NS"})


class UpdateRefused(HomingError):
    """An UPDATE answered with a DNS rcode other than NOERROR; nothing was changed."""

    outcome = Outcome.BAD_REQUEST

    def __init__(self, rcode: dns.rcode.Rcode, message: str) -> None:
        super().__init__(message)
        self.rcode = rcode


@dataclass(frozen=True)
class Prerequisite:
    kind: PrerequisiteKind
    name: str
    rtype: str | None = None
    rdatas: tuple[str, ...] = ()


@dataclass(frozen=True)
class Operation:
    kind: OperationKind
    name: str
    rtype: str | None = None
    ttl: int = 0
    rdata: str | None = None


@dataclass(frozen=True)
class UpdateScope:
    """The signing key's reach: its zones (under its grants), or (`host` set) what a host
    key may change."""

    zone: str
    host: str | None = None
    also: tuple[str, ...] = ()  # further zones of a zone key
    grants: tuple[Grant, ...] | None = None  # None: anything in its zones

    def covers(self, zone: str) -> bool:
        return zone == self.zone or zone in self.also

    def types_at(self, name: str) -> frozenset[str] | None:
        """The record types this key may change at `name`; None: any."""
        host = self.host
        if host is None:
            return None if self.grants is None else allowed_types(self.grants, name)
        if name == host:
            return HOST_KEY_TYPES
        if name == f"{ACME_LABEL}.{host}":
            return ACME_TYPES
        return frozenset()


@dataclass
class _Working:
    """The RRsets an update touches, as they become."""

    values: dict[tuple[str, str], RRsetValue] = field(default_factory=dict)
    touched: set[tuple[str, str]] = field(default_factory=set)


async def apply_update(
    db: Database,
    zone_name: str,
    prerequisites: list[Prerequisite],
    operations: list[Operation],
    scope: UpdateScope,
    *,
    actor: str,
    signed: SignedRequest | None = None,
    allow_local: bool = False,
) -> int:
    """Check, then apply; returns how many RRsets changed. Raises UpdateRefused with the rcode.

    `signed`: the message's TSIG identity; a copy of a message answered before raises
    Repeated with that answer's rcode and changes nothing. `allow_local`: loopback and
    link-local addresses may be published (the operator's setting).
    """
    try:
        return await _apply_update(
            db, zone_name, prerequisites, operations, scope, actor, signed, allow_local
        )
    except UpdateRefused as refused:
        if signed is not None:
            await remember_refusal(db, signed, refused.rcode)
        raise


async def _apply_update(
    db: Database,
    zone_name: str,
    prerequisites: list[Prerequisite],
    operations: list[Operation],
    scope: UpdateScope,
    actor: str,
    signed: SignedRequest | None,
    allow_local: bool,
) -> int:
    if not scope.covers(zone_name):
        raise UpdateRefused(dns.rcode.Rcode.NOTAUTH, "key is not for this zone")
    names = {p.name for p in prerequisites} | {op.name for op in operations}
    for name in names:
        if not in_zone(name, zone_name):
            raise UpdateRefused(dns.rcode.Rcode.NOTZONE, f"{name} is outside {zone_name}")
    for op in operations:
        _check_scope(op, scope)
        if op.kind == "add" and op.rtype in ADDRESS_TYPES:
            assert op.rdata is not None
            _check_address(op.rtype, op.rdata, allow_local)

    async def unit(txn: Txn) -> int:
        if signed is not None:
            await claim(txn, signed, dns.rcode.Rcode.NOERROR)  # a refusal rolls it back
        row = (
            await txn.conn.execute(
                sa.select(zones.c.id, zones.c.primary_target).where(zones.c.name == zone_name)
            )
        ).first()
        if row is None:
            raise UpdateRefused(dns.rcode.Rcode.NOTAUTH, f"zone {zone_name} is not served here")
        if row.primary_target is not None:
            # RFC 2136 3.1.1 has a secondary forward the update to its primary; homing does
            # not forward, and refuses (as BIND does without update forwarding).
            raise UpdateRefused(
                dns.rcode.Rcode.REFUSED, f"zone {zone_name} is a secondary zone here"
            )
        ops = operations
        terms = None
        if scope.host is not None:
            terms = await _host_terms(txn, scope.host)
            ops = [replace(op, ttl=terms.ttl) if op.kind == "add" else op for op in operations]
        zone = ZoneRef(row.id, zone_name)
        current = await _load(txn, zone, names)
        for prerequisite in prerequisites:
            _check(prerequisite, current, zone_name)
        working = _Working(dict(current))
        for op in ops:
            _apply(op, working, zone_name, scope.types_at(op.name))
        moves = []
        for key in sorted(working.touched):
            before = current.get(key)
            after = working.values.get(key) or RRsetValue(key[0], key[1], 0, ())
            if before != after and (before is not None or after.rdatas):
                moves.append(after)
        if terms is not None and any(value.name == terms.host for value in moves):
            # The host's own records only: an ACME client sets and clears its challenge
            # TXT within seconds, whatever the plan's pace for addresses.
            terms.check_interval(txn.now)
        if terms is not None:
            await terms.check_challenges(txn, zone, moves)
        changed = 0
        for after in moves:
            if await apply_change(txn, zone, after, actor=actor, via="rfc2136"):
                changed += 1
        if changed:
            await _mark_hosts(txn, {name for name, _ in working.touched})
        return changed

    return await db.write(unit)


def _check_scope(op: Operation, scope: UpdateScope) -> None:
    types = scope.types_at(op.name)
    if types is None:
        return  # a zone key
    if not types:
        if scope.host is None:
            raise UpdateRefused(
                dns.rcode.Rcode.REFUSED, f"this key's policy grants nothing at {op.name}"
            )
        raise UpdateRefused(dns.rcode.Rcode.REFUSED, f"this key may only change {scope.host}")
    if op.kind != "delete_name" and op.rtype not in types:
        # A delete_name is allowed, and takes only these types (see _apply).
        allowed = ", ".join(sorted(types))
        raise UpdateRefused(dns.rcode.Rcode.REFUSED, f"this key may change {allowed} at {op.name}")


def _check_address(rtype: str, text: str, allow_local: bool) -> None:
    """The domain's address rules, the same for every door an address comes in by."""
    problem = record_address_problem(rtype, text, allow_local=allow_local)
    if problem is not None:
        raise UpdateRefused(dns.rcode.Rcode.REFUSED, problem)


@dataclass(frozen=True)
class _HostTerms:
    """What a host's plan allows a host key, as dyndns2 applies it."""

    host: str
    ttl: int
    min_interval: int  # seconds between changes; 0: no limit
    last_change_at: datetime | None
    acme_values: int  # challenge TXT values held at once
    acme_per_hour: int  # challenge changes within an hour

    async def check_challenges(self, txn: Txn, zone: ZoneRef, moves: list[RRsetValue]) -> None:
        """The plan's challenge limits, as the other doors apply them: values held at once
        and changes within the hour."""
        name = f"{ACME_LABEL}.{self.host}"
        for value in moves:
            if value.name != name or value.rtype != "TXT":
                continue
            limit = await limit_reached(
                txn.conn,
                zone.id,
                name,
                len(value.rdatas),
                self.acme_values,
                self.acme_per_hour,
                txn.now,
            )
            if limit == "values":
                raise UpdateRefused(
                    dns.rcode.Rcode.REFUSED,
                    f"{name} may hold {self.acme_values} values (the plan's limit)",
                )
            if limit == "often":
                raise UpdateRefused(
                    dns.rcode.Rcode.REFUSED,
                    f"{name} changed {self.acme_per_hour} times within the hour (the plan's limit)",
                )

    def check_interval(self, now: datetime) -> None:
        last = as_utc(self.last_change_at)
        if not self.min_interval or last is None:
            return
        if now - last < timedelta(seconds=self.min_interval):
            raise UpdateRefused(
                dns.rcode.Rcode.REFUSED,
                f"{self.host} changed less than {self.min_interval} s ago (the plan's limit)",
            )


async def _host_terms(txn: Txn, host: str) -> _HostTerms:
    """REFUSED unless the host may update now (the same rule as dyndns2's: a blocked,
    suspended, disabled or inactive host takes no update)."""
    row = (
        await txn.conn.execute(
            sa.select(
                hosts.c.status,
                hosts.c.ttl,
                hosts.c.last_change_at,
                plans.c.min_interval,
                plans.c.acme_values,
                plans.c.acme_changes_per_hour,
            )
            .select_from(
                hosts.join(accounts, accounts.c.id == hosts.c.owner_id).outerjoin(
                    plans, plans.c.id == accounts.c.plan_id
                )
            )
            .where(hosts.c.name == host)
        )
    ).first()
    if row is None:
        raise UpdateRefused(dns.rcode.Rcode.REFUSED, f"no host {host}")
    if row.status != "active":
        raise UpdateRefused(dns.rcode.Rcode.REFUSED, f"host {host} is {row.status}")
    return _HostTerms(
        host,
        int(row.ttl),
        int(row.min_interval or 0),
        row.last_change_at,
        ACME_VALUES if row.acme_values is None else int(row.acme_values),
        ACME_PER_HOUR if row.acme_changes_per_hour is None else int(row.acme_changes_per_hour),
    )


async def _load(txn: Txn, zone: ZoneRef, names: set[str]) -> dict[tuple[str, str], RRsetValue]:
    rows = await txn.conn.execute(
        sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.ttl, rrsets.c.rdatas).where(
            rrsets.c.zone_id == zone.id, rrsets.c.name.in_(sorted(names))
        )
    )
    return {
        (r.name, r.rtype): RRsetValue(r.name, r.rtype, r.ttl, RRsetValue.decode_rdatas(r.rdatas))
        for r in rows
    }


def _exists(current: dict[tuple[str, str], RRsetValue], name: str, rtype: str, zone: str) -> bool:
    if rtype == "SOA":
        return name == zone
    return (name, rtype) in current


def _check(p: Prerequisite, current: dict[tuple[str, str], RRsetValue], zone: str) -> None:
    """RFC 2136 section 3.2: each failed prerequisite has its own rcode."""
    in_use = name_in_use(current, p.name, zone)
    if p.kind == "name_in_use" and not in_use:
        raise UpdateRefused(dns.rcode.Rcode.NXDOMAIN, f"{p.name} does not exist")
    if p.kind == "name_absent" and in_use:
        raise UpdateRefused(dns.rcode.Rcode.YXDOMAIN, f"{p.name} exists")
    if p.kind in ("rrset_exists", "rrset_absent", "rrset_equals"):
        assert p.rtype is not None
        exists = _exists(current, p.name, p.rtype, zone)
        if p.kind == "rrset_exists" and not exists:
            raise UpdateRefused(dns.rcode.Rcode.NXRRSET, f"{p.name} {p.rtype} does not exist")
        if p.kind == "rrset_absent" and exists:
            raise UpdateRefused(dns.rcode.Rcode.YXRRSET, f"{p.name} {p.rtype} exists")
        if p.kind == "rrset_equals":
            value = current.get((p.name, p.rtype))
            if value is None or set(value.rdatas) != set(p.rdatas):
                raise UpdateRefused(dns.rcode.Rcode.NXRRSET, f"{p.name} {p.rtype} differs")


def name_in_use(current: dict[tuple[str, str], RRsetValue], name: str, zone: str) -> bool:
    return name == zone or any(key[0] == name for key in current)


def _apply(op: Operation, working: _Working, zone: str, types: frozenset[str] | None) -> None:
    """RFC 2136 section 3.4.2, with homing's SOA and apex NS left alone; `types`: what the
    key may change at the name (None: anything), which limits a delete_name."""
    values = working.values
    at_apex = op.name == zone
    if op.kind == "add":
        assert op.rtype is not None and op.rdata is not None
        if op.rtype == "SOA" or (at_apex and op.rtype == "NS"):
            return
        has_cname = (op.name, "CNAME") in values
        others = any(k[0] == op.name and k[1] != "CNAME" for k in values)
        if (op.rtype == "CNAME" and others) or (op.rtype != "CNAME" and has_cname):
            return  # RFC 2136 3.4.2.2: CNAME and other data never share a name
        key = (op.name, op.rtype)
        old = values.get(key)
        rdatas = set(old.rdatas) if old else set()
        rdatas.add(op.rdata)
        if op.rtype == "CNAME":
            rdatas = {op.rdata}
        values[key] = RRsetValue(op.name, op.rtype, op.ttl, tuple(sorted(rdatas)))
        working.touched.add(key)
    elif op.kind == "delete_rrset":
        assert op.rtype is not None
        if at_apex and op.rtype in PROTECTED_AT_APEX:
            return
        key = (op.name, op.rtype)
        if key in values:
            del values[key]
            working.touched.add(key)
    elif op.kind == "delete_name":
        for key in [k for k in values if k[0] == op.name]:
            if at_apex and key[1] in PROTECTED_AT_APEX:
                continue
            if types is not None and key[1] not in types:
                continue  # a host key's delete leaves the operator's records be
            del values[key]
            working.touched.add(key)
    elif op.kind == "delete_rr":
        assert op.rtype is not None and op.rdata is not None
        key = (op.name, op.rtype)
        old = values.get(key)
        if old is None or op.rtype == "SOA":
            return
        remaining = tuple(r for r in old.rdatas if r != op.rdata)
        if at_apex and op.rtype == "NS" and not remaining:
            return  # never the last apex NS
        if remaining:
            values[key] = RRsetValue(op.name, op.rtype, old.ttl, remaining)
        else:
            del values[key]
        working.touched.add(key)


async def _mark_hosts(txn: Txn, names: set[str]) -> None:
    """Hosts changed by RFC 2136 show it on their status like any other update."""
    await txn.conn.execute(
        sa.update(hosts)
        .where(hosts.c.name.in_(sorted(names)))
        .values(
            last_update_at=txn.now,
            last_change_at=txn.now,
            last_via="rfc2136",
            last_result=Outcome.GOOD.name,
        )
    )
