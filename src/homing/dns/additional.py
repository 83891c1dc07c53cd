"""Additional-section data: the addresses of the names an answer's NS, MX and SRV records
point at, when those names lie in the zone (RFC 1035 3.3.9 and 6.3.2, RFC 2782), as
Knot adds them. A resolver that asked for the mail exchangers of a name gets their
A and AAAA records in the same reply and need not ask again.

A target that does not exist is looked up as a wildcard would answer it (RFC 4592), but
never across a zone cut; a target below a cut gets the glue kept there. Targets outside
the zone, the root (an SRV "no service here") and targets that are CNAMEs get nothing.
The records are optional: a reply too large with them is sent without them rather
than truncated (RFC 2181 9)."""

from __future__ import annotations

from collections.abc import Iterable

import dns.name
import dns.rdatatype
import dns.rdtypes.ANY.MX
import dns.rdtypes.IN.SRV
import dns.rdtypes.nsbase
import dns.rrset

from homing.dns.index import ZoneData, node_rrsets

__all__ = ["additional", "addresses"]

_A = dns.rdatatype.RdataType.A
_AAAA = dns.rdatatype.RdataType.AAAA
_TARGET_TYPES = frozenset(
    {dns.rdatatype.RdataType.NS, dns.rdatatype.RdataType.MX, dns.rdatatype.RdataType.SRV}
)


def additional(zone: ZoneData, answer: Iterable[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """The A and AAAA RRsets of the in-zone targets of the NS, MX and SRV RRsets in
    `answer`, each target once, in the order of the records."""
    out: list[dns.rrset.RRset] = []
    seen: set[bytes] = set()
    for rrset in answer:
        if rrset.rdtype not in _TARGET_TYPES:
            continue
        for target in _targets(rrset):
            key = zone.key_of(target)
            if key is None or key in seen:
                continue
            seen.add(key)
            out.extend(addresses(zone, key, target, wildcards=True))
    return out


def addresses(
    zone: ZoneData, key: bytes, owner: dns.name.Name, *, wildcards: bool
) -> list[dns.rrset.RRset]:
    """The A and AAAA RRsets at the name `key` of the zone, owned by `owner`; with
    `wildcards`, a name that does not exist outside any cut is answered by its wildcard."""
    node = zone.owners.get(key)
    if (
        node is None
        and wildcards
        and key
        and not zone.exists(key)
        and not (zone.cuts and zone.cut_of(key) is not None)
    ):
        node = zone.wildcard(key)
    if node is None:
        return []
    rrsets = node_rrsets(node, owner)
    return [rrsets[rdtype] for rdtype in (_A, _AAAA) if rdtype in rrsets]


def _targets(rrset: dns.rrset.RRset) -> list[dns.name.Name]:
    out = []
    for rdata in rrset:
        if isinstance(rdata, dns.rdtypes.ANY.MX.MX):
            out.append(rdata.exchange)
        elif isinstance(rdata, dns.rdtypes.IN.SRV.SRV | dns.rdtypes.nsbase.NSBase):
            out.append(rdata.target)
    return out
