"""RFC 2136 UPDATE semantics over the store: prerequisites, then RRset changes, in one transaction.

The DNS layer parses and authenticates the message and hands over plain values; this
module decides with the store's data (not the in-memory index), so concurrent writers
from other processes are seen, and every change goes through apply_change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import dns.rcode
import sqlalchemy as sa

from homing.domain.errors import HomingError
from homing.domain.names import in_zone
from homing.domain.outcomes import Outcome
from homing.domain.records import RRsetValue
from homing.service.changes import ZoneRef, apply_change
from homing.store.db import Database, Txn
from homing.store.schema import hosts, rrsets, zones

PrerequisiteKind = Literal[
    "name_in_use", "name_absent", "rrset_exists", "rrset_absent", "rrset_equals"
]
OperationKind = Literal["add", "delete_rrset", "delete_name", "delete_rr"]

HOST_KEY_TYPES = frozenset({"A", "AAAA", "TXT"})
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
    """What the signing key may change: its zone, or one host's A/AAAA/TXT."""

    zone: str
    host: str | None = None


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
) -> int:
    """Check, then apply; returns how many RRsets changed. Raises UpdateRefused with the rcode."""
    if scope.zone != zone_name:
        raise UpdateRefused(dns.rcode.Rcode.NOTAUTH, "key is not for this zone")
    names = {p.name for p in prerequisites} | {op.name for op in operations}
    for name in names:
        if not in_zone(name, zone_name):
            raise UpdateRefused(dns.rcode.Rcode.NOTZONE, f"{name} is outside {zone_name}")
    for op in operations:
        _check_scope(op, scope, zone_name)

    async def unit(txn: Txn) -> int:
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
        zone = ZoneRef(row.id, zone_name)
        current = await _load(txn, zone, names)
        for prerequisite in prerequisites:
            _check(prerequisite, current, zone_name)
        working = _Working(dict(current))
        for op in operations:
            _apply(op, working, zone_name)
        changed = 0
        for key in sorted(working.touched):
            before = current.get(key)
            after = working.values.get(key) or RRsetValue(key[0], key[1], 0, ())
            if before == after or (before is None and not after.rdatas):
                continue
            if await apply_change(txn, zone, after, actor=actor, via="rfc2136"):
                changed += 1
        if changed:
            await _mark_hosts(txn, {name for name, _ in working.touched})
        return changed

    return await db.write(unit)


def _check_scope(op: Operation, scope: UpdateScope, zone_name: str) -> None:
    if scope.host is not None:
        if op.name != scope.host:
            raise UpdateRefused(dns.rcode.Rcode.REFUSED, f"this key may only change {scope.host}")
        if op.kind == "delete_name":
            return  # limited to the host's own types in _apply
        if op.rtype not in HOST_KEY_TYPES:
            raise UpdateRefused(dns.rcode.Rcode.REFUSED, "a host key may change A, AAAA and TXT")


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


def _apply(op: Operation, working: _Working, zone: str) -> None:
    """RFC 2136 section 3.4.2, with homing's SOA and apex NS left alone."""
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
