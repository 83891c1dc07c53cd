"""Answers from a signed zone to queries with DO (RFC 4035 3.1, RFC 5155 7.2): the RRSIGs
of every RRset given, and NSEC3 records proving what does not exist.

Nothing is signed here: the signatures and the NSEC3 chain are stored with the zone
(homing.dnssec) and only picked out. The hot path gives an RRset's own signatures
(`covering`) straight from the index's wire, and the denials and wildcard answers below
the apex too (homing.dns.denial). The rest (the apex, CNAME chains, referrals, NS, MX and
SRV) is made on the slow path with dnspython (`secure`) and kept like its other answers.
"""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from homing.dns.denial import covering_key, covering_ttl, hashed
from homing.dns.index import Node, ZoneData, node_rrsets
from homing.dns.resolution import Resolution
from homing.dns.rrwire import RR_HEAD

__all__ = ["covering", "secure", "signed"]

_NSEC3PARAM = int(dns.rdatatype.RdataType.NSEC3PARAM)
_RRSIG = dns.rdatatype.RdataType.RRSIG
_NSEC3 = dns.rdatatype.RdataType.NSEC3
_NS = dns.rdatatype.RdataType.NS
_DS = dns.rdatatype.RdataType.DS
_CNAME = dns.rdatatype.RdataType.CNAME
_SOA = dns.rdatatype.RdataType.SOA


def signed(zone: ZoneData) -> bool:
    """Whether the zone is signed: its apex holds an NSEC3PARAM record."""
    node = zone.owners.get(b"")
    return node is not None and _NSEC3PARAM in node[::3]


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
        key = covering_key(self.zone, hashed(name.canonicalize().to_wire() or b""))
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
    _sign_additional(zone, result)


def _sign_additional(zone: ZoneData, result: Resolution) -> None:
    """Each optional address RRset in additional (NS, MX and SRV targets) followed by its
    RRSIGs, as optional as it (RFC 4035 3.1.1: included when there is room, never TC for
    them). Glue below a cut is not the zone's data and has none; nor has an address a
    wildcard supplies, whose proof would not fit the section."""
    first = len(result.additional) - result.optional
    additional = result.additional[:first]
    for rrset in result.additional[first:]:
        additional.append(rrset)
        key = zone.key_of(rrset.name)
        node = None if key is None else zone.owners.get(key)
        if key is None or node is None or (zone.cuts and zone.cut_of(key) is not None):
            continue
        additional.extend(
            _signatures(node_rrsets(node, rrset.name), rrset.rdtype, rrset.name, rrset.ttl)
        )
    result.optional += len(additional) - len(result.additional)
    result.additional = additional


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
    return covering_ttl(node, rdtype, ttl)
