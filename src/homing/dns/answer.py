"""Sans-I/O authoritative answers: DNS query bytes in, response bytes (or nothing) out.

The hot path avoids dnspython's message parser: a plain query (one question, at most
one OPT record) is read by hand, and the response wire for its lower-cased question is
cached until the zone index changes. Only the ID, the copied header bits and the
question's own bytes (so the client's letter case is echoed) are patched in per query.
Answer owner names are compression pointers into the question, so they echo the case
too. Anything unusual goes through dnspython and the error ladder of
dnspython's tests/nanonameserver.py.
"""

from __future__ import annotations

import itertools
import logging
import struct
import weakref
from collections.abc import Container
from dataclasses import dataclass, field
from typing import NamedTuple, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.nsbase
import dns.rrset

from homing.dns.index import ZoneData, ZoneIndex

__all__ = [
    "MAX_TCP_MESSAGE",
    "MIN_UDP_PAYLOAD",
    "OUR_UDP_PAYLOAD",
    "Resolution",
    "Responder",
    "answer",
    "resolve",
]

logger = logging.getLogger(__name__)

OUR_UDP_PAYLOAD = 1232  # the DNS Flag Day 2020 size: no IP fragmentation on common paths
MIN_UDP_PAYLOAD = 512  # RFC 1035, and the floor for smaller EDNS payloads (RFC 6891 6.2.5)
MAX_TCP_MESSAGE = 65535
CNAME_CHAIN_LIMIT = 8  # bounds the work a CNAME loop or long chain inside a zone can cause
# Prepared answers kept; at about 400 bytes each this bounds the cache near 160 MB even
# under a flood of random names. A zone's whole query mix should fit (see benchmarks).
DEFAULT_CACHE_SIZE = 400_000
_EVICT_FRACTION = 8  # when full, the oldest 1/8 of the answers go

_HEADER = struct.Struct("!HHHHHH")
_ID_FLAGS = struct.Struct("!HH")
_TYPE_CLASS = struct.Struct("!HH")
_OPT_FIXED = struct.Struct("!HHBBHH")  # type, payload, extended rcode, version, flags, rdlength
_OPTION = struct.Struct("!HH")

_QR = int(dns.flags.Flag.QR)
_AA = int(dns.flags.Flag.AA)
_TC = int(dns.flags.Flag.TC)
# RD and CD are the client's to set and are echoed; RA and AD stay 0 (not a resolver).
_COPIED_FLAGS = int(dns.flags.Flag.RD | dns.flags.Flag.CD)
_OPCODE_MASK = 0x7800
_OPT_TYPE = int(dns.rdatatype.RdataType.OPT)

# Our OPT record: root owner, payload 1232, extended rcode 0, version 0, no flags, no options.
_OUR_OPT = b"\x00" + _OPT_FIXED.pack(_OPT_TYPE, OUR_UDP_PAYLOAD, 0, 0, 0, 0)

# Opcodes other than QUERY; anything not listed is NOTIMP.
_OPCODE_RCODES: dict[int, dns.rcode.Rcode] = {
    dns.opcode.Opcode.UPDATE: dns.rcode.Rcode.REFUSED,  # RFC 2136 comes later, behind TSIG
    dns.opcode.Opcode.NOTIFY: dns.rcode.Rcode.NOTIMP,  # we are the primary; nobody notifies us
}

# Meta query types (RFC 6895 3.1) other than ANY, answered before looking at zones.
_METATYPE_RCODES: dict[int, dns.rcode.Rcode] = {
    dns.rdatatype.RdataType.AXFR: dns.rcode.Rcode.REFUSED,  # transfers come later, behind TSIG
    dns.rdatatype.RdataType.IXFR: dns.rcode.Rcode.REFUSED,
    dns.rdatatype.RdataType.OPT: dns.rcode.Rcode.FORMERR,  # not a type one can ask for
    dns.rdatatype.RdataType.TSIG: dns.rcode.Rcode.FORMERR,
    dns.rdatatype.RdataType.TKEY: dns.rcode.Rcode.NOTIMP,
    dns.rdatatype.RdataType.MAILA: dns.rcode.Rcode.NOTIMP,
    dns.rdatatype.RdataType.MAILB: dns.rcode.Rcode.NOTIMP,
}

_ANSWERABLE_CLASSES = frozenset({dns.rdataclass.RdataClass.IN, dns.rdataclass.RdataClass.ANY})


# One responder (and its cache) per index, so answer() stays a plain function.
_responders: weakref.WeakKeyDictionary[ZoneIndex, Responder] = weakref.WeakKeyDictionary()


def answer(wire: bytes, index: ZoneIndex, *, tcp: bool) -> bytes | None:
    """The response to one DNS message, or None when it must be dropped."""
    responder = _responders.get(index)
    if responder is None:
        responder = _responders[index] = Responder(index)
    return responder.answer(wire, tcp=tcp)


@dataclass
class Resolution:
    """What the zones say about one question, before it becomes wire format."""

    rcode: dns.rcode.Rcode
    authoritative: bool = False
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    # True when the answer comes from the question name's own RRsets alone: it changes
    # only when that name changes. Everything else (negative answers carry the SOA and
    # its serial, wildcards, CNAME chains, the apex) may change with any change in the zone.
    local: bool = False
    zone: dns.name.Name | None = None


class _Question(NamedTuple):
    """A query reduced to what the answer depends on."""

    ident: int
    flags: int
    question: bytes  # the question section exactly as the client sent it, uncompressed
    name_length: int  # bytes of `question` that are the name
    edns_payload: int | None  # None without an OPT record


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A response for a lower-cased question, cut around the question section."""

    flags: int
    counts: bytes  # QDCOUNT..ARCOUNT, 8 bytes
    tail: bytes  # everything after the question section
    fits_tcp: bool = True  # False: even 65535 bytes are too few, every reply is truncated

    def render(self, q: _Question, limit: int) -> bytes:
        """The response for `q`, truncated to the question alone if over `limit` bytes."""
        flags = self.flags | (q.flags & _COPIED_FLAGS)
        if self.fits_tcp and 12 + len(q.question) + len(self.tail) <= limit:
            return _ID_FLAGS.pack(q.ident, flags) + self.counts + q.question + self.tail
        # Does not fit: the question alone with TC, so the client retries over TCP.
        edns = q.edns_payload is not None
        counts = struct.pack("!HHHH", 1, 0, 0, 1 if edns else 0)
        opt = _OUR_OPT if edns else b""
        return _ID_FLAGS.pack(q.ident, flags | _TC) + counts + q.question + opt


class Responder:
    """Answers queries from one zone index, caching response wire per question."""

    def __init__(self, index: ZoneIndex, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, not {cache_size}")
        self.index = index
        self._cache_size = cache_size
        self._cache: dict[bytes, _Prepared] = {}
        # Which cache keys to forget when a name, or anything in a zone, changes.
        self._by_name: dict[dns.name.Name, list[bytes]] = {}
        self._by_zone: dict[dns.name.Name, list[bytes]] = {}
        self._indexed = 0  # keys added to the lists above since they were last emptied
        self._generation = index.generation

    def answer(self, wire: bytes, *, tcp: bool) -> bytes | None:
        """The response to one DNS message, or None when it must be dropped."""
        if len(wire) < 12:
            return None  # not even a header to answer to
        if wire[2] & 0x80:
            return None  # QR set: a response; answering it could start a loop between servers
        try:
            q = _parse_plain_query(wire)
            if q is None:
                return self._answer_unusual(wire, tcp=tcp)
            return self._reply(q, tcp=tcp)
        except Exception:
            # Our bug, not the client's: say so with SERVFAIL, keep serving.
            logger.exception("failed to answer DNS message %s", wire[:512].hex())
            return _header_reply(wire, dns.rcode.Rcode.SERVFAIL)

    def _forget_changed(self) -> None:
        """Drop the cached answers the index's changes since our last look may have altered."""
        changes = self.index.changes_since(self._generation)
        self._generation = self.index.generation
        if changes is None or any(owner is None for _, owner in changes):
            self._clear()  # too many changes, or a zone came or went
            return
        for origin, owner in changes:
            for key in self._by_name.pop(cast(dns.name.Name, owner), ()):
                self._cache.pop(key, None)
            for key in self._by_zone.pop(origin, ()):
                self._cache.pop(key, None)

    def _clear(self) -> None:
        self._cache.clear()
        self._by_name.clear()
        self._by_zone.clear()
        self._indexed = 0

    def _evict(self) -> None:
        """Drop the answers prepared longest ago (an evicted hot one is soon prepared again).

        The name and zone lists may still hold evicted keys (forgetting them is a no-op);
        once they hold far more keys than the cache, everything starts over.
        """
        if self._indexed > 4 * self._cache_size:
            self._clear()
            return
        for key in list(itertools.islice(self._cache, max(1, self._cache_size // _EVICT_FRACTION))):
            del self._cache[key]

    def _reply(self, q: _Question, *, tcp: bool) -> bytes:
        if self._generation != self.index.generation:
            self._forget_changed()
        edns = q.edns_payload is not None
        name = q.question[: q.name_length].lower()
        # The name is self-delimiting (it ends in the root label), so plain concatenation
        # is an unambiguous key.
        key = name + q.question[q.name_length :] + (b"\x01" if edns else b"\x00")
        prepared = self._cache.get(key)
        if prepared is None:
            prepared, qname, resolution = self._prepare(name, q, edns=edns)
            if len(self._cache) >= self._cache_size:
                self._evict()
            self._cache[key] = prepared
            self._indexed += 1
            if resolution.local:
                self._by_name.setdefault(qname, []).append(key)
            elif resolution.zone is not None:
                self._by_zone.setdefault(resolution.zone, []).append(key)
            # else: REFUSED outside our zones; only a zone coming or going changes that
        return prepared.render(q, _size_limit(q.edns_payload, tcp=tcp))

    def _prepare(
        self, lowered_name: bytes, q: _Question, *, edns: bool
    ) -> tuple[_Prepared, dns.name.Name, Resolution]:
        qname, _ = dns.name.from_wire(lowered_name, 0)
        qtype, qclass = _TYPE_CLASS.unpack_from(q.question, q.name_length)
        resolution = resolve(
            self.index,
            qname,
            dns.rdatatype.RdataType.make(qtype),
            dns.rdataclass.RdataClass.make(qclass),
        )
        direct = _render_direct(resolution, edns=edns)
        if direct is not None:
            return direct, qname, resolution
        message = dns.message.Message(id=0)
        message.flags = _QR | (_AA if resolution.authoritative else 0)
        message.set_rcode(resolution.rcode)
        message.question.append(dns.rrset.RRset(qname, qclass, qtype))
        message.answer.extend(resolution.answer)
        message.authority.extend(resolution.authority)
        if edns:
            message.use_edns(0, payload=OUR_UDP_PAYLOAD)
        question_end = 12 + len(q.question)
        try:
            wire = message.to_wire(max_size=MAX_TCP_MESSAGE)
        except dns.exception.TooBig:
            return _Prepared(message.flags, b"", b"", fits_tcp=False), qname, resolution
        flags = _ID_FLAGS.unpack_from(wire)[1]
        return _Prepared(flags, wire[4:12], wire[question_end:]), qname, resolution

    def _answer_unusual(self, wire: bytes, *, tcp: bool) -> bytes | None:
        """The slow path: dnspython parses, and every error gets its rcode."""
        opcode = (wire[2] >> 3) & 0xF
        if opcode != dns.opcode.Opcode.QUERY:
            rcode = _OPCODE_RCODES.get(opcode, dns.rcode.Rcode.NOTIMP)
            return _error_reply(wire, rcode, None, tcp=tcp)
        try:
            # keyring=False parses a TSIG record without checking it; see below.
            query = dns.message.from_wire(wire, keyring=False)
        except dns.message.ShortHeader:
            return None
        except Exception:
            # The client's fault: anything dnspython cannot read is a format error.
            return _error_reply(wire, dns.rcode.Rcode.FORMERR, None, tcp=tcp)
        if len(query.question) != 1:
            return _error_reply(wire, dns.rcode.Rcode.FORMERR, query, tcp=tcp)
        if query.edns > 0:
            return _error_reply(wire, dns.rcode.Rcode.BADVERS, query, tcp=tcp)
        if query.had_tsig:
            # Signed queries belong to transfers and UPDATE, which check keys; not yet here.
            return _error_reply(wire, dns.rcode.Rcode.REFUSED, query, tcp=tcp)
        rrset = query.question[0]
        name = cast(bytes, rrset.name.to_wire())  # without a file it returns the bytes
        q = _Question(
            ident=query.id,
            flags=query.flags,
            question=name + _TYPE_CLASS.pack(rrset.rdtype, rrset.rdclass),
            name_length=len(name),
            edns_payload=query.payload if query.edns == 0 else None,
        )
        return self._reply(q, tcp=tcp)


# Answer types whose record data holds no names, so no compression can apply to them.
_FLAT_TYPES = frozenset(
    {dns.rdatatype.RdataType.A, dns.rdatatype.RdataType.AAAA, dns.rdatatype.RdataType.TXT}
)
_ANSWER_RR = struct.Struct("!HHHLH")  # owner pointer, type, class, TTL, rdata length
_QUESTION_POINTER = 0xC00C  # the question's name, right after the 12-byte header


def _render_direct(resolution: Resolution, *, edns: bool) -> _Prepared | None:
    """The common answer (a host's own A, AAAA or TXT) in wire format without dnspython.

    Its owner is the question name, so each record points back at it; anything else
    (negative answers, CNAME chains, names inside record data) goes through dnspython.
    """
    if not resolution.local or len(resolution.answer) != 1 or resolution.authority:
        return None
    rrset = resolution.answer[0]
    if rrset.rdtype not in _FLAT_TYPES:
        return None
    parts = []
    for rdata in rrset:
        data = cast(bytes, rdata.to_wire())
        parts.append(
            _ANSWER_RR.pack(_QUESTION_POINTER, rrset.rdtype, rrset.rdclass, rrset.ttl, len(data))
            + data
        )
    tail = b"".join(parts) + (_OUR_OPT if edns else b"")
    if len(tail) > MAX_TCP_MESSAGE:
        return None  # let dnspython decide how it fails
    counts = struct.pack("!HHHH", 1, len(parts), 0, 1 if edns else 0)
    return _Prepared(_QR | _AA, counts, tail)


def resolve(
    index: ZoneIndex,
    qname: dns.name.Name,
    qtype: dns.rdatatype.RdataType,
    qclass: dns.rdataclass.RdataClass,
) -> Resolution:
    """Look one question up in the zones (RFC 1034 4.3.2 without delegations)."""
    if qclass not in _ANSWERABLE_CLASSES:
        return Resolution(dns.rcode.Rcode.REFUSED)
    zone = index.find(qname)
    if zone is None:
        return Resolution(dns.rcode.Rcode.REFUSED)  # not ours, and we are not a resolver
    meta_rcode = _METATYPE_RCODES.get(qtype)
    if meta_rcode is not None:
        return Resolution(meta_rcode)
    existing = zone.names
    result = Resolution(dns.rcode.Rcode.NOERROR, authoritative=True, zone=zone.origin)
    name = qname
    seen = {qname}
    for _ in range(CNAME_CHAIN_LIMIT):
        node = _node(zone, name, existing)
        if node is None:
            result.rcode = dns.rcode.Rcode.NXDOMAIN  # RFC 6604: the rcode of the last name
            result.authority.append(_negative_soa(zone))
            return result
        if qtype == dns.rdatatype.RdataType.ANY:
            chosen = _minimal_any(node)
            if chosen is None:
                result.authority.append(_negative_soa(zone))
            else:
                result.answer.append(_owned_by(chosen, name))
                result.local = _own_node(zone, qname, name, node)
            return result
        rrset = node.get(qtype)
        if rrset is not None:
            result.answer.append(_owned_by(rrset, name))
            result.local = _own_node(zone, qname, name, node)
            return result
        cname = node.get(dns.rdatatype.RdataType.CNAME)
        if cname is None:
            result.authority.append(_negative_soa(zone))  # NODATA
            return result
        result.answer.append(_owned_by(cname, name))
        target = _cname_target(cname)
        if target in seen or not target.is_subdomain(zone.origin):
            # A loop, or another zone's name: the client's resolver carries on from here.
            return result
        seen.add(target)
        name = target
    return result


def _own_node(
    zone: ZoneData,
    qname: dns.name.Name,
    name: dns.name.Name,
    node: dict[dns.rdatatype.RdataType, dns.rrset.RRset],
) -> bool:
    """The answer came straight from the question name's stored RRsets (see Resolution.local)."""
    return name == qname and name != zone.origin and zone.nodes.get(name) is node


def _node(
    zone: ZoneData, name: dns.name.Name, existing: Container[dns.name.Name]
) -> dict[dns.rdatatype.RdataType, dns.rrset.RRset] | None:
    """The RRsets at `name` (empty for an empty non-terminal), or None when it does not exist.

    `existing` holds the owners, their ancestors (the empty non-terminals, which answer
    NODATA rather than NXDOMAIN, RFC 8020, and stop wildcards below them, RFC 4592) and
    the apex.
    """
    if name == zone.origin:
        apex = dict(zone.nodes.get(name, {}))
        apex[dns.rdatatype.RdataType.SOA] = zone.soa()  # the serial lives outside the nodes
        return apex
    node = zone.nodes.get(name)
    if node is not None:
        return node
    if name in existing:
        return {}
    # RFC 4592: a wildcard at the closest encloser answers for names that do not exist.
    encloser = name.parent()
    while encloser not in existing:
        encloser = encloser.parent()
    return zone.nodes.get(dns.name.Name((b"*",) + encloser.labels))


def _minimal_any(
    node: dict[dns.rdatatype.RdataType, dns.rrset.RRset],
) -> dns.rrset.RRset | None:
    """RFC 8482: ANY gets one RRset, the one with the lowest type number (stable)."""
    if not node:
        return None
    return node[min(node)]


def _owned_by(rrset: dns.rrset.RRset, name: dns.name.Name) -> dns.rrset.RRset:
    """`rrset` under owner `name`; a copy only when a wildcard synthesises it."""
    if rrset.name == name:
        return rrset
    return dns.rrset.from_rdata_list(name, rrset.ttl, list(rrset))


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


def _size_limit(edns_payload: int | None, *, tcp: bool) -> int:
    """The largest response the client can take: RFC 1035 4.2.1, RFC 6891 6.2.5."""
    if tcp:
        return MAX_TCP_MESSAGE
    if edns_payload is None:
        return MIN_UDP_PAYLOAD
    return min(max(edns_payload, MIN_UDP_PAYLOAD), OUR_UDP_PAYLOAD)


def _parse_plain_query(wire: bytes) -> _Question | None:
    """Read a plain QUERY by hand; None sends anything else down the dnspython path.

    Plain means: QR=0, opcode QUERY, one question with an uncompressed name, no answer
    or authority records, and at most one additional record which is a well-formed
    EDNS version 0 OPT, with nothing after it.
    """
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if flags & _OPCODE_MASK or qdcount != 1 or ancount or nscount or arcount > 1:
        return None
    end = len(wire)
    pos = 12
    while True:
        if pos >= end:
            return None
        length = wire[pos]
        if length == 0:
            break
        if length > 63:
            return None  # a compression pointer or an obsolete label type
        pos += length + 1
    pos += 1
    name_length = pos - 12
    if name_length > 255 or pos + 4 > end:
        return None
    pos += 4
    question = wire[12:pos]
    if arcount == 0:
        return _Question(ident, flags, question, name_length, None) if pos == end else None
    if end - pos < 11 or wire[pos] != 0:
        return None
    rtype, payload, _, version, _, rdlength = _OPT_FIXED.unpack_from(wire, pos + 1)
    pos += 11
    if rtype != _OPT_TYPE or version != 0 or pos + rdlength != end:
        return None
    while pos < end:  # options are ignored, but must be well-formed TLVs
        if end - pos < 4:
            return None
        pos += 4 + _OPTION.unpack_from(wire, pos)[1]
    if pos != end:
        return None
    return _Question(ident, flags, question, name_length, payload)


def _header_reply(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A response made of the header alone, for when nothing else can be trusted."""
    ident, flags = _ID_FLAGS.unpack_from(wire)
    flags = _QR | (flags & (_OPCODE_MASK | _COPIED_FLAGS)) | (int(rcode) & 0xF)
    return _HEADER.pack(ident, flags, 0, 0, 0, 0)


def _error_reply(
    wire: bytes, rcode: dns.rcode.Rcode, query: dns.message.Message | None, *, tcp: bool
) -> bytes:
    """An error response echoing the question (and EDNS) when they can be read."""
    if query is None or query.had_tsig:
        try:
            query = dns.message.from_wire(wire, question_only=True)
        except Exception:
            return _header_reply(wire, rcode)
    response = dns.message.make_response(query, our_payload=OUR_UDP_PAYLOAD)
    response.flags |= query.flags & _COPIED_FLAGS
    response.set_rcode(rcode)
    limit = _size_limit(query.payload if query.edns >= 0 else None, tcp=tcp)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        return _header_reply(wire, rcode)
