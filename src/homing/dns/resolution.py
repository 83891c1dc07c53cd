"""What the zones say about one question (RFC 1034 4.3.2, zone cuts included), as
dnspython objects: the slow path's answers, rendered by dnspython and cached, and the
dispatcher's signed answers."""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.nsbase
import dns.rrset

from homing.dns.additional import additional
from homing.dns.delegation import referral
from homing.dns.ednsopt import EDE_NOT_AUTHORITATIVE_CODE
from homing.dns.index import ZoneData, ZoneIndex, node_rrsets

__all__ = ["CNAME_CHAIN_LIMIT", "METATYPE_RCODES", "Resolution", "resolve"]

CNAME_CHAIN_LIMIT = 8  # bounds the work a CNAME loop or long chain inside a zone can cause

# Meta query types (RFC 6895 3.1) other than ANY, answered before looking at zones.
METATYPE_RCODES: dict[int, dns.rcode.Rcode] = {
    dns.rdatatype.RdataType.AXFR: dns.rcode.Rcode.REFUSED,  # transfers come later, behind TSIG
    dns.rdatatype.RdataType.IXFR: dns.rcode.Rcode.REFUSED,
    dns.rdatatype.RdataType.OPT: dns.rcode.Rcode.FORMERR,  # not a type one can ask for
    dns.rdatatype.RdataType.TSIG: dns.rcode.Rcode.FORMERR,
    dns.rdatatype.RdataType.TKEY: dns.rcode.Rcode.NOTIMP,
    dns.rdatatype.RdataType.MAILA: dns.rcode.Rcode.NOTIMP,
    dns.rdatatype.RdataType.MAILB: dns.rcode.Rcode.NOTIMP,
}

_ANSWERABLE_CLASSES = frozenset({dns.rdataclass.RdataClass.IN, dns.rdataclass.RdataClass.ANY})


@dataclass
class Resolution:
    """What the zones say about one question, before it becomes wire format."""

    rcode: dns.rcode.Rcode
    authoritative: bool = False
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)
    zone: dns.name.Name | None = None
    optional: int = 0  # the last RRsets of `additional` may go to make the answer fit
    ede: int | None = None  # an Extended DNS Error code for the OPT record (RFC 8914)


def resolve(
    index: ZoneIndex,
    qname: dns.name.Name,
    qtype: dns.rdatatype.RdataType,
    qclass: dns.rdataclass.RdataClass,
) -> Resolution:
    """Look one question up in the zones (RFC 1034 4.3.2)."""
    if qclass not in _ANSWERABLE_CLASSES:
        return Resolution(dns.rcode.Rcode.REFUSED)
    zone = index.find(qname)
    if zone is not None and qtype == dns.rdatatype.RdataType.DS and zone.origin == qname:
        # Serving both sides of the cut, the DS comes from the parent (RFC 4035 3.1.4.1):
        # the child's apex has none, and "no DS" there would read as an unsigned child.
        parent = index.find(qname.parent()) if len(qname) > 1 else None
        if parent is not None:
            zone = parent
    if zone is None:
        # Not ours, and we are not a resolver: say so as Knot does (RFC 8914 4.21).
        return Resolution(dns.rcode.Rcode.REFUSED, ede=EDE_NOT_AUTHORITATIVE_CODE)
    if zone.meta.expired:
        return Resolution(dns.rcode.Rcode.SERVFAIL, zone=zone.origin)  # a secondary without a copy
    meta_rcode = METATYPE_RCODES.get(qtype)
    if meta_rcode is not None:
        return Resolution(meta_rcode)
    result = Resolution(dns.rcode.Rcode.NOERROR, authoritative=True, zone=zone.origin)
    name = qname
    seen = {qname}
    for _ in range(CNAME_CHAIN_LIMIT):
        if zone.cuts and name != zone.origin:
            key = zone.key_of(name)
            cut = None if key is None else zone.cut_of(key)
            # DS at the cut is the parent's own data (RFC 4035 3.1.4.1); the rest is the child's.
            if cut is not None and not (cut == key and qtype == dns.rdatatype.RdataType.DS):
                ns, glue = referral(zone, cut)
                # A CNAME leading here stays authoritative; the referral alone does not.
                result.authoritative = bool(result.answer)
                result.authority.append(ns)
                result.additional.extend(glue)
                return result
        node = _node(zone, name)
        if node is None:
            result.rcode = dns.rcode.Rcode.NXDOMAIN  # RFC 6604: the rcode of the last name
            result.authority.append(_negative_soa(zone))
            return result
        if qtype == dns.rdatatype.RdataType.ANY:
            chosen = _minimal_any(node)
            if chosen is None:
                result.authority.append(_negative_soa(zone))
            else:
                result.answer.append(chosen)
                _add_targets(result, zone)
            return result
        rrset = node.get(qtype)
        if rrset is not None:
            result.answer.append(rrset)
            _add_targets(result, zone)
            return result
        cname = node.get(dns.rdatatype.RdataType.CNAME)
        if cname is None:
            result.authority.append(_negative_soa(zone))  # NODATA
            return result
        result.answer.append(cname)
        target = _cname_target(cname)
        if target in seen or not target.is_subdomain(zone.origin):
            # A loop, or another zone's name: the client's resolver carries on from here.
            return result
        seen.add(target)
        name = target
    return result


def _add_targets(result: Resolution, zone: ZoneData) -> None:
    """The addresses of the answer's NS, MX and SRV targets in the zone, as optional
    additional data (homing.dns.additional)."""
    extra = additional(zone, result.answer)
    result.additional.extend(extra)
    result.optional = len(extra)


def _node(
    zone: ZoneData, name: dns.name.Name
) -> dict[dns.rdatatype.RdataType, dns.rrset.RRset] | None:
    """The RRsets at `name` (empty for an empty non-terminal), or None when it does not exist.

    Empty non-terminals answer NODATA rather than NXDOMAIN (RFC 8020) and stop wildcards
    below them (RFC 4592); a wildcard's RRsets come owned by `name`.
    """
    if name == zone.origin:
        apex = zone.node(name) or {}
        apex[dns.rdatatype.RdataType.SOA] = zone.soa()  # the serial lives outside the nodes
        return apex
    key = zone.key_of(name)
    if key is None:
        raise ValueError(f"{name} is not in zone {zone.origin}")  # callers check; our bug
    node = zone.owners.get(key)
    if node is None:
        if zone.exists(key):
            return {}
        node = zone.wildcard(key)  # RFC 4592: at the closest encloser
        if node is None:
            return None
    return node_rrsets(node, name)


def _minimal_any(
    node: dict[dns.rdatatype.RdataType, dns.rrset.RRset],
) -> dns.rrset.RRset | None:
    """RFC 8482: ANY gets one RRset, the one with the lowest type number (stable)."""
    if not node:
        return None
    return node[min(node)]


def _cname_target(cname: dns.rrset.RRset) -> dns.name.Name:
    rdata = next(iter(cname))
    if not isinstance(rdata, dns.rdtypes.nsbase.NSBase):
        raise TypeError(f"CNAME rdata of unexpected class {type(rdata).__name__}")
    return rdata.target


def _negative_soa(zone: ZoneData) -> dns.rrset.RRset:
    """The zone's SOA for the authority section of NXDOMAIN and NODATA (RFC 2308 3)."""
    soa = zone.soa()
    soa.ttl = zone.negative_ttl()
    return soa
