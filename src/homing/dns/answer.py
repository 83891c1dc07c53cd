"""Sans-I/O authoritative answers: DNS query bytes in, response bytes (or nothing) out.

The hot path avoids dnspython: a plain query (one question, at most one OPT record) is
read by hand, its lower-cased name is sliced into the key of the zone index, and the
response is the header, the client's own question bytes (so its letter case is echoed)
and the RRset's records as the index keeps them, owners pointing back at the question.
Negative answers carry the zone's SOA record, owner a pointer to the apex's place in the
question.

A positive answer at an owner sent over UDP is also kept whole, keyed by the query's bytes
after its ID: the same bytes again (a resolver asking the same question, with the same
flags, case and EDNS options) are answered with one dictionary lookup and the new ID,
as PowerDNS's packet cache does. A kept reply is filed under its owner's name and
forgotten when the journal changes that owner, so it is never staler than the index.

The OPT record of an answer echoes the query's DO bit (RFC 3225). A query carrying a
DNS cookie gets its answer with a fresh server cookie (homing.dns.cookies); such an
answer is this client's alone and is never kept.

The rest (the apex, CNAME chains, ANY, other classes, meta types) is resolved with
dnspython objects made from the index (homing.dns.resolution), rendered by dnspython,
and cached until the zone changes; anything unusual on the wire goes through
dnspython's parser and the error ladder of dnspython's tests/nanonameserver.py.
"""

from __future__ import annotations

import itertools
import logging
import struct
import weakref
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar, cast

import dns.edns
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

from homing.dns.cookies import CookieError, ServerCookies, find_cookie, split_cookie, with_option
from homing.dns.index import Node, ZoneData, ZoneIndex
from homing.dns.resolution import METATYPE_RCODES, Resolution, resolve

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
# Prepared answers kept; at about 400 bytes each this bounds the cache near 160 MB even
# under a flood of random names. A zone's whole query mix should fit (see benchmarks).
DEFAULT_CACHE_SIZE = 400_000
# Whole UDP replies kept (about 350 bytes each with their filing: some 45 MB when full);
# the positive answers of a 100,000-host zone's query mix fit (see benchmarks).
DEFAULT_REPLY_CACHE_SIZE = 131_072
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
# Error answers to what may not be a query at all echo RD alone (RFC 1035 4.1.1): CD
# means something only in a query we answer (RFC 4035 3.1.6).
_ERROR_FLAGS = int(dns.flags.Flag.RD)
_OPCODE_MASK = 0x7800
_OPT_TYPE = int(dns.rdatatype.RdataType.OPT)
_DO = int(dns.flags.EDNSFlag.DO)

# Our OPT record: root owner, payload 1232, extended rcode 0, version 0, no flags, no options;
# and the same with DO, for queries that set it (RFC 3225 3: DO is echoed).
_OUR_OPT = b"\x00" + _OPT_FIXED.pack(_OPT_TYPE, OUR_UDP_PAYLOAD, 0, 0, 0, 0)
_OUR_OPT_DO = b"\x00" + _OPT_FIXED.pack(_OPT_TYPE, OUR_UDP_PAYLOAD, 0, 0, _DO, 0)

# Opcodes other than QUERY; anything not listed is NOTIMP.
_OPCODE_RCODES: dict[int, dns.rcode.Rcode] = {
    dns.opcode.Opcode.UPDATE: dns.rcode.Rcode.REFUSED,  # RFC 2136 comes later, behind TSIG
    dns.opcode.Opcode.NOTIFY: dns.rcode.Rcode.NOTIMP,  # without a dispatcher: no secondary zones
}

# One responder (and its cache) per index, so answer() stays a plain function.
_responders: weakref.WeakKeyDictionary[ZoneIndex, Responder] = weakref.WeakKeyDictionary()


def answer(wire: bytes, index: ZoneIndex, *, tcp: bool) -> bytes | None:
    """The response to one DNS message, or None when it must be dropped."""
    responder = _responders.get(index)
    if responder is None:
        responder = _responders[index] = Responder(index)
    return responder.answer(wire, tcp=tcp)


def _opt_for(edns: int, ednsflags: int) -> bytes:
    """Our OPT record for a query of this EDNS version (-1: none) and flags."""
    if edns < 0:
        return b""
    return _OUR_OPT_DO if ednsflags & _DO else _OUR_OPT


class _Question(NamedTuple):
    """A query reduced to what the answer depends on."""

    ident: int
    flags: int
    question: bytes  # the question section exactly as the client sent it, uncompressed
    name_length: int  # bytes of `question` that are the name
    edns_payload: int | None  # None without an OPT record
    opt: bytes  # our OPT record for the answer (b"" without EDNS)


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
        return _truncated(q.ident, flags, q.question, q.opt)


V = TypeVar("V")


class _Filed(Generic[V]):
    """A bounded cache whose keys are filed under groups (a zone, an owner), so that a
    change forgets its group's keys and nothing else; when full, the oldest entries go."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: dict[bytes, V] = {}
        self._groups: dict[bytes, list[bytes]] = {}
        self._filed = 0  # keys filed since the groups were last emptied

    def put(self, key: bytes, value: V, group: bytes | None) -> None:
        """Keep `value`; filed under `group`, or under none (only clear() forgets it)."""
        if len(self.entries) >= self.size:
            self._evict()
        self.entries[key] = value
        if group is not None:
            self._groups.setdefault(group, []).append(key)
            self._filed += 1

    def forget(self, group: bytes) -> None:
        for key in self._groups.pop(group, ()):
            self.entries.pop(key, None)

    def clear(self) -> None:
        self.entries.clear()  # in place: a caller may hold the dict (Responder.udp_replies)
        self._groups.clear()
        self._filed = 0

    def _evict(self) -> None:
        """Drop the entries kept longest ago (an evicted hot one is soon kept again).

        The groups may still hold evicted keys (forgetting them is a no-op); once they
        hold far more keys than the cache, everything starts over.
        """
        if self._filed > 4 * self.size:
            self.clear()
            return
        for key in list(itertools.islice(self.entries, max(1, self.size // _EVICT_FRACTION))):
            del self.entries[key]


class Responder:
    """Answers queries from one zone index; the rare answers dnspython renders are cached,
    and so are whole positive replies over UDP (see the module's docstring)."""

    def __init__(
        self,
        index: ZoneIndex,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        reply_cache_size: int = DEFAULT_REPLY_CACHE_SIZE,
        cookies: ServerCookies | None = None,
    ) -> None:
        for setting, size in (("cache_size", cache_size), ("reply_cache_size", reply_cache_size)):
            if size < 1:
                raise ValueError(f"{setting} must be at least 1, not {size}")
        self.index = index
        # DNS Cookies (RFC 7873): None answers as if they did not exist.
        self.cookies = cookies
        # The slow path's answers, filed by zone (wire origin): the apex's SOA is in them.
        self._prepared: _Filed[_Prepared] = _Filed(cache_size)
        # Whole UDP replies without their ID, by the query after its ID; filed by owner name.
        self._replies: _Filed[bytes] = _Filed(reply_cache_size)
        self._generation = index.generation  # the index as both caches last saw it

    def answer(self, wire: bytes, *, tcp: bool, client: bytes = b"") -> bytes | None:
        """The response to one DNS message, or None when it must be dropped.

        `client` is the sender's address (4 or 16 bytes), for DNS Cookies; b"": unknown.
        """
        if not tcp:
            kept = self.udp_replies().get(wire[2:])
            if kept is not None:
                return wire[:2] + kept
        return self.compute(wire, tcp=tcp, client=client)

    def udp_replies(self) -> dict[bytes, bytes]:
        """Replies kept for plain UDP queries: `wire[:2] + replies[wire[2:]]` answers the
        query `wire` when its key is there. Current until the index changes: ask again
        after anything else has run (the UDP server asks once per readiness callback)."""
        if self._generation != self.index.generation:
            self._catch_up()
        return self._replies.entries

    def compute(self, wire: bytes, *, tcp: bool, client: bytes = b"") -> bytes | None:
        """The response worked out from the index, without looking at the replies kept
        (a positive answer over UDP is kept for next time, unless it carries a cookie)."""
        if len(wire) < 12:
            return None  # not even a header to answer to
        if wire[2] & 0x80:
            return None  # QR set: a response; answering it could start a loop between servers
        try:
            scanned = _scan_plain_query(wire)
            if scanned is None:
                return self._answer_unusual(wire, tcp=tcp, client=client)
            end, payload, opt, options = scanned
            if options and self.cookies is not None:
                cookie = find_cookie(wire, options)
                if cookie is not None:
                    if client:
                        return self._with_cookie(wire, end, payload, opt, cookie, tcp, client)
                    # No address to make a cookie for: answered, and never kept, so
                    # the same bytes from a client whose address we know get theirs.
                    return self._plain(wire, end, payload, opt, tcp=tcp)
            return self._plain(wire, end, payload, opt, tcp=tcp, keep=not tcp)
        except Exception:
            # Our bug, not the client's: say so with SERVFAIL, keep serving.
            logger.exception("failed to answer DNS message %s", wire[:512].hex())
            return _header_reply(wire, dns.rcode.Rcode.SERVFAIL)

    def _with_cookie(
        self,
        wire: bytes,
        end: int,
        payload: int | None,
        opt: bytes,
        cookie: bytes,
        tcp: bool,
        client: bytes,
    ) -> bytes:
        """A plain query's answer with a fresh server cookie (RFC 7873 5.2): whatever the
        server cookie it showed, it is answered. Never kept: the cookie is this client's."""
        assert self.cookies is not None
        try:
            client_cookie, _ = split_cookie(cookie)
        except CookieError:
            return _error_reply(wire, dns.rcode.Rcode.FORMERR, None, tcp=tcp)
        reply = self._plain(wire, end, payload, opt, tcp=tcp)
        option = self.cookies.option(client_cookie, client)
        return with_option(reply, option, wire[12:end], _size_limit(payload, tcp=tcp))

    def proven(self, wire: bytes, client: bytes) -> bool:
        """Whether a plain query shows a server cookie we gave `client`: its address is real."""
        if self.cookies is None or len(wire) < 12 or wire[2] & 0x80:
            return False
        scanned = _scan_plain_query(wire)
        if scanned is None or not scanned[3]:
            return False
        cookie = find_cookie(wire, scanned[3])
        if cookie is None:
            return False
        try:
            client_cookie, server_cookie = split_cookie(cookie)
        except CookieError:
            return False
        return bool(server_cookie) and self.cookies.valid(client_cookie, server_cookie, client)

    def truncated(self, wire: bytes, client: bytes) -> bytes | None:
        """An empty answer with TC to a plain query (rate limiting's slip), a fresh cookie
        in it when the query had one; None for anything else."""
        if len(wire) < 12 or wire[2] & 0x80:
            return None
        scanned = _scan_plain_query(wire)
        if scanned is None:
            return None
        end, _, opt, options = scanned
        ident, flags = _ID_FLAGS.unpack_from(wire)
        reply = _truncated(ident, _QR | (flags & _COPIED_FLAGS), wire[12:end], opt)
        if options and self.cookies is not None and client:
            cookie = find_cookie(wire, options)
            if cookie is not None:
                try:
                    client_cookie, _ = split_cookie(cookie)
                except CookieError:
                    return None
                option = self.cookies.option(client_cookie, client)
                return with_option(reply, option, wire[12:end], MAX_TCP_MESSAGE)
        return reply

    def _plain(
        self,
        wire: bytes,
        end: int,
        payload: int | None,
        opt: bytes,
        *,
        tcp: bool,
        keep: bool = False,
    ) -> bytes:
        """The answer to a plain query whose question ends at `end` (see _scan_plain_query);
        `keep`: a positive answer at an owner is kept as the reply to these very bytes."""
        qtype, qclass = _TYPE_CLASS.unpack_from(wire, end - 4)
        name = wire[12 : end - 4].lower()
        if qclass == _IN and qtype not in _SLOW_TYPES:
            # The closest enclosing zone: the longest suffix of the name that is an apex.
            zones = self.index.by_wire
            apex = 0
            while (zone := zones.get(name[apex:] if apex else name)) is None:
                length = name[apex]
                if not length:  # not ours, and we are not a resolver
                    return _respond(wire, end, payload, opt, _REFUSED, 0, 0, b"", tcp=tcp)
                apex += length + 1
            # The apex itself (SOA, NS, the serial) takes the slow path, and so do a
            # secondary zone without a usable copy (SERVFAIL, in resolve()) and names at
            # or below a zone cut (referrals, in resolve(), kept with the zone's answers).
            if (
                apex
                and not zone.meta.expired
                and not (zone.cuts and zone.cut_of(name[:apex]) is not None)
            ):
                key = name[:apex]
                node = zone.owners.get(key)
                if node is not None:
                    for i in range(0, len(node), 3):  # mostly the first RRset
                        if node[i] == qtype:
                            reply = _respond(
                                wire, end, payload, opt, _AA, node[i + 1], 0, node[i + 2], tcp=tcp
                            )
                            if keep:  # depends on this owner's RRsets alone
                                self._replies.put(wire[2:], reply[2:], name)
                            return reply
                direct = _direct(zone, node, key, apex, qtype)
                if direct is not None:
                    return _respond(wire, end, payload, opt, *direct, tcp=tcp)
        ident, flags = _ID_FLAGS.unpack_from(wire)
        q = _Question(ident, flags, wire[12:end], end - 16, payload, opt)
        return self._cached(q, name, tcp=tcp)

    # --- the slow path, cached -----------------------------------------------------------

    def _cached(self, q: _Question, name: bytes, *, tcp: bool) -> bytes:
        if self._generation != self.index.generation:
            self._catch_up()
        # The name is self-delimiting (it ends in the root label) and the type and class
        # are four bytes, so plain concatenation with our OPT is an unambiguous key.
        key = name + q.question[q.name_length :] + q.opt
        prepared = self._prepared.entries.get(key)
        if prepared is None:
            prepared, resolution = self._prepare(name, q)
            # Without a zone: REFUSED outside our zones; only a zone coming or going
            # changes that, and that clears everything.
            zone = resolution.zone
            origin = None if zone is None else zone.canonicalize().to_wire() or b""
            self._prepared.put(key, prepared, origin)
        return prepared.render(q, _size_limit(q.edns_payload, tcp=tcp))

    def _catch_up(self) -> None:
        """Forget what changed since our last look: the slow path's answers of every zone
        changed, the replies kept for every owner changed."""
        changes = self.index.changes_since(self._generation)
        self._generation = self.index.generation
        if changes is None:  # too many changes to tell
            self._forget_all()
            return
        origins: set[bytes] = set()
        names: list[bytes] = []  # owners' full names: how the replies are filed
        for origin, owner in changes:
            if owner is None:  # a zone came or went, or a zone cut did
                self._forget_all()
                return
            origins.add(origin)
            names.append(owner + origin)
        for origin in origins:
            self._prepared.forget(origin)
        for name in names:
            self._replies.forget(name)

    def _forget_all(self) -> None:
        self._prepared.clear()
        self._replies.clear()

    def _prepare(self, lowered_name: bytes, q: _Question) -> tuple[_Prepared, Resolution]:
        qname, _ = dns.name.from_wire(lowered_name, 0)
        qtype, qclass = _TYPE_CLASS.unpack_from(q.question, q.name_length)
        resolution = resolve(
            self.index,
            qname,
            dns.rdatatype.RdataType.make(qtype),
            dns.rdataclass.RdataClass.make(qclass),
        )
        message = dns.message.Message(id=0)
        message.flags = _QR | (_AA if resolution.authoritative else 0)
        message.set_rcode(resolution.rcode)
        message.question.append(dns.rrset.RRset(qname, qclass, qtype))
        message.answer.extend(resolution.answer)
        message.authority.extend(resolution.authority)
        message.additional.extend(resolution.additional)
        if q.opt:
            message.use_edns(0, _DO if q.opt is _OUR_OPT_DO else 0, OUR_UDP_PAYLOAD)
        question_end = 12 + len(q.question)
        try:
            wire = message.to_wire(max_size=MAX_TCP_MESSAGE)
        except dns.exception.TooBig:
            return _Prepared(message.flags, b"", b"", fits_tcp=False), resolution
        flags = _ID_FLAGS.unpack_from(wire)[1]
        return _Prepared(flags, wire[4:12], wire[question_end:]), resolution

    def _answer_unusual(self, wire: bytes, *, tcp: bool, client: bytes = b"") -> bytes | None:
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
        cookie = None
        if self.cookies is not None and client:
            cookie = next((o for o in query.options if isinstance(o, dns.edns.CookieOption)), None)
        if not query.question and cookie is not None and not query.had_tsig:
            return self._cookie_only(query, cookie, client, tcp=tcp)
        if len(query.question) != 1:
            return _error_reply(wire, dns.rcode.Rcode.FORMERR, query, tcp=tcp)
        if query.edns > 0:
            return _error_reply(wire, dns.rcode.Rcode.BADVERS, query, tcp=tcp)
        if query.had_tsig:
            # Signed queries belong to transfers and UPDATE, which check keys; not yet here.
            return _error_reply(wire, dns.rcode.Rcode.REFUSED, query, tcp=tcp)
        rrset = query.question[0]
        name = cast(bytes, rrset.name.to_wire())  # without a file it returns the bytes
        # Rewritten as the plain query it amounts to, so both paths answer alike.
        header = _HEADER.pack(query.id, query.flags & 0xFFFF, 1, 0, 0, 0)
        plain = header + name + _TYPE_CLASS.pack(rrset.rdtype, rrset.rdclass)
        payload = query.payload if query.edns == 0 else None
        reply = self._plain(
            plain, len(plain), payload, _opt_for(query.edns, query.ednsflags), tcp=tcp
        )
        if cookie is None or self.cookies is None:
            return reply
        option = self.cookies.option(cookie.client, client)
        return with_option(reply, option, plain[12:], _size_limit(payload, tcp=tcp))

    def _cookie_only(
        self, query: dns.message.Message, cookie: dns.edns.CookieOption, client: bytes, *, tcp: bool
    ) -> bytes:
        """RFC 7873 5.4: a query without a question asks for a server cookie. BADCOOKIE
        when it showed one that is not (or no longer) valid, so the client takes the new."""
        assert self.cookies is not None
        response = dns.message.make_response(query)
        fresh = self.cookies.make(cookie.client, client)
        response.use_edns(
            0,
            query.ednsflags & _DO,
            OUR_UDP_PAYLOAD,
            options=[dns.edns.CookieOption(cookie.client, fresh)],
        )
        if cookie.server and not self.cookies.valid(cookie.client, cookie.server, client):
            response.set_rcode(dns.rcode.Rcode.BADCOOKIE)
        return response.to_wire(max_size=_size_limit(query.payload, tcp=tcp))


# --- the hot path ------------------------------------------------------------------------

_IN = int(dns.rdataclass.RdataClass.IN)
_CNAME = int(dns.rdatatype.RdataType.CNAME)
_NOERROR = int(dns.rcode.Rcode.NOERROR)
_NXDOMAIN = int(dns.rcode.Rcode.NXDOMAIN)
_REFUSED = int(dns.rcode.Rcode.REFUSED)
# Types the hot path leaves to resolve(): ANY (RFC 8482) and the meta types with their rcodes.
_SLOW_TYPES = frozenset({int(dns.rdatatype.RdataType.ANY), *map(int, METATYPE_RCODES)})
_COUNTS = struct.Struct("!HHHH")
_POINTER = struct.Struct("!H")


def _direct(
    zone: ZoneData, node: Node | None, key: bytes, apex: int, qtype: int
) -> tuple[int, int, int, bytes] | None:
    """(rcode with AA, answer count, authority count, records) for a name below the apex,
    whose RRsets (`node`, None when it owns none) were looked up already.

    None when a CNAME at the name must be followed: resolve() does that.
    """
    if node is None:
        node = () if zone.exists(key) else zone.wildcard(key)
        if node is None:
            return _NXDOMAIN | _AA, 0, 1, _POINTER.pack(0xC00C + apex) + zone.negative_record()
    cname = False
    for i in range(0, len(node), 3):
        rdtype = node[i]
        if rdtype == qtype:
            return _AA, node[i + 1], 0, node[i + 2]
        cname = cname or rdtype == _CNAME
    if cname:
        return None
    return _NOERROR | _AA, 0, 1, _POINTER.pack(0xC00C + apex) + zone.negative_record()


def _respond(
    wire: bytes,
    end: int,
    payload: int | None,
    opt: bytes,
    flags: int,
    ancount: int,
    nscount: int,
    records: bytes,
    *,
    tcp: bool,
) -> bytes:
    """A response to the plain query `wire`: its ID, copied flags and question, then `records`.

    `flags` carry the rcode and AA; `opt` is our OPT record (b"" without EDNS); over the
    size limit, the question alone with TC.
    """
    ident, query_flags = _ID_FLAGS.unpack_from(wire)
    flags |= _QR | (query_flags & _COPIED_FLAGS)
    question = wire[12:end]
    if end + len(records) + len(opt) > (
        MAX_TCP_MESSAGE
        if tcp
        else MIN_UDP_PAYLOAD
        if payload is None
        else _size_limit(payload, tcp=False)
    ):
        return _truncated(ident, flags, question, opt)
    return (
        _ID_FLAGS.pack(ident, flags)
        + _COUNTS.pack(1, ancount, nscount, 1 if opt else 0)
        + question
        + records
        + opt
    )


def _truncated(ident: int, flags: int, question: bytes, opt: bytes) -> bytes:
    """The question alone with TC, so the client retries over TCP."""
    counts = _COUNTS.pack(1, 0, 0, 1 if opt else 0)
    return _ID_FLAGS.pack(ident, flags | _TC) + counts + question + opt


def _size_limit(edns_payload: int | None, *, tcp: bool) -> int:
    """The largest response the client can take: RFC 1035 4.2.1, RFC 6891 6.2.5."""
    if tcp:
        return MAX_TCP_MESSAGE
    if edns_payload is None:
        return MIN_UDP_PAYLOAD
    return min(max(edns_payload, MIN_UDP_PAYLOAD), OUR_UDP_PAYLOAD)


def _scan_plain_query(wire: bytes) -> tuple[int, int | None, bytes, int] | None:
    """Read a plain QUERY by hand: (end of its question, EDNS payload or None, our OPT
    record for the answer, where the EDNS options start or 0 when it has none).

    None sends anything else down the dnspython path. Plain means: QR=0, opcode QUERY,
    one question with an uncompressed name, no answer or authority records, and at most
    one additional record which is a well-formed EDNS version 0 OPT, with nothing after it.
    """
    _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
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
    if pos - 12 > 255 or pos + 4 > end:
        return None
    pos += 4
    if arcount == 0:
        return (pos, None, b"", 0) if pos == end else None
    question_end = pos
    if end - pos < 11 or wire[pos] != 0:
        return None
    rtype, payload, _, version, ednsflags, rdlength = _OPT_FIXED.unpack_from(wire, pos + 1)
    pos += 11
    if rtype != _OPT_TYPE or version != 0 or pos + rdlength != end:
        return None
    opt = _OUR_OPT_DO if ednsflags & _DO else _OUR_OPT
    if not rdlength:
        return question_end, payload, opt, 0
    options = pos
    while pos < end:  # options must be well-formed TLVs; only COOKIE is read
        if end - pos < 4:
            return None
        pos += 4 + _OPTION.unpack_from(wire, pos)[1]
    if pos != end:
        return None
    return question_end, payload, opt, options


def _header_reply(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A response made of the header alone, for when nothing else can be trusted."""
    ident, flags = _ID_FLAGS.unpack_from(wire)
    copied = _ERROR_FLAGS if not flags & _OPCODE_MASK else 0  # other opcodes' bits differ
    flags = _QR | (flags & (_OPCODE_MASK | copied)) | (int(rcode) & 0xF)
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
    if query.opcode() == dns.opcode.Opcode.QUERY:
        response.flags |= query.flags & _COPIED_FLAGS
    else:
        response.flags &= ~_ERROR_FLAGS  # other opcodes' bits mean other things
    if query.edns >= 0:
        response.ednsflags |= query.ednsflags & _DO
    response.set_rcode(rcode)
    limit = _size_limit(query.payload if query.edns >= 0 else None, tcp=tcp)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        return _header_reply(wire, rcode)
