"""Answers from a signed zone to queries with DO (RFC 4035 3.1, RFC 5155 7.2): the RRSIGs
of every RRset given, and NSEC3 records proving what does not exist.

Nothing is signed here: the signatures and the NSEC3 chain are stored with the zone
(homing.dnssec) and only picked out. The hot path gives an RRset's own signatures
(`covering`) and the denials below the apex (`denial`) straight from the index's wire:
an NXDOMAIN name is mostly new each time, so its proof is not kept but made in a few
microseconds (the name hashed with hashlib, a bisect in the zone's sorted hashed owners,
records copied from the index with their owners written in). The rest (the apex, CNAME
chains, wildcards, referrals) is made on the slow path with dnspython (`secure`) and kept
like its other answers.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import struct
import weakref
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from homing.dns.index import Node, ZoneData, node_rrsets
from homing.dns.resolution import Resolution
from homing.dns.rrwire import RR_HEAD
from homing.dns.wire import AA

__all__ = ["covering", "denial", "hashed", "secure", "signed"]

_DNSKEY = int(dns.rdatatype.RdataType.DNSKEY)
_NSEC3PARAM = int(dns.rdatatype.RdataType.NSEC3PARAM)
_RRSIG = dns.rdatatype.RdataType.RRSIG
_NSEC3 = dns.rdatatype.RdataType.NSEC3
_NS = dns.rdatatype.RdataType.NS
_DS = dns.rdatatype.RdataType.DS
_CNAME = dns.rdatatype.RdataType.CNAME
_SOA = dns.rdatatype.RdataType.SOA
_HASH_LENGTH = 32  # base32hex digits of a SHA-1 NSEC3 hash
_HASH_PREFIX = bytes((_HASH_LENGTH,))
_NSEC3_TYPE = int(_NSEC3)
_SOA_TYPE = int(_SOA)
_CNAME_TYPE = int(_CNAME)
_NXDOMAIN = int(dns.rcode.Rcode.NXDOMAIN)
_NOERROR = int(dns.rcode.Rcode.NOERROR)
_POINTER = struct.Struct("!H")
_WILD = b"\x01*"
# Steps a covering lookup may take mending the zone's sorted hashed owners (a hash come
# or gone since they were listed) before listing them again.
_MENDS = 16


def signed(zone: ZoneData) -> bool:
    """Whether the zone is signed: its apex holds an NSEC3PARAM record."""
    node = zone.owners.get(b"")
    return node is not None and _NSEC3PARAM in node[::3]


def hashed(name: bytes) -> bytes:
    """The relative key of the hashed owner of a lower-cased wire name (RFC 5155 5: SHA-1,
    no salt, no extra iterations, as homing.dnssec makes the chain)."""
    digest = base64.b32hexencode(hashlib.sha1(name, usedforsecurity=False).digest()).lower()
    return _HASH_PREFIX + digest


def _next_key(records: bytes) -> bytes:
    """The key of the next hashed owner named in an NSEC3 record's wire (RFC 5155 3.2)."""
    pos = RR_HEAD.size + 4  # hash algorithm, flags, iterations
    pos += 1 + records[pos]  # the salt
    length = records[pos]
    digest = base64.b32hexencode(records[pos + 1 : pos + 1 + length]).lower()
    return bytes((len(digest),)) + digest


def _rrset_wire(node: Node, rdtype: int) -> tuple[int, bytes] | None:
    """(count, records wire) of a node's RRset of `rdtype`, None when it has none."""
    for i in range(0, len(node), 3):
        if node[i] == rdtype:
            return node[i + 1], node[i + 2]
    return None


@dataclass
class _Chain:
    """A zone's hashed owners in order, made when first needed and made again when a
    lookup finds it stale (each proof is checked against the records it returns)."""

    keys: list[bytes] = field(default_factory=list)


_chains: weakref.WeakKeyDictionary[ZoneData, _Chain] = weakref.WeakKeyDictionary()


def _rebuild(zone: ZoneData) -> _Chain:
    keys = sorted(
        key
        for key, node in zone.owners.items()
        if len(key) == _HASH_LENGTH + 1 and key[0] == _HASH_LENGTH and _NSEC3_TYPE in node[::3]
    )
    chain = _chains[zone] = _Chain(keys)
    return chain


def _covering_key(zone: ZoneData, target: bytes) -> bytes | None:
    """The hashed owner whose NSEC3 span covers the hash `target` (a name that does not
    exist), None when there is none. The zone's NSEC3 records decide: the sorted keys
    only point at one, and are mended when its record shows them stale."""
    chain = _chains.get(zone) or _rebuild(zone)
    keys = chain.keys
    for step in range(2 * _MENDS):
        if step == _MENDS:
            keys = _rebuild(zone).keys
        if not keys:
            return None
        i = bisect.bisect_left(keys, target)
        before = keys[i - 1]  # keys[-1] when the hash sorts first: the span that wraps
        node = zone.owners.get(before)
        found = None if node is None else _rrset_wire(node, _NSEC3_TYPE)
        if found is None:  # gone since the keys were listed
            del keys[i - 1]
            continue
        following = _next_key(found[1])
        if following <= before:  # the last span wraps around to the first hash
            if target > before or target < following:
                return before
        elif before < target < following:
            return before
        if following == target:
            return None  # the hash exists: nothing covers it
        j = bisect.bisect_left(keys, following)
        if j < len(keys) and keys[j] == following:
            return None  # listed already: the chain does not cover the hash
        keys.insert(j, following)  # come since the keys were listed
    return None


class _Proof:
    """The NSEC3 RRsets (and their RRSIGs) of one answer, each added once."""

    def __init__(self, zone: ZoneData) -> None:
        self.zone = zone
        self.rrsets: list[dns.rrset.RRset] = []
        self._added: set[bytes] = set()

    def _add(self, key: bytes) -> None:
        node = self.zone.owners.get(key)
        if node is None or key in self._added:
            return
        rrsets = node_rrsets(node, self.zone.name_of(key))
        nsec3 = rrsets.get(_NSEC3)
        if nsec3 is None:
            return
        self._added.add(key)
        self.rrsets.append(nsec3)
        self.rrsets.extend(_signatures(rrsets, _NSEC3, nsec3.name, nsec3.ttl))

    def matching(self, name: dns.name.Name) -> None:
        """The NSEC3 record whose owner is the hash of `name` (it exists)."""
        self._add(hashed(name.canonicalize().to_wire() or b""))

    def covering(self, name: dns.name.Name) -> None:
        """The NSEC3 record whose span covers the hash of `name` (it does not exist)."""
        key = _covering_key(self.zone, hashed(name.canonicalize().to_wire() or b""))
        if key is not None:
            self._add(key)


def _signatures(
    rrsets: dict[dns.rdatatype.RdataType, dns.rrset.RRset],
    rdtype: dns.rdatatype.RdataType,
    owner: dns.name.Name,
    ttl: int,
) -> list[dns.rrset.RRset]:
    """The RRSIGs covering `rdtype` among a node's RRsets, owned by `owner` with `ttl`."""
    sigs = rrsets.get(_RRSIG)
    if sigs is None:
        return []
    mine = [s for s in sigs if s.type_covered == rdtype]
    if not mine:
        return []
    return [dns.rrset.from_rdata_list(owner, ttl, mine)]


def _closest_encloser(zone: ZoneData, name: dns.name.Name) -> tuple[dns.name.Name, dns.name.Name]:
    """(closest encloser, next closer name) of a name that does not exist (RFC 5155 7.2.1)."""
    closer = name
    parent = name.parent()
    while parent != zone.origin:
        key = zone.key_of(parent)
        if key is not None and zone.exists(key):
            break
        closer, parent = parent, parent.parent()
    return parent, closer


def secure(zone: ZoneData, result: Resolution, qname: dns.name.Name) -> None:
    """Add to `result` (from resolve()) the RRSIGs and NSEC3 proofs a validator needs."""
    proof = _Proof(zone)
    answer: list[dns.rrset.RRset] = []
    last = qname  # the name the answer ends at (after any CNAME)
    for rrset in result.answer:
        answer.append(rrset)
        answer.extend(_rrset_signatures(zone, rrset, proof))
        if rrset.rdtype == _CNAME:
            target = next(iter(rrset)).target
            if target.is_subdomain(zone.origin):
                last = target
    result.answer = answer
    authority: list[dns.rrset.RRset] = []
    for rrset in result.authority:
        authority.append(rrset)
        if rrset.rdtype == _SOA:
            authority.extend(_rrset_signatures(zone, rrset, proof))
            _deny(zone, result, last, proof)
        elif rrset.rdtype == _NS and rrset.name != zone.origin:
            _delegation(zone, rrset.name, authority, proof)
    result.authority = authority + proof.rrsets


def _rrset_signatures(
    zone: ZoneData, rrset: dns.rrset.RRset, proof: _Proof
) -> list[dns.rrset.RRset]:
    """The RRSIGs of one answer RRset; a wildcard's come with the proof that the name
    asked for does not exist itself (RFC 5155 7.2.6)."""
    if not rrset.name.is_subdomain(zone.origin):
        return []
    key = zone.key_of(rrset.name)
    node = None if key is None else zone.owners.get(key)
    if key is not None and node is None and not zone.exists(key):
        node = zone.wildcard(key)
        if node is None:
            return []
        _, closer = _closest_encloser(zone, rrset.name)
        proof.covering(closer)
    if node is None:
        return []
    return _signatures(node_rrsets(node, rrset.name), rrset.rdtype, rrset.name, rrset.ttl)


def _deny(zone: ZoneData, result: Resolution, name: dns.name.Name, proof: _Proof) -> None:
    """NXDOMAIN: closest encloser, next closer name, wildcard (RFC 5155 7.2.2); NODATA:
    the name's own NSEC3, or at a wildcard the wildcard's with the closest encloser's
    (7.2.3-7.2.5)."""
    key = zone.key_of(name)
    if key is None:
        return
    if zone.exists(key):
        proof.matching(name)
        return
    encloser, closer = _closest_encloser(zone, name)
    wildcard = dns.name.Name((b"*", *encloser.labels))
    proof.matching(encloser)
    proof.covering(closer)
    if result.rcode == dns.rcode.Rcode.NXDOMAIN:
        proof.covering(wildcard)
    else:
        proof.matching(wildcard)


def _delegation(
    zone: ZoneData, cut: dns.name.Name, authority: list[dns.rrset.RRset], proof: _Proof
) -> None:
    """A referral: the DS RRset and its RRSIGs, or the NSEC3 proving there is none."""
    key = zone.key_of(cut)
    node = None if key is None else zone.owners.get(key)
    if node is None:
        return
    rrsets = node_rrsets(node, cut)
    ds = rrsets.get(_DS)
    if ds is None:
        proof.matching(cut)
        return
    authority.append(ds)
    authority.extend(_signatures(rrsets, _DS, cut, ds.ttl))


_RRSIG_TYPE = int(_RRSIG)


def covering(node: Node, rdtype: int, records: bytes) -> tuple[int, bytes]:
    """(count, records wire) of the RRSIGs in `node` that cover `rdtype`, with the TTL of
    that type's `records`: the hot path's signed answers, without dnspython."""
    ttl = RR_HEAD.unpack_from(records, 0)[3] if records else 0
    return _covering_ttl(node, rdtype, ttl)


def _covering_ttl(node: Node, rdtype: int, ttl: int) -> tuple[int, bytes]:
    found = _rrset_wire(node, _RRSIG_TYPE)
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


def _owned(records: bytes, owner: bytes) -> bytes:
    """Records wire whose owners point at the question, each owned by `owner` instead."""
    parts = []
    pos = 0
    while pos < len(records):
        end = pos + RR_HEAD.size + int.from_bytes(records[pos + 10 : pos + 12], "big")
        parts.append(owner)
        parts.append(records[pos + 2 : end])
        pos = end
    return b"".join(parts)


class _WireProof:
    """The authority section of a denial as wire: the SOA, its RRSIGs, then each NSEC3
    (with its RRSIGs) once, its owner written out the first time and pointed at after."""

    def __init__(self, zone: ZoneData, apex: bytes, offset: int) -> None:
        self.zone = zone
        self.apex = apex  # a pointer to the apex in the question
        self.offset = offset  # where the next record starts in the message
        self.parts: list[bytes] = []
        self.count = 0
        self._added: set[bytes] = set()

    def add(self, count: int, records: bytes) -> None:
        self.parts.append(records)
        self.count += count
        self.offset += len(records)

    def _nsec3(self, key: bytes) -> None:
        node = self.zone.owners.get(key)
        found = None if node is None or key in self._added else _rrset_wire(node, _NSEC3_TYPE)
        if found is None:
            return
        self._added.add(key)
        count, records = found
        ttl = RR_HEAD.unpack_from(records, 0)[3]
        sig_count, sigs = _covering_ttl(node, _NSEC3_TYPE, ttl)  # type: ignore[arg-type]
        at = self.offset
        self.add(count, _owned(records, key + self.apex))
        if at < 0x4000:
            self.add(sig_count, _owned(sigs, _POINTER.pack(0xC000 | at)))
        else:
            self.add(sig_count, _owned(sigs, key + self.apex))

    def matching(self, name: bytes) -> None:
        self._nsec3(hashed(name))

    def covering(self, name: bytes) -> None:
        key = _covering_key(self.zone, hashed(name))
        if key is not None:
            self._nsec3(key)


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
        if node is not None and _CNAME_TYPE in node[::3]:
            return None
        rcode = _NOERROR
    pointer = _POINTER.pack(0xC00C + apex)
    proof = _WireProof(zone, pointer, end)
    proof.add(1, pointer + zone.negative_record())
    count, sigs = _covering_ttl(zone.owners.get(b"", ()), _SOA_TYPE, zone.negative_ttl())
    proof.add(count, _owned(sigs, pointer))
    origin = zone.wire
    if rcode == _NOERROR:  # the name's own NSEC3 (an empty non-terminal has one too)
        proof.matching(key + origin)
    else:  # closest encloser, next closer name, the wildcard at the encloser
        closer = key
        encloser = key[key[0] + 1 :]
        while encloser and not zone.exists(encloser):
            closer, encloser = encloser, encloser[encloser[0] + 1 :]
        proof.matching(encloser + origin)
        proof.covering(closer + origin)
        proof.covering(_WILD + encloser + origin)
    return rcode | AA, 0, proof.count, b"".join(proof.parts)
