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
import logging
import socket
import struct
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset

from homing.domain.records import JournalEntry, RRsetValue, StoredRRset, ZoneMeta

__all__ = ["Node", "ZoneData", "ZoneIndex", "ZoneMeta", "name_wire", "node_rrsets"]

log = logging.getLogger(__name__)

# A name's RRsets, flat to save a container per RRset: (type, record count, records wire,
# type, count, wire, ...). The wire is complete answer records whose owner points at 12.
Node = tuple[Any, ...]  # Any: the hot path reads it without casts

RR_HEAD = struct.Struct("!HHHLH")  # owner pointer, type, class, TTL, rdata length
QUESTION_OWNER = 0xC00C  # the question's name, right after the 12-byte header
_SOA_FIXED = struct.Struct("!LLLLL")
_IN = int(dns.rdataclass.RdataClass.IN)
_A = int(dns.rdatatype.RdataType.A)
_AAAA = int(dns.rdatatype.RdataType.AAAA)
_SOA = int(dns.rdatatype.RdataType.SOA)
_NS = int(dns.rdatatype.RdataType.NS)
_WILD = b"\x01*"
_FAMILIES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}
_LENGTH = [bytes((n,)) for n in range(64)]  # a label's length byte


def name_wire(text: str) -> bytes:
    """The lower-cased, uncompressed wire form of an absolute name given as text."""
    if text.endswith("."):
        text = text[:-1]
    if not text:
        return b"\x00"
    wire = _labels_wire(text.lower())
    return wire + b"\x00" if wire is not None and len(wire) < 255 else _dnspython_wire(text)


def _labels_wire(text: str) -> bytes | None:
    """Plain dotted ASCII labels as wire (no root label); None for anything needing dnspython."""
    if "\\" in text or not text.isascii():
        return None
    data = text.encode()
    if b"." not in data:
        return bytes((len(data),)) + data if 0 < len(data) < 64 else None
    parts = []
    for label in data.split(b"."):
        if not 0 < len(label) < 64:
            return None
        parts.append(bytes((len(label),)) + label)
    return b"".join(parts)


def _dnspython_wire(text: str) -> bytes:
    """Escapes, IDNA, or a malformed name: dnspython decides (and raises on bad names)."""
    wire = dns.name.from_text(text).canonicalize().to_wire()
    assert wire is not None  # without a file, to_wire returns the bytes
    return wire


def _rdata_wire(rdtype: int, text: str) -> bytes:
    """One rdata's wire; addresses by inet_pton, the rest through dnspython once."""
    try:
        if rdtype == _A:
            return socket.inet_pton(socket.AF_INET, text)
        if rdtype == _AAAA:
            return socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        pass  # dnspython's parser gives the error its usual words below
    wire = dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.RdataType.make(rdtype), text
    ).to_wire()
    assert wire is not None
    return wire


# The record types of every update, without dnspython's enum lookup.
_RDTYPES = {"A": int(dns.rdatatype.A), "AAAA": int(dns.rdatatype.AAAA)}


def records_wire(rdtype: int, ttl: int, rdatas: Iterable[str]) -> tuple[int, bytes]:
    """(record count, answer records wire) of one RRset; duplicates count once."""
    datas = dict.fromkeys(_rdata_wire(rdtype, text) for text in rdatas)
    wire = b"".join(
        RR_HEAD.pack(QUESTION_OWNER, rdtype, _IN, ttl, len(data)) + data for data in datas
    )
    return len(datas), wire


def _to_rrset(owner: dns.name.Name, rdtype: int, wire: bytes) -> dns.rrset.RRset:
    """A dnspython RRset from stored records wire (for the rare paths)."""
    kind = dns.rdatatype.RdataType.make(rdtype)
    rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, kind)
    pos = 0
    while pos < len(wire):
        _, _, _, ttl, length = RR_HEAD.unpack_from(wire, pos)
        pos += RR_HEAD.size
        rdata = dns.rdata.from_wire(dns.rdataclass.IN, kind, wire, pos, length)
        rrset.add(rdata, ttl)
        pos += length
    return rrset


def _without(node: Node, rdtype: int) -> Node:
    return tuple(x for i in range(0, len(node), 3) if node[i] != rdtype for x in node[i : i + 3])


@dataclass(eq=False)
class ZoneData:
    """One zone in memory: its SOA parameters, current serial and RRsets by relative wire name."""

    meta: ZoneMeta
    origin: dns.name.Name
    serial: int
    # Relative lower-cased wire name -> its RRsets (see Node).
    owners: dict[bytes, Node] = field(default_factory=dict)
    # Names with owners strictly below them and none of the apex's labels: how many.
    # An owner one label below the apex adds nothing here.
    below: dict[bytes, int] = field(default_factory=dict)
    # Owners outside the zone (a bad import, say): kept for AXFR, never answered.
    outside: dict[bytes, Node] = field(default_factory=dict)
    # Keys of owners below the apex with NS: zone cuts (RFC 1034 4.3.2). Kept as names
    # are put, so a query to a zone without delegations pays one truthiness test.
    cuts: set[bytes] = field(default_factory=set)
    cut_changes: int = 0  # bumped when a cut comes or goes: every answer may change
    wire: bytes = b""  # the apex's lower-cased wire name
    text: str = ""  # the apex as lower-case text without the final dot (the store's form)
    _negative: tuple[int, ZoneMeta, bytes] | None = None  # (serial, meta, SOA record sans owner)

    def __post_init__(self) -> None:
        self.wire = self.origin.canonicalize().to_wire() or b""
        self.text = self.origin.canonicalize().to_text(omit_final_dot=True)

    # --- changes -------------------------------------------------------------------------

    def key_of_text(self, name: str) -> bytes | None:
        """The relative key of a name given as text (store form), None when outside the zone."""
        text = name.lower()
        if text.endswith("."):
            text = text[:-1]
        if text == self.text:
            return b""
        suffix_length = len(self.text) + 1
        if (
            len(text) > suffix_length
            and text[-suffix_length] == "."
            and text.endswith(self.text)
            and len(text) < 254
        ):
            key = _labels_wire(text[:-suffix_length])
            if key is not None and len(key) + len(self.wire) <= 255:
                return key
        return self._split(_dnspython_wire(name))

    def key_of(self, name: dns.name.Name) -> bytes | None:
        """The relative key of a dnspython name, None when outside the zone."""
        return self._split(name.canonicalize().to_wire() or b"")

    def _split(self, wire: bytes) -> bytes | None:
        """The relative part of a lower-cased absolute wire name, None when outside the zone."""
        cut = len(wire) - len(self.wire)
        if cut < 0 or not wire.endswith(self.wire):
            return None
        pos = 0
        while pos < cut:  # the cut must fall between labels, not inside one
            pos += wire[pos] + 1
        return wire[:cut] if pos == cut else None

    def set_rrset(self, value: RRsetValue) -> bytes | None:
        """Replace (or, with no rdatas, delete) one RRset; its owner's key (None: out of zone)."""
        return self.put(value.name, value.rtype, value.ttl, value.rdatas)

    def put(self, name: str, rtype: str, ttl: int, rdatas: Sequence[str]) -> bytes | None:
        """Replace (or, with no rdatas, delete) one RRset given as texts."""
        rdtype = _RDTYPES.get(rtype) or int(dns.rdatatype.from_text(rtype))
        key = self.key_of_text(name)
        store = self.owners if key is not None else self.outside
        if key is None:
            key = _dnspython_wire(name)
        node = store.get(key, ())
        if node:
            node = _without(node, rdtype)
        if rdatas:
            count, wire = records_wire(rdtype, ttl, rdatas)
            node = (*node, rdtype, count, wire)
        if node:
            if key not in store:
                self._count(key, +1, store)
            store[key] = node
        elif key in store:
            del store[key]
            self._count(key, -1, store)
        if rdtype == _NS and key and store is self.owners:
            if rdatas and key not in self.cuts:
                self.cuts.add(key)
                self.cut_changes += 1
            elif not rdatas and key in self.cuts:
                self.cuts.discard(key)
                self.cut_changes += 1
        return key if store is self.owners else None

    def load(self, rows: Iterable[StoredRRset]) -> None:
        """Add RRsets in the store's form (rdatas one text per line), none of them yet here.

        The load path of a million hosts: no dnspython object per row, and the common row
        (one A or AAAA address at a name one label below the apex) takes the shortest way.
        """
        owners = self.owners
        suffix = "." + self.text
        cut = len(suffix)
        longest = min(63, 254 - len(self.wire))  # a label, and the whole name within 255
        last: tuple[str, int] | None = None  # the (type, TTL) `prefix` was made for
        prefix = b""
        for name, rtype, ttl, text in rows:
            family = _FAMILIES.get(rtype)
            if (
                family is not None
                and name.endswith(suffix)
                and "." not in (label := name[:-cut])
                and 0 < len(label) <= longest
                and label.isascii()
                and label.islower()  # also False for all-digit labels: they go the long way
                and "\\" not in label
                and "\n" not in text
            ):
                try:
                    data = socket.inet_pton(family, text)
                except OSError:
                    data = b""  # the long way words the error
                if data:
                    rdtype = _A if family == socket.AF_INET else _AAAA
                    if last != (rtype, ttl):
                        # Rows mostly share a TTL: the record header is made once per run.
                        last = (rtype, ttl)
                        prefix = RR_HEAD.pack(QUESTION_OWNER, rdtype, _IN, ttl, len(data))
                    key = _LENGTH[len(label)] + label.encode()
                    node = owners.get(key)
                    # A single label below the apex has no ancestors to count.
                    if node is None:
                        owners[key] = (rdtype, 1, prefix + data)
                        continue
                    if len(node) == 3 and node[0] != rdtype:  # a host's A, then its AAAA
                        owners[key] = (*node, rdtype, 1, prefix + data)
                        continue
            self.put_or_skip(name, rtype, ttl, RRsetValue.decode_rdatas(text), "stored RRset")

    def put_or_skip(
        self, name: str, rtype: str, ttl: int, rdatas: Sequence[str], what: str
    ) -> bytes | None:
        """put(), but a value that cannot be rendered (a row an older version or a hand
        wrote) is logged, naming it, and left out, so the rest of the zone is served and
        later changes still apply. What was at that RRset goes too: the index then holds
        what a reload from the store would give."""
        try:
            return self.put(name, rtype, ttl, rdatas)
        except Exception as exc:  # any render failure is the row's; the zone must go on
            log.error(
                "zone %s serial %d: %s %s %s cannot be served, skipped: %s (value %r)",
                self.text,
                self.serial,
                what,
                name[:255],
                rtype[:16],
                " ".join(str(exc).split()) or type(exc).__name__,
                "\n".join(rdatas)[:200],
            )
        try:
            return self.put(name, rtype, ttl, ())
        except Exception:  # the name or type itself is what cannot be rendered: nothing held
            return None

    def _count(self, key: bytes, delta: int, store: dict[bytes, Node]) -> None:
        """Add or remove an owner from the counts of its ancestors below the apex."""
        if store is not self.owners or not key:
            return  # out-of-zone data never makes names exist here; the apex always does
        below = self.below
        pos = key[0] + 1
        while pos < len(key):  # more than one label below the apex
            ancestor = key[pos:]
            count = below.get(ancestor, 0) + delta
            if count > 0:
                below[ancestor] = count
            else:
                below.pop(ancestor, None)
            pos += key[pos] + 1

    # --- lookups (wire) ------------------------------------------------------------------

    def exists(self, key: bytes) -> bool:
        """True when the name exists: the apex, an owner, or an empty non-terminal."""
        return not key or key in self.owners or key in self.below

    def cut_of(self, key: bytes) -> bytes | None:
        """The topmost zone cut at or above the name `key`, None when it is our data."""
        cuts = self.cuts
        found = None
        pos = 0
        while pos < len(key):  # from the name up to the apex: the last match is topmost
            if key[pos:] in cuts:
                found = key[pos:]
            pos += key[pos] + 1
        return found

    def wildcard(self, key: bytes) -> Node | None:
        """RFC 4592: the wildcard at the closest encloser of a name that does not exist."""
        pos = key[0] + 1
        while not self.exists(key[pos:]):
            pos += key[pos] + 1
        return self.owners.get(_WILD + key[pos:])

    def negative_record(self) -> bytes:
        """The SOA record for negative answers (RFC 2308 3), without its owner: current serial."""
        cached = self._negative
        if cached is None or cached[0] != self.serial or cached[1] is not self.meta:
            meta = self.meta
            rdata = (
                name_wire(meta.mname)
                + name_wire(meta.rname)
                + _SOA_FIXED.pack(
                    self.serial % 2**32, meta.refresh, meta.retry, meta.expire, meta.minimum
                )
            )
            record = RR_HEAD.pack(0, _SOA, _IN, self.negative_ttl(), len(rdata))[2:] + rdata
            cached = self._negative = (self.serial, meta, record)
        return cached[2]

    # --- dnspython views (the rare paths) ------------------------------------------------

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

    def name_of(self, key: bytes) -> dns.name.Name:
        return dns.name.from_wire(key + self.wire, 0)[0]

    def node(self, name: dns.name.Name) -> dict[dns.rdatatype.RdataType, dns.rrset.RRset] | None:
        """The RRsets stored at `name` as dnspython objects; None when it owns none."""
        key = self.key_of(name)
        node = None if key is None else self.owners.get(key)
        if node is None:
            return None
        return node_rrsets(node, name)

    def rrsets(self) -> Iterator[dns.rrset.RRset]:
        """Every stored RRset but the SOA (which is ours, with the current serial), for AXFR."""
        for store, suffix in ((self.owners, self.wire), (self.outside, b"")):
            for key, node in list(store.items()):
                owner = dns.name.from_wire(key + suffix, 0)[0]
                for rdtype, rrset in node_rrsets(node, owner).items():
                    if rdtype != dns.rdatatype.RdataType.SOA:
                        yield rrset


def node_rrsets(node: Node, owner: dns.name.Name) -> dict[dns.rdatatype.RdataType, dns.rrset.RRset]:
    """A node's RRsets as dnspython objects under `owner` (a wildcard's: the name asked)."""
    out = {}
    for i in range(0, len(node), 3):
        rdtype, wire = node[i], node[i + 2]
        out[dns.rdatatype.RdataType.make(rdtype)] = _to_rrset(owner, rdtype, wire)
    return out


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
