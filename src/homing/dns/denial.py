"""The NSEC3 proofs of a signed zone's denials (RFC 5155 7.2), found and written as wire.

An NXDOMAIN name is mostly new each time, so its proof cannot be kept per name: it is
made afresh in a few microseconds. The name is hashed with hashlib; the NSEC3 record
covering the hash is found by bisection in the zone's hashed owners, kept sorted per
zone; each NSEC3 RRset with its RRSIGs is kept rendered (records without their owners)
beside the sorted owners, for as long as the index holds the same node at that name.
The NSEC3 records themselves decide: the sorted owners only point at one, and are
mended in place when its record shows a hash come or gone since they were listed.
"""

from __future__ import annotations

import hashlib
import struct
import weakref
from bisect import bisect_left
from dataclasses import dataclass, field

import dns.rcode
import dns.rdatatype

from homing.dns.index import Node, ZoneData
from homing.dns.rrwire import RR_HEAD
from homing.dns.wire import AA

__all__ = ["covering_key", "covering_ttl", "denial", "hashed"]

_NSEC3 = int(dns.rdatatype.RdataType.NSEC3)
_RRSIG = int(dns.rdatatype.RdataType.RRSIG)
_SOA = int(dns.rdatatype.RdataType.SOA)
_CNAME = int(dns.rdatatype.RdataType.CNAME)
_NXDOMAIN = int(dns.rcode.Rcode.NXDOMAIN)
_NOERROR = int(dns.rcode.Rcode.NOERROR)
_HASH_LENGTH = 32  # base32hex digits of a SHA-1 NSEC3 hash
_POINTER = struct.Struct("!H")
_WILD = b"\x01*"
# Steps a covering lookup may take mending the sorted owners before listing them again.
_MENDS = 16
_NEAR_MAX = 65_536  # closest enclosers whose hashes (and their wildcard's) are kept
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
    near: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)  # see denial()


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
        self._added: set[bytes] = set()

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
        if key is None or key in self._added:
            return
        rendered = _rendered(self.zone, self.chain, key)
        if rendered is not None:
            self._added.add(key)
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


def denial(
    zone: ZoneData, node: Node | None, key: bytes, apex: int, end: int
) -> tuple[int, int, int, bytes] | None:
    """(rcode with AA, answer count, authority count, records) of the NXDOMAIN or NODATA
    answer with DO for the name `key` below the apex of a signed zone, whose RRsets
    (`node`, None when it owns none) lack the type asked, the question ending at `end`:
    the SOA and the NSEC3 proofs of RFC 5155 7.2.2-7.2.4, each with its RRSIGs.

    None when the answer needs the slow path: a CNAME to follow, a wildcard to expand.
    """
    if node is None and not zone.exists(key):
        if zone.wildcard(key) is not None:
            return None
        rcode = _NXDOMAIN
    else:
        if node is not None and _CNAME in node[::3]:
            return None
        rcode = _NOERROR
    pointer = _POINTER.pack(0xC00C + apex)
    chain = _chain(zone)
    proof = _WireProof(zone, chain, pointer, end)
    soa = _soa(zone, chain)
    for record in soa:  # each owned by the apex's place in the question: no pointer to it
        proof.parts += (pointer, record)
        proof.offset += len(pointer) + len(record)
    proof.count += len(soa)
    origin = zone.wire
    if rcode == _NOERROR:  # the name's own NSEC3 (an empty non-terminal has one too)
        proof.matching(key + origin)
    else:  # closest encloser, next closer name, the wildcard at the encloser
        closer = key
        encloser = key[key[0] + 1 :]
        while encloser and not zone.exists(encloser):
            closer, encloser = encloser, encloser[encloser[0] + 1 :]
        near = chain.near.get(encloser)
        if near is None:  # the hashes of the encloser and its wildcard: the same for many
            if len(chain.near) >= _NEAR_MAX:
                chain.near.clear()
            near = (hashed(encloser + origin), hashed(_WILD + encloser + origin))
            chain.near[encloser] = near
        proof.by_key(near[0])
        proof.covering(closer + origin)
        proof.by_key(covering_key(zone, near[1]))
    return rcode | AA, 0, proof.count, b"".join(proof.parts)
