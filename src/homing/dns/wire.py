"""DNS messages read and written by hand: the plain query scanned without dnspython, the
answer assembled around the client's own question bytes, and the error replies.

A plain query is one question with an uncompressed name, no answer or authority records,
and at most one EDNS version 0 OPT record: what resolvers send. Anything else goes through
dnspython's parser and the error ladder of dnspython's tests/nanonameserver.py.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype

__all__ = [
    "AA",
    "COPIED_FLAGS",
    "COUNTS",
    "DO",
    "HEADER",
    "ID_FLAGS",
    "MAX_TCP_MESSAGE",
    "MIN_UDP_PAYLOAD",
    "OUR_OPT",
    "OUR_OPT_DO",
    "OUR_UDP_PAYLOAD",
    "QR",
    "TYPE_CLASS",
    "Question",
    "error_reply",
    "header_reply",
    "opt_for",
    "respond",
    "scan_plain_query",
    "size_limit",
    "truncated",
]

OUR_UDP_PAYLOAD = 1232  # the DNS Flag Day 2020 size: no IP fragmentation on common paths
MIN_UDP_PAYLOAD = 512  # RFC 1035, and the floor for smaller EDNS payloads (RFC 6891 6.2.5)
MAX_TCP_MESSAGE = 65535

HEADER = struct.Struct("!HHHHHH")
ID_FLAGS = struct.Struct("!HH")
TYPE_CLASS = struct.Struct("!HH")
COUNTS = struct.Struct("!HHHH")
_OPT_FIXED = struct.Struct("!HHBBHH")  # type, payload, extended rcode, version, flags, rdlength
_OPTION = struct.Struct("!HH")

QR = int(dns.flags.Flag.QR)
AA = int(dns.flags.Flag.AA)
_TC = int(dns.flags.Flag.TC)
# RD and CD are the client's to set and are echoed; RA and AD stay 0 (not a resolver).
COPIED_FLAGS = int(dns.flags.Flag.RD | dns.flags.Flag.CD)
# Error answers to what may not be a query at all echo RD alone (RFC 1035 4.1.1): CD
# means something only in a query we answer (RFC 4035 3.1.6).
_ERROR_FLAGS = int(dns.flags.Flag.RD)
_OPCODE_MASK = 0x7800
_OPT_TYPE = int(dns.rdatatype.RdataType.OPT)
DO = int(dns.flags.EDNSFlag.DO)

# Our OPT record: root owner, payload 1232, extended rcode 0, version 0, no flags, no options;
# and the same with DO, for queries that set it (RFC 3225 3: DO is echoed).
OUR_OPT = b"\x00" + _OPT_FIXED.pack(_OPT_TYPE, OUR_UDP_PAYLOAD, 0, 0, 0, 0)
OUR_OPT_DO = b"\x00" + _OPT_FIXED.pack(_OPT_TYPE, OUR_UDP_PAYLOAD, 0, 0, DO, 0)


class Question(NamedTuple):
    """A query reduced to what the answer depends on."""

    ident: int
    flags: int
    question: bytes  # the question section exactly as the client sent it, uncompressed
    name_length: int  # bytes of `question` that are the name
    edns_payload: int | None  # None without an OPT record
    opt: bytes  # our OPT record for the answer (b"" without EDNS)


def opt_for(edns: int, ednsflags: int) -> bytes:
    """Our OPT record for a query of this EDNS version (-1: none) and flags."""
    if edns < 0:
        return b""
    return OUR_OPT_DO if ednsflags & DO else OUR_OPT


def scan_plain_query(wire: bytes) -> tuple[int, int | None, bytes, int] | None:
    """Read a plain QUERY by hand: (end of its question, EDNS payload or None, our OPT
    record for the answer, where the EDNS options start or 0 when it has none).

    None sends anything else down the dnspython path. Plain means: QR=0, opcode QUERY,
    one question with an uncompressed name, no answer or authority records, and at most
    one additional record which is a well-formed EDNS version 0 OPT, with nothing after it.
    """
    _, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(wire)
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
    opt = OUR_OPT_DO if ednsflags & DO else OUR_OPT
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


def respond(
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
    ident, query_flags = ID_FLAGS.unpack_from(wire)
    flags |= QR | (query_flags & COPIED_FLAGS)
    question = wire[12:end]
    if end + len(records) + len(opt) > (
        MAX_TCP_MESSAGE
        if tcp
        else MIN_UDP_PAYLOAD
        if payload is None
        else size_limit(payload, tcp=False)
    ):
        return truncated(ident, flags, question, opt)
    return (
        ID_FLAGS.pack(ident, flags)
        + COUNTS.pack(1, ancount, nscount, 1 if opt else 0)
        + question
        + records
        + opt
    )


def truncated(ident: int, flags: int, question: bytes, opt: bytes) -> bytes:
    """The question alone with TC, so the client retries over TCP."""
    counts = COUNTS.pack(1, 0, 0, 1 if opt else 0)
    return ID_FLAGS.pack(ident, flags | _TC) + counts + question + opt


def size_limit(edns_payload: int | None, *, tcp: bool) -> int:
    """The largest response the client can take: RFC 1035 4.2.1, RFC 6891 6.2.5."""
    if tcp:
        return MAX_TCP_MESSAGE
    if edns_payload is None:
        return MIN_UDP_PAYLOAD
    return min(max(edns_payload, MIN_UDP_PAYLOAD), OUR_UDP_PAYLOAD)


def header_reply(wire: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """A response made of the header alone, for when nothing else can be trusted."""
    ident, flags = ID_FLAGS.unpack_from(wire)
    copied = _ERROR_FLAGS if not flags & _OPCODE_MASK else 0  # other opcodes' bits differ
    flags = QR | (flags & (_OPCODE_MASK | copied)) | (int(rcode) & 0xF)
    return HEADER.pack(ident, flags, 0, 0, 0, 0)


def error_reply(
    wire: bytes, rcode: dns.rcode.Rcode, query: dns.message.Message | None, *, tcp: bool
) -> bytes:
    """An error response echoing the question (and EDNS) when they can be read."""
    if query is None or query.had_tsig:
        try:
            query = dns.message.from_wire(wire, question_only=True)
        except Exception:
            return header_reply(wire, rcode)
    response = dns.message.make_response(query, our_payload=OUR_UDP_PAYLOAD)
    if query.opcode() == dns.opcode.Opcode.QUERY:
        response.flags |= query.flags & COPIED_FLAGS
    else:
        response.flags &= ~_ERROR_FLAGS  # other opcodes' bits mean other things
    if query.edns >= 0:
        response.ednsflags |= query.ednsflags & DO
    response.set_rcode(rcode)
    limit = size_limit(query.payload if query.edns >= 0 else None, tcp=tcp)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        return header_reply(wire, rcode)
