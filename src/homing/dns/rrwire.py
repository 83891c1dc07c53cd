"""Names and records in the wire form the zone index keeps them in.

A name is lower-cased wire bytes; an RRset is the wire of its complete answer records,
owner a compression pointer to the question (offset 12), so an answer is the header, the
question and these bytes. dnspython is used only where a name or rdata needs it (escapes,
IDNA, types other than addresses), and to make RRset objects for the rare paths.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from homing.dns.dnssecwire import nsec3_wire, rrsig_wire

__all__ = [
    "QUESTION_OWNER",
    "RDTYPES",
    "RR_HEAD",
    "Node",
    "dnspython_wire",
    "labels_wire",
    "name_wire",
    "node_rrsets",
    "records_wire",
    "without_type",
]

# A name's RRsets, flat to save a container per RRset: (type, record count, records wire,
# type, count, wire, ...). The wire is complete answer records whose owner points at 12.
Node = tuple[Any, ...]  # Any: the hot path reads it without casts

RR_HEAD = struct.Struct("!HHHLH")  # owner pointer, type, class, TTL, rdata length
QUESTION_OWNER = 0xC00C  # the question's name, right after the 12-byte header
_IN = int(dns.rdataclass.RdataClass.IN)
_A = int(dns.rdatatype.RdataType.A)
_AAAA = int(dns.rdatatype.RdataType.AAAA)


def name_wire(text: str) -> bytes:
    """The lower-cased, uncompressed wire form of an absolute name given as text."""
    if text.endswith("."):
        text = text[:-1]
    if not text:
        return b"\x00"
    wire = labels_wire(text.lower())
    return wire + b"\x00" if wire is not None and len(wire) < 255 else dnspython_wire(text)


def labels_wire(text: str) -> bytes | None:
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


def dnspython_wire(text: str) -> bytes:
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
    # A signed zone's RRSIG and NSEC3 records: one of each per name, read the short way.
    fast = _FAST.get(rdtype)
    if fast is not None and (found := fast(text)) is not None:
        return found
    wire = dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.RdataType.make(rdtype), text
    ).to_wire()
    assert wire is not None
    return wire


_FAST = {
    int(dns.rdatatype.RdataType.RRSIG): rrsig_wire,
    int(dns.rdatatype.RdataType.NSEC3): nsec3_wire,
}

# The record types of every update, without dnspython's enum lookup.
RDTYPES = {"A": int(dns.rdatatype.A), "AAAA": int(dns.rdatatype.AAAA)}


def records_wire(rdtype: int, ttl: int, rdatas: Iterable[str]) -> tuple[int, bytes]:
    """(record count, answer records wire) of one RRset; duplicates count once."""
    datas = dict.fromkeys(_rdata_wire(rdtype, text) for text in rdatas)
    wire = b"".join(
        RR_HEAD.pack(QUESTION_OWNER, rdtype, _IN, ttl, len(data)) + data for data in datas
    )
    return len(datas), wire


def to_rrset(owner: dns.name.Name, rdtype: int, wire: bytes) -> dns.rrset.RRset:
    """A dnspython RRset from stored records wire (for the rare paths)."""
    kind = dns.rdatatype.RdataType.make(rdtype)
    rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, kind)
    pos = 0
    while pos < len(wire):
        _, _, _, ttl, length = RR_HEAD.unpack_from(wire, pos)
        pos += RR_HEAD.size
        rdata = dns.rdata.from_wire(dns.rdataclass.IN, kind, wire, pos, length)
        if kind == dns.rdatatype.RdataType.RRSIG:
            # An owner's RRSIGs are kept as one RRset whatever they cover (homing.dnssec);
            # dnspython would refuse the second covered type.
            rrset.covers = rdata.covers()
        rrset.add(rdata, ttl)
        pos += length
    return rrset


def without_type(node: Node, rdtype: int) -> Node:
    """The node without its RRset of `rdtype`."""
    return tuple(x for i in range(0, len(node), 3) if node[i] != rdtype for x in node[i : i + 3])


def node_rrsets(node: Node, owner: dns.name.Name) -> dict[dns.rdatatype.RdataType, dns.rrset.RRset]:
    """A node's RRsets as dnspython objects under `owner` (a wildcard's: the name asked)."""
    out = {}
    for i in range(0, len(node), 3):
        rdtype, wire = node[i], node[i + 2]
        out[dns.rdatatype.RdataType.make(rdtype)] = to_rrset(owner, rdtype, wire)
    return out
