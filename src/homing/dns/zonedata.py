"""One zone in memory (ZoneData): its SOA parameters, its serial, and its RRsets keyed by
lower-cased wire names relative to the apex, with what the answers need to find fast:
empty non-terminals, zone cuts, wildcards, the SOA record of negative answers."""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset

from homing.dns.rrwire import (
    QUESTION_OWNER,
    RDTYPES,
    RR_HEAD,
    Node,
    dnspython_wire,
    labels_wire,
    name_wire,
    node_rrsets,
    records_wire,
    without_type,
)
from homing.domain.records import RRsetValue, StoredRRset, ZoneMeta

__all__ = ["ZoneData"]

log = logging.getLogger(__name__)

_SOA_FIXED = struct.Struct("!LLLLL")
_IN = int(dns.rdataclass.RdataClass.IN)
_A = int(dns.rdatatype.RdataType.A)
_AAAA = int(dns.rdatatype.RdataType.AAAA)
_SOA = int(dns.rdatatype.RdataType.SOA)
_NS = int(dns.rdatatype.RdataType.NS)
_WILD = b"\x01*"
_FAMILIES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}
_LENGTH = [bytes((n,)) for n in range(64)]  # a label's length byte


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
            key = labels_wire(text[:-suffix_length])
            if key is not None and len(key) + len(self.wire) <= 255:
                return key
        return self._split(dnspython_wire(name))

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
        rdtype = RDTYPES.get(rtype) or int(dns.rdatatype.from_text(rtype))
        key = self.key_of_text(name)
        store = self.owners if key is not None else self.outside
        if key is None:
            key = dnspython_wire(name)
        node = store.get(key, ())
        if node:
            node = without_type(node, rdtype)
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
            self.serial % 2**32,  # the store counts on; RFC 1982 serials wrap
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
