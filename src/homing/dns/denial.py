"""The NSEC3 proofs of a signed zone's denials and wildcard answers (RFC 5155 7.2),
found and written as wire.

A name is hashed with hashlib; the NSEC3 record covering the hash is found by bisection
in the zone's hashed owners, kept sorted per zone; each NSEC3 RRset with its RRSIGs is
kept rendered (records without their owners) beside the sorted owners, for as long as the
index holds the same node at that name. The NSEC3 records themselves decide: the sorted
owners only point at one, and are mended in place when its record shows a hash come or
gone since they were listed.

What a name's answer depends on besides the name (the SOA, the closest encloser's NSEC3
and the one covering its wildcard) is kept rendered per encloser and question length, so
a new name costs one hash and one bisection. Whole answers are kept too, per question, as
the zone stands (its serial), in one store for every zone bounded in count and bytes: a
resolver asking again, as dnsperf's replayed file does, gets them without a hash; random
names from a flood only cycle the store.
"""

from __future__ import annotations

import hashlib
import struct
import weakref
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import islice

import dns.rcode
import dns.rdatatype

from homing.dns.index import Node, ZoneData
from homing.dns.rrwire import RR_HEAD
from homing.dns.wire import AA

__all__ = ["KEPT_ANSWERS", "KEPT_BYTES", "covering_key", "covering_ttl", "denial", "hashed"]

_NSEC3 = int(dns.rdatatype.RdataType.NSEC3)
_RRSIG = int(dns.rdatatype.RdataType.RRSIG)
_SOA = int(dns.rdatatype.RdataType.SOA)
_CNAME = int(dns.rdatatype.RdataType.CNAME)
_NXDOMAIN = int(dns.rcode.Rcode.NXDOMAIN)
_NOERROR = int(dns.rcode.Rcode.NOERROR)
_HASH_LENGTH = 32  # base32hex digits of a SHA-1 NSEC3 hash
_POINTER = struct.Struct("!H")
_TYPE = struct.Struct("!H")
_WILD = b"\x01*"
# Steps a covering lookup may take mending the sorted owners before listing them again.
_MENDS = 16
_NEAR_MAX = 65_536  # closest enclosers whose hashes (and their wildcard's) are kept
# Whole answers kept, for every zone together: about 750 bytes each for an NXDOMAIN with
# an ECDSA signature, so a flood of random names holds at most some 40 MB here.
KEPT_ANSWERS = 32_768
KEPT_BYTES = 24 * 1024 * 1024
_EVICT_FRACTION = 8  # when full, the oldest 1/8 of the answers go
# base32hex (RFC 4648 7) of 10 bits at a time: a SHA-1 digest is 16 such groups.
_DIGITS = b"0123456789abcdefghijklmnopqrstuv"
_PAIRS = [bytes((_DIGITS[i >> 5], _DIGITS[i & 31])) for i in range(1024)]
_SHIFTS = tuple(range(150, -1, -10))


def _b32hex(digest: bytes) -> bytes:
    """A SHA-1 digest in lower-case base32hex, as a hashed owner's first label."""
    number = int.from_bytes(digest, "big")
    return b"".join([_PAIRS[(number >> shift) & 1023] for shift in _SHIFTS])


def hashed(name: bytes) -> bytes:
    """The relative key of the hashed owner of a lower-cased wire name (RFC 5155 5: SHA-1,
    no salt, no extra iterations, as homing.dnssec makes the chain)."""
    return b"\x20" + _b32hex(hashlib.sha1(name, usedforsecurity=False).digest())


def _rrset_wire(node: Node, rdtype: int) -> tuple[int, bytes] | None:
    """(count, records wire) of a node's RRset of `rdtype`, None when it has none."""
    for i in range(0, len(node), 3):
        if node[i] == rdtype:
            return node[i + 1], node[i + 2]
    return None


def covering_ttl(node: Node, rdtype: int, ttl: int) -> tuple[int, bytes]:
    """(count, records wire) of the RRSIGs in `node` that cover `rdtype`, given `ttl`."""
    found = _rrset_wire(node, _RRSIG)
    if found is None:
        return 0, b""
    sigs = found[1]
    count = 0
    parts = []
    pos = 0
    while pos < len(sigs):
        owner, rtype, rclass, _, length = RR_HEAD.unpack_from(sigs, pos)
        start = pos + RR_HEAD.size
        if int.from_bytes(sigs[start : start + 2], "big") == rdtype:
            parts.append(RR_HEAD.pack(owner, rtype, rclass, ttl, length))
            parts.append(sigs[start : start + length])
            count += 1
        pos = start + length
    return count, b"".join(parts)


def _unowned(records: bytes) -> list[bytes]:
    """Each record of a records wire without its owner (the 2-byte pointer)."""
    parts = []
    pos = 0
    while pos < len(records):
        end = pos + RR_HEAD.size + int.from_bytes(records[pos + 10 : pos + 12], "big")
        parts.append(records[pos + 2 : end])
        pos = end
    return parts


@dataclass(frozen=True, slots=True)
class _Rendered:
    """One hashed owner's NSEC3 RRset and its RRSIGs, records without owners, as of `node`."""

    node: Node
    following: bytes  # the key of the next hashed owner, from the NSEC3 record
    records: list[bytes]  # the NSEC3 record(s) first, then the RRSIGs


@dataclass
class _Chain:
    """A zone's hashed owners in order, and those rendered so far."""

    keys: list[bytes] = field(default_factory=list)
    rendered: dict[bytes, _Rendered] = field(default_factory=dict)
    soa: tuple[Node, bytes, list[bytes]] | None = None  # apex node, SOA record, its RRSIGs
    near: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)  # see _nxdomain()
    # The zone state (serial, SOA parameters) the prefixes were made at.
    serial: int = -1
    meta: object = None
    # (closest encloser, the name's length below the apex) -> an NXDOMAIN's authority
    # section but the next closer name's NSEC3: (record count, wire, hashed owners in it)
    prefixes: dict[tuple[bytes, int], tuple[int, bytes, frozenset[bytes]]] = field(
        default_factory=dict
    )
    # the apex's pointer in the question -> (record count, wire) of the SOA and its RRSIGs
    soas: dict[bytes, tuple[int, bytes]] = field(default_factory=dict)


_chains: weakref.WeakKeyDictionary[ZoneData, _Chain] = weakref.WeakKeyDictionary()


def _rebuild(zone: ZoneData) -> _Chain:
    keys = sorted(
        key
        for key, node in zone.owners.items()
        if len(key) == _HASH_LENGTH + 1 and key[0] == _HASH_LENGTH and _NSEC3 in node[::3]
    )
    chain = _chains[zone] = _Chain(keys)
    return chain


def _chain(zone: ZoneData) -> _Chain:
    return _chains.get(zone) or _rebuild(zone)


def _rendered(zone: ZoneData, chain: _Chain, key: bytes) -> _Rendered | None:
    """The NSEC3 RRset at `key`, rendered; None when the zone has none there."""
    node = zone.owners.get(key)
    if node is None:
        chain.rendered.pop(key, None)
        return None
    done = chain.rendered.get(key)
    if done is not None and done.node is node:
        return done
    found = _rrset_wire(node, _NSEC3)
    if found is None:
        chain.rendered.pop(key, None)
        return None
    records = found[1]
    pos = RR_HEAD.size + 4  # the rdata: hash algorithm, flags, iterations
    pos += 1 + records[pos]  # the salt
    length = records[pos]
    following = b"\x20" + _b32hex(records[pos + 1 : pos + 1 + length])
    _, sigs = covering_ttl(node, _NSEC3, RR_HEAD.unpack_from(records, 0)[3])
    done = chain.rendered[key] = _Rendered(node, following, _unowned(records) + _unowned(sigs))
    return done


def covering_key(zone: ZoneData, target: bytes) -> bytes | None:
    """The hashed owner whose NSEC3 span covers the hash `target` (a name that does not
    exist), None when there is none."""
    chain = _chain(zone)
    keys = chain.keys
    rebuilt = False
    for step in range(2 * _MENDS):
        if (step >= _MENDS or not keys) and not rebuilt:  # listed afresh, once
            chain = _rebuild(zone)
            keys = chain.keys
            rebuilt = True
        if not keys:
            return None
        i = bisect_left(keys, target)
        before = keys[i - 1]  # keys[-1] when the hash sorts first: the span that wraps
        rendered = _rendered(zone, chain, before)
        if rendered is None:  # gone since the keys were listed
            del keys[i - 1]
            continue
        following = rendered.following
        if following <= before:  # the last span wraps around to the first hash
            if target > before or target < following:
                return before
        elif before < target < following:
            return before
        if following == target:
            return None  # the hash exists: nothing covers it
        j = bisect_left(keys, following)
        if j < len(keys) and keys[j] == following:
            return None  # listed already: the chain does not cover the hash
        keys.insert(j, following)  # come since the keys were listed
    return None


class _WireProof:
    """The authority section of a denial as wire: the SOA, its RRSIGs, then each NSEC3
    (with its RRSIGs) once, its owner written out the first time and pointed at after."""

    def __init__(self, zone: ZoneData, chain: _Chain, apex: bytes, offset: int) -> None:
        self.zone = zone
        self.chain = chain
        self.apex = apex  # a pointer to the apex in the question
        self.offset = offset  # where the next record starts in the message
        self.parts: list[bytes] = []
        self.count = 0
        self.added: set[bytes] = set()

    def soa(self) -> None:
        """The zone's SOA record and its RRSIGs, each owned by the apex's place in the
        question (no pointer to a pointer): rendered once per place while the zone stands."""
        done = self.chain.soas.get(self.apex)
        if done is None:
            soa = _soa(self.zone, self.chain)
            done = len(soa), b"".join(self.apex + record for record in soa)
            self.chain.soas[self.apex] = done
        self.parts.append(done[1])
        self.offset += len(done[1])
        self.count += done[0]

    def add(self, owner: bytes, records: list[bytes]) -> None:
        """`records` (without owners), the first owned by `owner`, the rest pointing at it."""
        if not records:
            return
        at = self.offset
        first = owner + records[0]
        self.parts.append(first)
        size = len(first)
        pointer = _POINTER.pack(0xC000 | at) if at < 0x4000 else owner
        for record in records[1:]:
            self.parts.append(pointer)
            self.parts.append(record)
            size += len(pointer) + len(record)
        self.count += len(records)
        self.offset += size

    def by_key(self, key: bytes | None) -> None:
        """The NSEC3 RRset at the hashed owner `key`, if any."""
        if key is None or key in self.added:
            return
        rendered = _rendered(self.zone, self.chain, key)
        if rendered is not None:
            self.added.add(key)
            self.add(key + self.apex, rendered.records)

    def matching(self, name: bytes) -> None:
        self.by_key(hashed(name))

    def covering(self, name: bytes) -> None:
        self.by_key(covering_key(self.zone, hashed(name)))


def _soa(zone: ZoneData, chain: _Chain) -> list[bytes]:
    """The negative answer's SOA record and its RRSIGs, without owners."""
    apex = zone.owners.get(b"", ())
    record = zone.negative_record()
    done = chain.soa
    if done is None or done[0] is not apex or done[1] is not record:
        _, sigs = covering_ttl(apex, _SOA, zone.negative_ttl())
        done = chain.soa = (apex, record, [record, *_unowned(sigs)])
    return done[2]


# (rcode with AA, answer count, authority count, records)
Answer = tuple[int, int, int, bytes]


class _Kept:
    """Whole answers of `denial()` by question, for every zone, bounded in count and bytes.
    Each holds its zone weakly with the serial and SOA parameters it was made at: good while
    they are the zone's (every change moves the serial; a zone loaded anew is another)."""

    def __init__(self) -> None:
        self.entries: dict[bytes, _KeptAnswer] = {}
        self.size = 0  # bytes of the keys and records kept

    def put(self, key: bytes, kept: _KeptAnswer) -> None:
        size = _size(key, kept)
        if len(self.entries) >= KEPT_ANSWERS or self.size + size > KEPT_BYTES:
            self._evict(size)
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= _size(key, old)
        self.entries[key] = kept
        self.size += size

    def _evict(self, room: int) -> None:
        """Drop the answers kept longest ago, an eighth at least, until `room` bytes fit."""
        drop = max(1, KEPT_ANSWERS // _EVICT_FRACTION)
        while self.entries and (drop > 0 or self.size + room > KEPT_BYTES):
            for key in list(islice(self.entries, max(1, drop))):
                self.size -= _size(key, self.entries.pop(key))
            drop = 0

    def clear(self) -> None:
        self.entries.clear()
        self.size = 0


# (the zone, weakly; its serial and SOA parameters; the answer, None for the slow path)
_KeptAnswer = tuple["weakref.ref[ZoneData]", int, object, "Answer | None"]


def _size(key: bytes, kept: _KeptAnswer) -> int:
    found = kept[3]
    return len(key) + (0 if found is None else len(found[3]))


_kept = _Kept()


def denial(
    zone: ZoneData, node: Node | None, name: bytes, apex: int, end: int, qtype: int
) -> Answer | None:
    """(rcode with AA, answer count, authority count, records) of the answer with DO for
    the lower-cased wire name `name`, whose zone's apex starts at `apex`, below the apex
    of a signed zone, whose RRsets (`node`, None when it owns none) lack the type asked,
    the question ending at `end`: NXDOMAIN or NODATA with the SOA and the NSEC3 proofs of
    RFC 5155 7.2.2-7.2.5, or the wildcard's RRset and its RRSIGs with the NSEC3 covering
    the next closer name (7.2.6, RFC 4035 3.1.3.3), each NSEC3 with its RRSIGs.

    None when the answer needs the slow path: a CNAME to follow.
    """
    question = name + _TYPE.pack(qtype)  # the name is self-delimiting: unambiguous
    kept = _kept.entries.get(question)
    if kept is not None and kept[0]() is zone and kept[1] == zone.serial and kept[2] is zone.meta:
        return kept[3]
    chain = _chain(zone)
    if chain.serial != zone.serial or chain.meta is not zone.meta:
        chain.serial, chain.meta = zone.serial, zone.meta
        chain.prefixes.clear()
        chain.soas.clear()
    found = _answer(zone, chain, node, name[:apex], apex, end, qtype)
    _kept.put(question, (weakref.ref(zone), zone.serial, zone.meta, found))
    return found


def _answer(
    zone: ZoneData, chain: _Chain, node: Node | None, key: bytes, apex: int, end: int, qtype: int
) -> Answer | None:
    pointer = _POINTER.pack(0xC00C + apex)
    origin = zone.wire
    if node is not None or zone.exists(key):
        if node is not None and _CNAME in node[::3]:
            return None
        proof = _WireProof(zone, chain, pointer, end)
        proof.soa()
        proof.matching(key + origin)  # the name's own NSEC3 (an empty non-terminal has one)
        return _NOERROR | AA, 0, proof.count, b"".join(proof.parts)
    # RFC 5155 7.2.1: the closest encloser exists, the next closer name below it does not.
    closer = key
    encloser = key[key[0] + 1 :]
    while encloser and not zone.exists(encloser):
        closer, encloser = encloser, encloser[encloser[0] + 1 :]
    wild = zone.owners.get(_WILD + encloser)
    if wild is None:
        return _nxdomain(zone, chain, encloser, closer, pointer, apex, end)
    if _CNAME in wild[::3] or qtype in (_RRSIG, _NSEC3):
        return None
    found = _rrset_wire(wild, qtype)
    if found is None:  # wildcard NODATA (7.2.5): the wildcard's own NSEC3 lacks the type
        proof = _WireProof(zone, chain, pointer, end)
        proof.soa()
        proof.matching(encloser + origin)
        proof.covering(closer + origin)
        proof.matching(_WILD + encloser + origin)
        return _NOERROR | AA, 0, proof.count, b"".join(proof.parts)
    count, records = found
    extra, sigs = covering_ttl(wild, qtype, RR_HEAD.unpack_from(records, 0)[3])
    answer = records + sigs
    proof = _WireProof(zone, chain, pointer, end + len(answer))
    proof.covering(closer + origin)
    return AA, count + extra, proof.count, answer + b"".join(proof.parts)


def _nxdomain(
    zone: ZoneData,
    chain: _Chain,
    encloser: bytes,
    closer: bytes,
    pointer: bytes,
    apex: int,
    end: int,
) -> Answer:
    """NXDOMAIN (RFC 5155 7.2.2): the SOA, the closest encloser's NSEC3, the NSEC3s covering
    the next closer name and the wildcard at the encloser. All but the next closer name's
    are the same for every name of that length below that encloser: kept rendered."""
    origin = zone.wire
    prefix = chain.prefixes.get((encloser, apex))
    if prefix is None:
        near = chain.near.get(encloser)
        if near is None:  # the hashes of the encloser and its wildcard: the same for many
            if len(chain.near) >= _NEAR_MAX:
                chain.near.clear()
            near = (hashed(encloser + origin), hashed(_WILD + encloser + origin))
            chain.near[encloser] = near
        proof = _WireProof(zone, chain, pointer, end)
        proof.soa()
        proof.by_key(near[0])
        proof.by_key(covering_key(zone, near[1]))
        if len(chain.prefixes) >= _NEAR_MAX:
            chain.prefixes.clear()
        prefix = (proof.count, b"".join(proof.parts), frozenset(proof.added))
        chain.prefixes[(encloser, apex)] = prefix
    count, wire, added = prefix
    proof = _WireProof(zone, chain, pointer, end + len(wire))
    proof.added.update(added)
    proof.covering(closer + origin)
    return _NXDOMAIN | AA, 0, count + proof.count, wire + b"".join(proof.parts)
