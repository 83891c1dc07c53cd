"""Sans-I/O authoritative answers: DNS query bytes in, response bytes (or nothing) out.

The hot path avoids dnspython: a plain query (homing.dns.wire) is read by hand, its
lower-cased name is sliced into the key of the zone index, and the response is the header,
the client's own question bytes (so its letter case is echoed) and the RRset's records as
the index keeps them, owners pointing back at the question. Negative answers carry the
zone's SOA record, owner a pointer to the apex's place in the question.

A positive answer at an owner sent over UDP is also kept whole (homing.dns.replies), and
the same query again, its name in any letter case, is answered from it with the new ID.

The OPT record of an answer echoes the query's DO bit (RFC 3225). A query carrying a
DNS cookie gets its answer with a fresh server cookie (homing.dns.cookies); such an
answer is this client's alone and is never kept.

The rest (the apex, CNAME chains, ANY, other classes, meta types) is resolved with
dnspython objects made from the index (homing.dns.resolution), rendered by dnspython,
and kept until the zone changes; anything unusual on the wire goes through dnspython's
parser and the error ladder of dnspython's tests/nanonameserver.py.
"""

from __future__ import annotations

import logging
import struct
import weakref
from typing import cast

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from homing.dns.chaos import ServerIdentity
from homing.dns.cookies import CookieError, ServerCookies, find_cookie, split_cookie, with_option
from homing.dns.denial import denial
from homing.dns.ednsopt import EDE_NOT_AUTHORITATIVE, NSID, add_options, find_option, with_ede
from homing.dns.index import Node, ZoneData, ZoneIndex
from homing.dns.prepare import prepare
from homing.dns.replies import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_REPLY_CACHE_SIZE,
    Kept,
    KeptAnswers,
    Prepared,
    kept_reply,
)
from homing.dns.resolution import METATYPE_RCODES, Resolution, resolve
from homing.dns.signed import covering, secure, signed
from homing.dns.wire import (
    AA,
    COPIED_FLAGS,
    DO,
    HEADER,
    ID_FLAGS,
    MAX_TCP_MESSAGE,
    MIN_UDP_PAYLOAD,
    OUR_OPT,
    OUR_OPT_DO,
    OUR_UDP_PAYLOAD,
    QR,
    TYPE_CLASS,
    Question,
    error_reply,
    header_reply,
    opt_for,
    respond,
    scan_plain_query,
    size_limit,
    truncated,
)

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

# Opcodes other than QUERY; anything not listed is NOTIMP.
_OPCODE_RCODES: dict[int, dns.rcode.Rcode] = {
    dns.opcode.Opcode.UPDATE: dns.rcode.Rcode.REFUSED,  # RFC 2136 comes later, behind TSIG
    dns.opcode.Opcode.NOTIFY: dns.rcode.Rcode.NOTIMP,  # without a dispatcher: no secondary zones
}

_IN = int(dns.rdataclass.RdataClass.IN)
_CH = int(dns.rdataclass.RdataClass.CH)
_CNAME = int(dns.rdatatype.RdataType.CNAME)
_NOERROR = int(dns.rcode.Rcode.NOERROR)
_NXDOMAIN = int(dns.rcode.Rcode.NXDOMAIN)
_REFUSED = int(dns.rcode.Rcode.REFUSED)
# Type 0 is reserved (RFC 6895 3.1), no type one can ask for: NOTIMP whatever the name
# and class, as Knot answers it.
_RESERVED_TYPE = 0
# Types the hot path leaves to resolve(): ANY (RFC 8482), the meta types with their rcodes,
# and the types whose answers carry their targets' addresses (homing.dns.additional).
_SLOW_TYPES = frozenset(
    {
        _RESERVED_TYPE,
        *map(int, METATYPE_RCODES),
        *(int(dns.rdatatype.RdataType.make(t)) for t in ("ANY", "NS", "MX", "SRV")),
    }
)
# Our OPT record for REFUSED outside our zones, with EDE 20 (RFC 8914 4.21), by our plain one.
_REFUSED_OPT = {opt: with_ede(opt, EDE_NOT_AUTHORITATIVE) for opt in (b"", OUR_OPT, OUR_OPT_DO)}
_POINTER = struct.Struct("!H")

# One responder (and its kept answers) per index, for answer().
_responders: weakref.WeakKeyDictionary[ZoneIndex, Responder] = weakref.WeakKeyDictionary()


def answer(wire: bytes, index: ZoneIndex, *, tcp: bool) -> bytes | None:
    """The response to one DNS message from `index`, or None when it must be dropped: a
    one-call form of Responder.answer for tools and tests, without cookies."""
    responder = _responders.get(index)
    if responder is None:
        responder = _responders[index] = Responder(index)
    return responder.answer(wire, tcp=tcp)


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
        identity: ServerIdentity | None = None,
    ) -> None:
        self.index = index
        # DNS Cookies (RFC 7873): None answers as if they did not exist.
        self.cookies = cookies
        # What the server says about itself (CHAOS, NSID): nothing unless the operator set it.
        self.identity = identity or ServerIdentity()
        self._kept = KeptAnswers(index, cache_size=cache_size, reply_cache_size=reply_cache_size)

    def answer(self, wire: bytes, *, tcp: bool, client: bytes = b"") -> bytes | None:
        """The response to one DNS message, or None when it must be dropped.

        `client` is the sender's address (4 or 16 bytes), for DNS Cookies; b"": unknown.
        """
        if not tcp:
            kept = kept_reply(self.udp_replies(), wire)
            if kept is not None:
                return kept
        return self.compute(wire, tcp=tcp, client=client)

    def udp_replies(self) -> dict[bytes, Kept]:
        """Replies kept for plain UDP queries, which `replies.kept_reply` looks up. Current until
        the index changes: ask again after anything else has run (the UDP server asks
        once per readiness callback)."""
        kept = self._kept
        if kept.generation != self.index.generation:
            kept.catch_up()
        return kept.replies.entries

    def compute(self, wire: bytes, *, tcp: bool, client: bytes = b"") -> bytes | None:
        """The response worked out from the index, without looking at the replies kept
        (a positive answer over UDP is kept for next time, unless it carries a cookie)."""
        if len(wire) < 12:
            return None  # not even a header to answer to
        if wire[2] & 0x80:
            return None  # QR set: a response; answering it could start a loop between servers
        try:
            scanned = scan_plain_query(wire)
            if scanned is None:
                return self._answer_unusual(wire, tcp=tcp, client=client)
            end, payload, opt, options = scanned
            if options:
                return self._with_options(wire, end, payload, opt, options, tcp, client)
            return self._plain(wire, end, payload, opt, tcp=tcp, keep=not tcp)
        except Exception:
            # Our bug, not the client's: say so with SERVFAIL, keep serving.
            logger.exception("failed to answer DNS message %s", wire[:512].hex())
            return header_reply(wire, dns.rcode.Rcode.SERVFAIL)

    def _with_options(
        self,
        wire: bytes,
        end: int,
        payload: int | None,
        opt: bytes,
        options: int,
        tcp: bool,
        client: bytes,
    ) -> bytes:
        """A plain query with EDNS options: a cookie gets ours, NSID our identifier, when
        those are on; such answers are never kept. Any other option is ignored."""
        nsid = self.identity.nsid_option
        if nsid and find_option(wire, options, NSID) is None:
            nsid = b""
        cookie = None if self.cookies is None else find_cookie(wire, options)
        if cookie is not None and client:
            reply = self._with_cookie(wire, end, payload, opt, cookie, tcp, client)
        else:
            # Without an address to make a cookie for, answered without one and never
            # kept, so the same bytes from a client whose address we know get theirs.
            keep = not tcp and cookie is None and not nsid
            reply = self._plain(wire, end, payload, opt, tcp=tcp, keep=keep)
        if not nsid:
            return reply
        return add_options(reply, nsid, wire[12:end], size_limit(payload, tcp=tcp))

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
            return error_reply(wire, dns.rcode.Rcode.FORMERR, None, tcp=tcp)
        reply = self._plain(wire, end, payload, opt, tcp=tcp)
        option = self.cookies.option(client_cookie, client)
        return with_option(reply, option, wire[12:end], size_limit(payload, tcp=tcp))

    def proven(self, wire: bytes, client: bytes) -> bool:
        """Whether a plain query shows a server cookie we gave `client`: its address is real."""
        if self.cookies is None or len(wire) < 12 or wire[2] & 0x80:
            return False
        scanned = scan_plain_query(wire)
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
        scanned = scan_plain_query(wire)
        if scanned is None:
            return None
        end, _, opt, options = scanned
        ident, flags = ID_FLAGS.unpack_from(wire)
        reply = truncated(ident, QR | (flags & COPIED_FLAGS), wire[12:end], opt)
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
        """The answer to a plain query whose question ends at `end` (see scan_plain_query);
        `keep`: a positive answer at an owner is kept as the reply to these very bytes."""
        qtype, qclass = TYPE_CLASS.unpack_from(wire, end - 4)
        name = wire[12 : end - 4].lower()
        if qclass == _IN and qtype not in _SLOW_TYPES:
            # The closest enclosing zone: the longest suffix of the name that is an apex.
            zones = self.index.by_wire
            apex = 0
            while (zone := zones.get(name[apex:] if apex else name)) is None:
                length = name[apex]
                if not length:  # not ours, and we are not a resolver
                    refused = _REFUSED_OPT.get(opt, opt)
                    return respond(wire, end, payload, refused, _REFUSED, 0, 0, b"", tcp=tcp)
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
                # A signed zone's answers with DO carry RRSIGs: an RRset's own, and the
                # NSEC3 proofs of what does not exist (homing.dns.denial).
                sign = opt is OUR_OPT_DO and signed(zone)
                if node is not None:
                    for i in range(0, len(node), 3):  # mostly the first RRset
                        if node[i] == qtype:
                            count, records = node[i + 1], node[i + 2]
                            if sign:
                                extra, sigs = covering(node, qtype, records)
                                count, records = count + extra, records + sigs
                            reply = respond(wire, end, payload, opt, AA, count, 0, records, tcp=tcp)
                            if keep:  # depends on this owner's RRsets alone
                                self._kept.keep_reply(wire, reply, name)
                            return reply
                if sign:
                    direct = denial(zone, node, name, apex, end, qtype)
                else:
                    direct = _direct(zone, node, key, apex, qtype)
                if direct is not None:
                    reply = respond(wire, end, payload, opt, *direct, tcp=tcp)
                    # NODATA at an owner: filed by zone (it carries the SOA). Not a wildcard's
                    # answers, nor NXDOMAIN: random names would crowd out the owners' replies
                    # (homing.dns.denial keeps those apart).
                    if keep and sign and node is not None and direct[0] == _NOERROR | AA:
                        self._kept.keep_reply(wire, reply, name, zone.wire)
                    return reply
        ident, flags = ID_FLAGS.unpack_from(wire)
        q = Question(ident, flags, wire[12:end], end - 16, payload, opt)
        return self._cached(q, name, tcp=tcp)

    # --- the slow path, cached -----------------------------------------------------------

    def _cached(self, q: Question, name: bytes, *, tcp: bool) -> bytes:
        kept = self._kept
        if kept.generation != self.index.generation:
            kept.catch_up()
        # The name is self-delimiting (it ends in the root label) and the type and class
        # are four bytes, so plain concatenation with our OPT is an unambiguous key.
        key = name + q.question[q.name_length :] + q.opt
        prepared = kept.prepared.entries.get(key)
        if prepared is None:
            prepared, resolution = self._prepare(name, q)
            # Without a zone: REFUSED outside our zones; only a zone coming or going
            # changes that, and that clears everything.
            zone = resolution.zone
            origin = None if zone is None else zone.canonicalize().to_wire() or b""
            kept.prepared.put(key, prepared, origin)
        return prepared.render(q, size_limit(q.edns_payload, tcp=tcp))

    def _prepare(self, lowered_name: bytes, q: Question) -> tuple[Prepared, Resolution]:
        qname, _ = dns.name.from_wire(lowered_name, 0)
        qtype, qclass = TYPE_CLASS.unpack_from(q.question, q.name_length)
        rdtype = dns.rdatatype.RdataType.make(qtype)
        if qtype == _RESERVED_TYPE:
            resolution = Resolution(dns.rcode.Rcode.NOTIMP)
        elif qclass == _CH:
            resolution = self.identity.chaos(qname, rdtype)
        else:
            resolution = resolve(self.index, qname, rdtype, dns.rdataclass.RdataClass.make(qclass))
        if q.opt is OUR_OPT_DO and resolution.zone is not None:
            zone = self.index.zones.get(resolution.zone)
            if zone is not None and signed(zone):
                secure(zone, resolution, qname)
        return prepare(resolution, qname, qtype, qclass, q.opt), resolution

    def _answer_unusual(self, wire: bytes, *, tcp: bool, client: bytes = b"") -> bytes | None:
        """The slow path: dnspython parses, and every error gets its rcode."""
        opcode = (wire[2] >> 3) & 0xF
        if opcode != dns.opcode.Opcode.QUERY:
            rcode = _OPCODE_RCODES.get(opcode, dns.rcode.Rcode.NOTIMP)
            try:  # read whole, so an OPT record in it gets ours back (RFC 6891 7)
                parsed = dns.message.from_wire(wire, keyring=False)
            except Exception:
                parsed = None  # the question alone, if even that can be read
            return error_reply(wire, rcode, parsed, tcp=tcp)
        try:
            # keyring=False parses a TSIG record without checking it; see below.
            query = dns.message.from_wire(wire, keyring=False)
        except dns.message.ShortHeader:
            return None
        except Exception:
            # The client's fault: anything dnspython cannot read is a format error.
            return error_reply(wire, dns.rcode.Rcode.FORMERR, None, tcp=tcp)
        cookie = None
        if self.cookies is not None and client:
            cookie = next((o for o in query.options if isinstance(o, dns.edns.CookieOption)), None)
        if not query.question and cookie is not None and not query.had_tsig:
            return self._cookie_only(query, cookie, client, tcp=tcp)
        if len(query.question) != 1:
            return error_reply(wire, dns.rcode.Rcode.FORMERR, query, tcp=tcp)
        if query.edns > 0:
            return error_reply(wire, dns.rcode.Rcode.BADVERS, query, tcp=tcp)
        if query.had_tsig:
            # Signed queries belong to transfers and UPDATE, which check keys; not yet here.
            return error_reply(wire, dns.rcode.Rcode.REFUSED, query, tcp=tcp)
        rrset = query.question[0]
        name = cast(bytes, rrset.name.to_wire())  # without a file it returns the bytes
        # Rewritten as the plain query it amounts to, so both paths answer alike.
        header = HEADER.pack(query.id, query.flags & 0xFFFF, 1, 0, 0, 0)
        plain = header + name + TYPE_CLASS.pack(rrset.rdtype, rrset.rdclass)
        payload = query.payload if query.edns == 0 else None
        reply = self._plain(
            plain, len(plain), payload, opt_for(query.edns, query.ednsflags), tcp=tcp
        )
        if cookie is None or self.cookies is None:
            return reply
        option = self.cookies.option(cookie.client, client)
        return with_option(reply, option, plain[12:], size_limit(payload, tcp=tcp))

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
            query.ednsflags & DO,
            OUR_UDP_PAYLOAD,
            options=[dns.edns.CookieOption(cookie.client, fresh)],
        )
        if cookie.server and not self.cookies.valid(cookie.client, cookie.server, client):
            response.set_rcode(dns.rcode.Rcode.BADCOOKIE)
        return response.to_wire(max_size=size_limit(query.payload, tcp=tcp))


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
            return _NXDOMAIN | AA, 0, 1, _POINTER.pack(0xC00C + apex) + zone.negative_record()
    cname = False
    for i in range(0, len(node), 3):
        rdtype = node[i]
        if rdtype == qtype:
            return AA, node[i + 1], 0, node[i + 2]
        cname = cname or rdtype == _CNAME
    if cname:
        return None
    return _NOERROR | AA, 0, 1, _POINTER.pack(0xC00C + apex) + zone.negative_record()
