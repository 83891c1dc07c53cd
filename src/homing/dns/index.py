"""The in-memory zone index DNS answers come from; moved forward by the journal."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset

from homing.domain.records import JournalEntry, RRsetValue, ZoneMeta

__all__ = ["ZoneData", "ZoneIndex", "ZoneMeta"]


@dataclass
class ZoneData:
    """One zone in memory: its SOA parameters, current serial and RRsets by owner and type."""

    meta: ZoneMeta
    origin: dns.name.Name
    serial: int
    nodes: dict[dns.name.Name, dict[dns.rdatatype.RdataType, dns.rrset.RRset]] = field(
        default_factory=dict
    )
    # Every name that exists: owners, their ancestors up to the apex (empty non-terminals),
    # and the apex, each with the number of owners at or below it. Kept as RRsets come and go,
    # so NXDOMAIN versus NODATA never needs a walk over the zone.
    names: dict[dns.name.Name, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.names.setdefault(self.origin, 0)

    def soa(self) -> dns.rrset.RRset:
        """The SOA RRset with the current serial."""
        meta = self.meta
        rdata = dns.rdtypes.ANY.SOA.SOA(  # type: ignore[no-untyped-call]  # untyped in dnspython
            dns.rdataclass.IN,
            dns.rdatatype.SOA,
            dns.name.from_text(meta.mname),
            dns.name.from_text(meta.rname),
            self.serial,
            meta.refresh,
            meta.retry,
            meta.expire,
            meta.minimum,
        )
        rrset = dns.rrset.RRset(self.origin, dns.rdataclass.IN, dns.rdatatype.SOA)
        rrset.add(rdata, meta.soa_ttl)
        return rrset

    def negative_ttl(self) -> int:
        """RFC 2308: the SOA in a negative answer carries min(SOA TTL, SOA MINIMUM)."""
        return min(self.meta.soa_ttl, self.meta.minimum)

    def set_rrset(self, value: RRsetValue) -> dns.name.Name:
        """Replace (or, with no rdatas, delete) one RRset; returns its owner name."""
        owner = dns.name.from_text(value.name)
        rdtype = dns.rdatatype.from_text(value.rtype)
        if not value.rdatas:
            node = self.nodes.get(owner)
            if node is not None:
                node.pop(rdtype, None)
                if not node:
                    del self.nodes[owner]
                    self._count(owner, -1)
            return owner
        rrset = dns.rrset.from_text_list(
            owner, value.ttl, dns.rdataclass.IN, rdtype, list(value.rdatas)
        )
        node = self.nodes.get(owner)
        if node is None:
            node = self.nodes[owner] = {}
            self._count(owner, +1)
        node[rdtype] = rrset
        return owner

    def _count(self, owner: dns.name.Name, delta: int) -> None:
        """Add or remove one owner from the counts of itself and its ancestors."""
        if not owner.is_subdomain(self.origin):
            return  # out-of-zone data is stored but never makes names exist here
        name = owner
        while True:
            count = self.names.get(name, 0) + delta
            if count > 0 or name == self.origin:
                self.names[name] = max(count, 0)
            else:
                self.names.pop(name, None)
            if name == self.origin:
                return
            name = name.parent()


class ZoneIndex:
    """All zones served, by origin; lookups pick the closest enclosing zone."""

    # How many recent changes are remembered for caches that catch up name by name.
    CHANGE_LOG = 65536

    def __init__(self) -> None:
        self.zones: dict[dns.name.Name, ZoneData] = {}
        self.generation = 0  # bumped on every change, so caches of answers can tell they are stale
        # (generation, zone origin, owner name or None for "the whole zone")
        self._changes: deque[tuple[int, dns.name.Name, dns.name.Name | None]] = deque(
            maxlen=self.CHANGE_LOG
        )

    def _changed(self, origin: dns.name.Name, owner: dns.name.Name | None) -> None:
        self.generation += 1
        self._changes.append((self.generation, origin, owner))

    def changes_since(
        self, generation: int
    ) -> list[tuple[dns.name.Name, dns.name.Name | None]] | None:
        """(zone, owner) pairs changed after `generation` (owner None: the whole zone).

        None when the log no longer reaches back that far: start over.
        """
        if generation == self.generation:
            return []
        if (
            not self._changes
            or self._changes[0][0] > generation + 1
            or self._changes[-1][0] != self.generation  # bumped without a record of what
        ):
            return None
        return [(origin, owner) for gen, origin, owner in self._changes if gen > generation]

    def put_zone(self, meta: ZoneMeta, serial: int, rrsets: Iterable[RRsetValue] = ()) -> ZoneData:
        """Add or replace a zone with its RRsets (used at start and when a zone appears)."""
        origin = dns.name.from_text(meta.name)
        zone = ZoneData(meta=meta, origin=origin, serial=serial)
        for value in rrsets:
            zone.set_rrset(value)
        self.zones[origin] = zone
        self._changed(origin, None)
        return zone

    def drop_zone(self, name: str) -> None:
        origin = dns.name.from_text(name)
        self.zones.pop(origin, None)
        self._changed(origin, None)

    def zone(self, name: str) -> ZoneData | None:
        return self.zones.get(dns.name.from_text(name))

    def serial_of(self, name: str) -> int | None:
        """The serial a zone is loaded at, or None when it is not loaded."""
        zone = self.zones.get(dns.name.from_text(name))
        return None if zone is None else zone.serial

    def apply(self, entry: JournalEntry) -> bool:
        """Move a zone forward by the next journal entry.

        Entries at or below the loaded serial are already in (True); False means the zone
        is not loaded or an entry is missing in between, and the caller must catch up
        from the store.
        """
        zone = self.zones.get(dns.name.from_text(entry.zone))
        if zone is None:
            return False
        if entry.serial <= zone.serial:
            return True
        if entry.serial != zone.serial + 1:
            return False
        owner = zone.set_rrset(RRsetValue(entry.name, entry.rtype, entry.ttl, entry.new))
        zone.serial = entry.serial
        self._changed(zone.origin, owner)
        return True

    def find(self, qname: dns.name.Name) -> ZoneData | None:
        """The closest enclosing zone of `qname`, or None when it is not ours."""
        name = qname
        while True:
            zone = self.zones.get(name)
            if zone is not None:
                return zone
            if len(name) <= 1:
                return None
            name = name.parent()
