"""What a change to a signed zone writes besides itself: RRSIGs, the NSEC3 chain, the SOA's RRSIG.

apply_changes_sync() hands its changed RRsets here before writing anything; the RRsets
returned with them are written and journalled in the same transaction, so every follower,
IXFR and push carries them with no path of their own. A zone without keys costs one query.

The store holds one RRSIG RRset per owner (every signature at that name, whatever it
covers, the smallest TTL of what it covers) and one NSEC3 RRset per hashed owner: both are
ordinary RRsets to the index, AXFR and IXFR.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa

from homing.dnssec import chain
from homing.dnssec.keys import ZoneKey, zone_keys_sync
from homing.dnssec.signer import (
    OWN_TYPES,
    RESIGN_BEFORE,
    Signer,
    covered,
    expiration,
    hashed_owner,
    negative_ttl,
    soa_value,
)
from homing.domain.records import RRsetValue
from homing.store.db import SyncTxn
from homing.store.schema import rrsets, zones

Change = tuple[RRsetValue | None, RRsetValue, str, str]  # (old, new, actor, via)

ACTOR = "dnssec"
# Types in a signed zone that only the signer writes.
SIGNER_TYPES = frozenset({*OWN_TYPES, "NSEC3PARAM", "DNSKEY", "CDS", "CDNSKEY"})
# Above this many names, the zone is read whole rather than name by name.
_WHOLE_ZONE_READ = 500
# Set while a zone is signed afresh: every RRset is treated as changed.
# (With the signatures made for it beforehand, by RRset: see Signer.)
Memo = dict[tuple[str, str, int, str], list[str]]
_EVERYTHING: ContextVar[tuple[bool, Memo | None]] = ContextVar(
    "dnssec_everything", default=(False, None)
)


@contextlib.contextmanager
def everything(memo: Memo | None = None) -> Iterator[None]:
    """Within it, a change to a signed zone re-signs the whole zone and rebuilds its chain
    (reusing the signatures in `memo`, from presign())."""
    token = _EVERYTHING.set((True, memo))
    try:
        yield
    finally:
        _EVERYTHING.reset(token)


def sign_changes(txn: SyncTxn, zone_id: int, zone_name: str, changed: list[Change]) -> list[Change]:
    """`changed` and, for a signed zone, the RRSIG and NSEC3 RRsets that go with it."""
    keys = zone_keys_sync(txn.conn, zone_id)
    if not keys:
        return changed
    # Taking the zone's row lock now (PostgreSQL; SQLite's writer is alone anyway) makes
    # the serial read here the one the change ends at.
    row = txn.conn.execute(sa.select(zones).where(zones.c.id == zone_id).with_for_update()).one()
    # The records signing makes are the signer's alone: anyone else's values for them
    # (an RFC 2136 update, a zone file) are left out. The apex's RRSIG RRset is always
    # made here (the SOA's signature moves with the serial); the signer's own value for
    # it only asks for it to be made afresh.
    changed = [
        c
        for c in changed
        if (c[1].rtype not in SIGNER_TYPES or c[2] == ACTOR)
        and (c[1].name != zone_name or c[1].rtype != "RRSIG")
    ]
    whole, memo = _EVERYTHING.get()
    signer = Signer(zone_name, keys, txn.now.timestamp(), memo)
    work = _Work(txn.conn, zone_id, zone_name, signer, row, whole)
    extra = work.derive(changed)
    total = [*changed, *extra]
    apex_sigs = work.apex_signatures(row.serial + len(total) + 1)
    total.append(_change(work.stored_value(zone_name, "RRSIG"), apex_sigs))
    return total


class Pending:
    """The signatures a snapshot of a zone asks for, noted by presign() and not yet made."""

    def __init__(self, signer: Signer | None = None) -> None:
        self._signer = signer

    def sign(self) -> Memo:
        """Make them (CPU only: no store, no event loop), by RRset as Signer's memo."""
        if self._signer is None:
            return {}
        self._signer.sign_deferred()
        return self._signer.memo or {}


def presign(
    conn: sa.Connection, zone_id: int, zone_name: str, keys: list[ZoneKey], apex: list[RRsetValue]
) -> Pending:
    """The signatures the whole zone would get with `keys` and the `apex` RRsets, noted from
    a snapshot outside any write transaction: signing a large zone is most of the work of
    turning signing on or switching keys, and other writers need not wait for it. Make
    them with signed_apart()."""
    row = conn.execute(sa.select(zones).where(zones.c.id == zone_id)).one()
    signer = Signer(zone_name, keys, None, {})
    signer.defer()
    work = _Work(conn, zone_id, zone_name, signer, row, True)
    work.derive([(None, value, ACTOR, ACTOR) for value in apex])
    return Pending(signer)


async def signed_apart(pending: Pending) -> Memo:
    """The signatures `pending` asks for, made in a thread: the event loop it is awaited
    on keeps serving (DNS, HTTP) while a whole zone is signed."""
    return await asyncio.to_thread(pending.sign)


def _change(old: RRsetValue | None, new: RRsetValue) -> Change:
    return (old, new, ACTOR, ACTOR)


def _ancestors(name: str, apex: str) -> Iterator[str]:
    """The names above `name` up to (not including) the apex."""
    while name != apex and "." in name:
        name = name.split(".", 1)[1]
        if name == apex or not name.endswith("." + apex):
            return
        yield name


class _Work:
    """One transaction's signing: the state of the names it touches, before and after."""

    def __init__(
        self,
        conn: sa.Connection,
        zone_id: int,
        apex: str,
        signer: Signer,
        row: Any,
        everything: bool,
    ) -> None:
        self.conn = conn
        self.zone_id = zone_id
        self.apex = apex
        self.signer = signer
        self.row = row
        self.everything = everything
        self.nsec3_ttl = negative_ttl(row.minimum, row.soa_ttl)
        self.before: dict[str, dict[str, RRsetValue]] = {}  # name -> type -> stored RRset
        self.after: dict[str, dict[str, RRsetValue]] = {}
        self.changed_types: dict[str, set[str]] = {}

    # --- reading --------------------------------------------------------------------------

    def _read(self, names: Iterable[str] | None) -> None:
        query = sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.ttl, rrsets.c.rdatas).where(
            rrsets.c.zone_id == self.zone_id
        )
        wanted = None if names is None else set(names) - set(self.before)
        if wanted is not None:
            if not wanted:
                return
            if len(wanted) <= _WHOLE_ZONE_READ:
                query = query.where(rrsets.c.name.in_(sorted(wanted)))
        for r in self.conn.execute(query):
            if wanted is not None and r.name not in wanted:
                continue
            value = RRsetValue(r.name, r.rtype, r.ttl, RRsetValue.decode_rdatas(r.rdatas))
            self.before.setdefault(r.name, {})[r.rtype] = value
        for name in wanted if wanted is not None else list(self.before):
            self.before.setdefault(name, {})
            self.after.setdefault(name, dict(self.before[name]))

    def stored_value(self, name: str, rtype: str) -> RRsetValue | None:
        return self.before.get(name, {}).get(rtype)

    def _below(self, name: str) -> list[str]:
        """The stored names strictly below `name` (a zone cut that came or went)."""
        query = sa.select(rrsets.c.name).where(
            rrsets.c.zone_id == self.zone_id, _strictly_below(rrsets.c.name, name)
        )
        return sorted({r.name for r in self.conn.execute(query)})

    def _has_stored_descendant(self, name: str, decided: set[str]) -> bool:
        """Whether a name below `name`, other than those in `decided`, holds data."""
        query = (
            sa.select(rrsets.c.name)
            .where(
                rrsets.c.zone_id == self.zone_id,
                _strictly_below(rrsets.c.name, name),
                rrsets.c.rtype.notin_(sorted(OWN_TYPES)),
            )
            .limit(len(decided) + 1)
        )
        return any(r.name not in decided for r in self.conn.execute(query))

    # --- deriving -------------------------------------------------------------------------

    def derive(self, changed: list[Change]) -> list[Change]:
        """The RRSIG and NSEC3 changes that go with `changed` (the apex's RRSIG aside)."""
        apex = self.apex
        # Names whose data changed; signatures given as they are (re-signing) need nothing.
        touched = {apex} | {new.name for _, new, _, _ in changed if new.rtype not in OWN_TYPES}
        for _, new, _, _ in changed:
            if new.rtype == "NS" and new.name != apex:
                touched.update(self._below(new.name))  # a cut came or went: its names too
        self._read(None if self.everything else _with_ancestors(touched, apex))
        if self.everything:  # every name with data (hashed owners are the chain's)
            touched = {n for n, node in self.before.items() if set(node) - OWN_TYPES} | {apex}
        for _, new, _, _ in changed:
            node = self.after.setdefault(new.name, {})
            if new.rdatas:
                node[new.rtype] = new
            else:
                node.pop(new.rtype, None)
            self.changed_types.setdefault(new.name, set()).add(new.rtype)
        cuts = {n for n, node in self.after.items() if "NS" in node and n != apex}
        out: list[Change] = []
        for name in sorted(touched):
            if name == apex:
                continue  # the apex's RRSIG RRset is made last, with the SOA's
            sigs = self._signatures(name, cuts)
            self._emit(out, name, "RRSIG", sigs)
        # New values for RRsets that were there and stay (an address update) change no
        # name's types: the chain stays as it is.
        # (What was there is as read here, under the zone's lock, not as the caller saw it.)
        if self.everything or any(
            new.rtype not in self.before.get(new.name, {}) or not new.rdatas or new.rtype == "NS"
            for _, new, _, _ in changed
            if new.rtype not in OWN_TYPES
        ):
            names = self._chain_names(touched)
            out.extend(self._chain({name: self._chain_state(name, cuts) for name in names}))
        return out

    def _signed_types(self, name: str, cuts: set[str]) -> set[str]:
        """The types at `name` that carry signatures: none below a cut, DS alone at one."""
        types = {t for t in self.after.get(name, {}) if t not in OWN_TYPES and t != "SOA"}
        if any(a in cuts for a in _ancestors(name, self.apex)):
            return set()
        if name in cuts:
            return types & {"DS"}
        return types

    def _signatures(self, name: str, cuts: set[str]) -> RRsetValue:
        """The RRSIG RRset at a (non-apex) name after this change."""
        signed = self._signed_types(name, cuts)
        node = self.after.get(name, {})
        ttl = min((node[t].ttl for t in signed), default=0)
        return RRsetValue(name, "RRSIG", ttl, tuple(sorted(self._fresh(name, signed))))

    def apex_signatures(self, serial: int) -> RRsetValue:
        """The apex's RRSIG RRset, with the SOA signed at the serial the change ends at."""
        apex, row = self.apex, self.row
        node = self.after.get(apex, {})
        signed = {t for t in node if t not in OWN_TYPES and t != "SOA"}
        sigs = self._fresh(apex, signed) + self.signer.signatures(soa_value(apex, row, serial))
        ttl = min([row.soa_ttl, *(node[t].ttl for t in signed)])
        return RRsetValue(apex, "RRSIG", ttl, tuple(sorted(sigs)))

    def _fresh(self, name: str, signed: set[str]) -> list[str]:
        """The signatures over `signed` types at `name`: those stored that still hold (of
        a type unchanged, not yet due), and new ones for the rest."""
        node = self.after.get(name, {})
        redo = self.changed_types.get(name, set())
        old = node.get("RRSIG")
        horizon = self.signer.now + RESIGN_BEFORE
        kept = [
            s
            for s in ([] if old is None or self.everything else old.rdatas)
            if covered(s) in signed and covered(s) not in redo and expiration(s) > horizon
        ]
        have = {covered(s) for s in kept}
        return kept + [s for t in sorted(signed - have) for s in self.signer.signatures(node[t])]

    def _emit(self, out: list[Change], name: str, rtype: str, value: RRsetValue) -> None:
        old = self.stored_value(name, rtype)
        if old is None and not value.rdatas:
            return
        if old is not None and old.encode() == value.encode() and old.ttl == value.ttl:
            return
        out.append(_change(old, value))

    # --- the NSEC3 chain ------------------------------------------------------------------

    def _chain_names(self, touched: set[str]) -> set[str]:
        names = set(touched)
        for name in touched:
            names.update(_ancestors(name, self.apex))
        return names

    def _chain_state(self, name: str, cuts: set[str]) -> tuple[str, ...] | None:
        """The types of `name`'s NSEC3 record after this change; None: it has none."""
        apex = self.apex
        if any(a in cuts for a in _ancestors(name, apex)):
            return None  # below a cut: not ours to deny
        types = {t for t in self.after.get(name, {}) if t not in OWN_TYPES}
        if name == apex:
            types |= {"SOA", "RRSIG"}
        elif types and self._signed_types(name, cuts):
            types.add("RRSIG")
        if types or name == apex:
            return tuple(sorted(types))
        return () if self._has_descendant(name) else None

    def _has_descendant(self, name: str) -> bool:
        suffix = "." + name
        decided = {n for n in self.after if n.endswith(suffix)}
        if any(self.after[n] and set(self.after[n]) - OWN_TYPES for n in decided):
            return True
        return not self.everything and self._has_stored_descendant(name, decided)

    def _chain(self, states: dict[str, tuple[str, ...] | None]) -> list[Change]:
        """The NSEC3 RRsets (and their RRSIGs) that change with `states`."""
        wanted = {
            hashed_owner(name, self.apex): types
            for name, types in states.items()
            if types is not None
        }
        if self.everything:  # the whole chain anew, from what was read of the zone
            stored = {
                name: (node["NSEC3"], chain.types_of(node["NSEC3"]), node.get("RRSIG"))
                for name, node in self.before.items()
                if "NSEC3" in node
            }
            gone = set(stored) - set(wanted)
            order = sorted(wanted)
            following = dict(zip(order, order[1:] + order[:1], strict=True))
            return self._records(order, following.__getitem__, wanted, stored, gone)
        gone = {hashed_owner(name, self.apex) for name, types in states.items() if types is None}
        stored = chain.read(self.conn, self.zone_id, [*wanted, *gone])
        gone &= set(stored)
        added = sorted(h for h in wanted if h not in stored)
        retyped = {h for h, types in wanted.items() if h in stored and stored[h][1] != types}
        links = chain.Links(self.conn, self.zone_id, added, gone)
        rewrite = set(added) | retyped
        for h in [*added, *sorted(gone)]:
            before = links.predecessor(h)
            if before is not None:
                rewrite.add(before)
        need = sorted(h for h in rewrite if h not in wanted and h not in stored)
        stored.update(chain.read(self.conn, self.zone_id, need))
        return self._records(sorted(rewrite), links.successor, wanted, stored, gone)

    def _records(
        self,
        owners: list[str],
        following: Callable[[str], str],
        wanted: dict[str, tuple[str, ...]],
        stored: dict[str, chain.Stored],
        gone: set[str],
    ) -> list[Change]:
        out: list[Change] = []
        for h in owners:
            types = wanted[h] if h in wanted else stored[h][1]
            value = chain.record(h, following(h), types, self.nsec3_ttl)
            old, _, old_sigs = stored.get(h, (None, (), None))
            same = old is not None and old.encode() == value.encode() and old.ttl == value.ttl
            if same and not self.everything:
                continue
            if not same:
                out.append(_change(old, value))
            sigs = RRsetValue(h, "RRSIG", value.ttl, tuple(self.signer.signatures(value)))
            if old_sigs is None or old_sigs.encode() != sigs.encode():
                out.append(_change(old_sigs, sigs))
        for h in sorted(gone):
            old, _, old_sigs = stored[h]
            out.append(_change(old, RRsetValue(h, "NSEC3", self.nsec3_ttl)))
            if old_sigs is not None:
                out.append(_change(old_sigs, RRsetValue(h, "RRSIG", self.nsec3_ttl)))
        return out


def _strictly_below(column: sa.ColumnElement[str], name: str) -> sa.ColumnElement[bool]:
    """`column` names a name strictly below `name` (LIKE, its wildcards escaped)."""
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like("%." + escaped, escape="\\")


def _with_ancestors(names: set[str], apex: str) -> set[str]:
    out = set(names)
    for name in names:
        out.update(_ancestors(name, apex))
    return out
