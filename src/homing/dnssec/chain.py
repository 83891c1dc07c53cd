"""The NSEC3 chain in the store: reading hashed owners and finding their neighbours.

The hashed owners of one zone share its suffix after a label of 32 base32hex digits, so
their order as names is the order of their hashes (RFC 5155 3.1.7): the neighbours of a
hash are found with one indexed range query each, however large the zone.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from homing.dnssec.signer import nsec3_text
from homing.domain.records import RRsetValue
from homing.store.schema import rrsets

# (the NSEC3 RRset, the types it lists, the RRSIG RRset at its owner or None)
Stored = tuple[RRsetValue, tuple[str, ...], RRsetValue | None]
_READ_BATCH = 500


def types_of(value: RRsetValue) -> tuple[str, ...]:
    """The types an NSEC3 RRset's (single) record lists."""
    if not value.rdatas:
        return ()
    return tuple(sorted(t.upper() for t in value.rdatas[0].split()[5:]))


def read(conn: sa.Connection, zone_id: int, owners: Sequence[str]) -> dict[str, Stored]:
    """The stored NSEC3 RRsets (with their RRSIGs) of these hashed owners, by owner."""
    found: dict[str, Stored] = {}
    wanted = sorted(set(owners))
    for start in range(0, len(wanted), _READ_BATCH):
        part = wanted[start : start + _READ_BATCH]
        rows = conn.execute(
            sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.ttl, rrsets.c.rdatas).where(
                rrsets.c.zone_id == zone_id,
                rrsets.c.name.in_(part),
                rrsets.c.rtype.in_(("NSEC3", "RRSIG")),
            )
        )
        values: dict[tuple[str, str], RRsetValue] = {
            (r.name, r.rtype): RRsetValue(
                r.name, r.rtype, r.ttl, RRsetValue.decode_rdatas(r.rdatas)
            )
            for r in rows
        }
        for (name, rtype), value in values.items():
            if rtype == "NSEC3":
                found[name] = (value, types_of(value), values.get((name, "RRSIG")))
    return found


def record(owner: str, following: str, types: Iterable[str], ttl: int) -> RRsetValue:
    """The NSEC3 RRset at a hashed owner, pointing at the next one."""
    return RRsetValue(owner, "NSEC3", ttl, (nsec3_text(following, types),))


class Links:
    """Neighbours in the chain as it will be: the stored owners less `gone`, plus `added`."""

    def __init__(self, conn: sa.Connection, zone_id: int, added: list[str], gone: set[str]) -> None:
        self.conn = conn
        self.zone_id = zone_id
        self.added = sorted(added)
        self.gone = gone

    def _stored(self, bound: str | None, *, below: bool) -> str | None:
        """The nearest stored owner below (or above) `bound` (None: from the chain's end)."""
        name = rrsets.c.name
        query = sa.select(name).where(rrsets.c.zone_id == self.zone_id, rrsets.c.rtype == "NSEC3")
        if bound is not None:
            query = query.where(name < bound if below else name > bound)
        query = query.order_by(name.desc() if below else name.asc()).limit(len(self.gone) + 1)
        for row in self.conn.execute(query):
            if row.name not in self.gone:
                return str(row.name)
        return None

    def _added(self, bound: str | None, *, below: bool) -> str | None:
        added = self.added
        if not added:
            return None
        if bound is None:
            return added[-1] if below else added[0]
        if below:
            i = bisect.bisect_left(added, bound)
            return added[i - 1] if i else None
        i = bisect.bisect_right(added, bound)
        return added[i] if i < len(added) else None

    def _nearest(self, bound: str | None, *, below: bool) -> str | None:
        found = [
            x
            for x in (self._added(bound, below=below), self._stored(bound, below=below))
            if x is not None
        ]
        if not found:
            return None
        return max(found) if below else min(found)

    def predecessor(self, owner: str) -> str | None:
        """The owner before `owner` (wrapping round); None when the chain has no other."""
        found = self._nearest(owner, below=True) or self._nearest(None, below=True)
        return None if found == owner else found

    def successor(self, owner: str) -> str:
        """The owner after `owner`, wrapping round (itself when it is alone)."""
        return self._nearest(owner, below=False) or self._nearest(None, below=False) or owner
