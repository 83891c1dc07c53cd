"""The in-memory zone index DNS answers come from; moved forward by the journal.

Compact, because a million hosts must fit in a few hundred MB and load in seconds:

- a name is the key of its zone's `owners` dict as lower-cased wire bytes relative to
  the apex (`b"\\x02h1"` for h1 under the zone, `b""` for the apex), so the zone's own
  labels are stored once, not once per host, and a query's lower-cased name is sliced
  into a key without building a dnspython Name;
- each RRset is kept as the wire of its answer records, owner a compression pointer to
  the question (offset 12), so an answer is the header, the question and these bytes;
- names that exist without data (empty non-terminals, RFC 8020) are counted only for
  owners more than one label below the apex: a host one label down has none.

dnspython objects are made on demand for the rare paths (AXFR, CNAME chains, ANY).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable

import dns.name

from homing.dns.rrwire import Node, name_wire, node_rrsets
from homing.dns.zonedata import ZoneData
from homing.domain.records import JournalEntry, RRsetValue, ZoneMeta

__all__ = ["Node", "ZoneData", "ZoneIndex", "ZoneMeta", "name_wire", "node_rrsets"]


class ZoneIndex:
    """All zones served, by origin; lookups pick the closest enclosing zone."""

    # How many recent changes are remembered for caches that catch up name by name.
    CHANGE_LOG = 65536

    def __init__(self) -> None:
        self.zones: dict[dns.name.Name, ZoneData] = {}
        self.by_wire: dict[bytes, ZoneData] = {}  # the same zones by lower-cased wire origin
        self.by_text: dict[str, ZoneData] = {}  # and by the store's form of their name
        self.generation = 0  # bumped on every change, so caches of answers can tell they are stale
        # (generation, zone origin wire, owner key or None for "the whole zone")
        self._changes: deque[tuple[int, bytes, bytes | None]] = deque(maxlen=self.CHANGE_LOG)

    def _changed(self, origin: bytes, owner: bytes | None) -> None:
        self.generation += 1
        self._changes.append((self.generation, origin, owner))

    def changes_since(self, generation: int) -> list[tuple[bytes, bytes | None]] | None:
        """(zone wire, owner key) pairs changed after `generation` (owner None: the whole zone).

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
        # Read from the end, not through the whole log: a cache catches up after every
        # update, and the log holds up to CHANGE_LOG entries.
        recent = list(itertools.takewhile(lambda c: c[0] > generation, reversed(self._changes)))
        if len(recent) != self.generation - generation:
            return None  # a generation bumped without a record of what
        return [(origin, owner) for _, origin, owner in reversed(recent)]

    def loading(self, meta: ZoneMeta, serial: int) -> ZoneData:
        """A new zone to fill with `ZoneData.load`, not served until `loaded`."""
        return ZoneData(meta=meta, origin=dns.name.from_text(meta.name), serial=serial)

    def loaded(self, zone: object) -> ZoneData:
        """Serve a zone from `loading`, in place of any zone of that name."""
        if not isinstance(zone, ZoneData):
            raise TypeError(f"not a zone from loading(): {type(zone).__name__}")
        self.zones[zone.origin] = zone
        self.by_wire[zone.wire] = zone
        self.by_text[zone.text] = zone
        self._changed(zone.wire, None)
        return zone

    def put_zone(self, meta: ZoneMeta, serial: int, rrsets: Iterable[RRsetValue] = ()) -> ZoneData:
        """Add or replace a zone with its RRsets (used at start and when a zone appears)."""
        zone = self.loading(meta, serial)
        for value in rrsets:
            zone.put_or_skip(value.name, value.rtype, value.ttl, value.rdatas, "RRset")
        return self.loaded(zone)

    def replace(
        self,
        zone_name: str,
        serial: int,
        values: Iterable[RRsetValue],
        meta: ZoneMeta | None = None,
    ) -> ZoneData | None:
        """Set several RRsets (empty rdatas delete one) and move the serial in one step
        (an IXFR applied by a secondary); `meta` replaces the SOA parameters. None when
        the zone is not loaded."""
        zone = self.zone(zone_name)
        if zone is None:
            return None
        cut_changes = zone.cut_changes
        for value in values:
            owner = zone.put_or_skip(value.name, value.rtype, value.ttl, value.rdatas, "RRset")
            self._changed(zone.wire, owner)
        if zone.cut_changes != cut_changes:
            self._changed(zone.wire, None)  # answers kept for names below it are now referrals
        if meta is not None:
            zone.meta = meta
        zone.serial = serial
        # The SOA and its serial are in the apex's and every negative answer, which
        # caches forget with any change in the zone: the apex (key b"") stands for it.
        self._changed(zone.wire, b"")
        return zone

    def drop_zone(self, name: str) -> None:
        origin = dns.name.from_text(name)
        zone = self.zones.pop(origin, None)
        wire = origin.canonicalize().to_wire() or b""
        self.by_wire.pop(wire, None)
        if zone is not None:
            self.by_text.pop(zone.text, None)
        self._changed(wire if zone is None else zone.wire, None)

    def zone(self, name: str) -> ZoneData | None:
        """The zone of that name (any case, final dot or not), None when it is not loaded."""
        zone = self.by_text.get(name)  # the store's form: the common case, no parsing
        return zone if zone is not None else self.zones.get(dns.name.from_text(name))

    def serial_of(self, name: str) -> int | None:
        """The serial a zone is loaded at, or None when it is not loaded."""
        zone = self.zone(name)
        return None if zone is None else zone.serial

    def apply(self, entry: JournalEntry) -> bool:
        """Move a zone forward by the next journal entry.

        Entries at or below the loaded serial are already in (True); False means the zone
        is not loaded or an entry is missing in between, and the caller must catch up
        from the store.
        """
        zone = self.zone(entry.zone)
        if zone is None:
            return False
        if entry.serial <= zone.serial:
            return True
        if entry.serial != zone.serial + 1:
            return False
        zone.serial = entry.serial  # before the put: a skipped entry is logged at its serial
        cut_changes = zone.cut_changes
        owner = zone.put_or_skip(entry.name, entry.rtype, entry.ttl, entry.new, "journal entry")
        self._changed(zone.wire, owner)
        if zone.cut_changes != cut_changes:
            self._changed(zone.wire, None)  # answers kept for names below it are now referrals
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

    def find_wire(self, name: bytes) -> tuple[ZoneData, int] | None:
        """The closest enclosing zone of a lower-cased wire name, and where its apex starts.

        The name's part before that offset is its key in the zone's `owners`.
        """
        zones = self.by_wire
        pos = 0
        while True:
            zone = zones.get(name[pos:] if pos else name)
            if zone is not None:
                return zone, pos
            length = name[pos]
            if not length:
                return None
            pos += length + 1
