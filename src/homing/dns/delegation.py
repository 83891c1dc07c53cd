"""Referrals at zone cuts (RFC 1034 4.3.2, RFC 9471): NS below the apex hands the names
at and below it to the child's servers. A name there is answered with the cut's NS RRset
in authority, AA clear, and the addresses of those servers that lie inside the zone
(glue, also below sibling cuts) in additional; nothing below a cut is answered as data."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import dns.rdtypes.nsbase
import dns.rrset

from homing.dns.additional import addresses
from homing.dns.index import ZoneData, node_rrsets

__all__ = ["Referral", "referral"]

_NS = dns.rdatatype.RdataType.NS

Referral = tuple[dns.rrset.RRset, list[dns.rrset.RRset]]  # (the cut's NS, glue)


def referral(zone: ZoneData, cut: bytes) -> Referral:
    """The cut's NS RRset and the glue for it: A and AAAA of its in-zone server names,
    in the order of the NS records."""
    owner = zone.name_of(cut)
    ns = node_rrsets(zone.owners[cut], owner)[_NS]
    glue: list[dns.rrset.RRset] = []
    seen: set[bytes] = set()
    for rdata in ns:
        assert isinstance(rdata, dns.rdtypes.nsbase.NSBase)
        key = zone.key_of(rdata.target)
        if key is None or key in seen:
            continue  # out of bailiwick: the resolver looks it up itself
        seen.add(key)
        glue.extend(addresses(zone, key, zone.name_of(key), wildcards=False))
    return ns, glue
