"""What every reply of the DNS wire path must be, whatever the query was.

Each check raises AssertionError naming the query (hex) and what was wrong, so a
failure found by a million random packets can be replayed from its message alone.
"""

from __future__ import annotations

import struct

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.tsig

__all__ = ["Keyring", "check_tcp", "check_udp", "mac_verifies", "same_replies", "udp_limit"]

Keyring = dict[dns.name.Name, dns.tsig.Key]

MIN_UDP = 512  # RFC 1035 4.2.1: without EDNS
OUR_UDP = 1232  # the most homing sends over UDP, whatever the client offers
_OPT = 41


def _skip_name(wire: bytes, pos: int) -> int:
    """The offset after the (possibly compressed) name at `pos`; ValueError if malformed."""
    while True:
        if pos >= len(wire):
            raise ValueError("name runs off the end")
        length = wire[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length & 0xC0:
            raise ValueError("unknown label type")
        if not length:
            return pos + 1
        pos += length + 1


def _edns_payload(wire: bytes) -> int | None:
    """The payload of the first OPT record in the additional section, read by hand (for
    queries dnspython refuses, whose OPT the server may still have read), or None."""
    try:
        _, _, qd, an, ns, ar = struct.unpack_from("!HHHHHH", wire)
        pos = 12
        for _ in range(qd):
            pos = _skip_name(wire, pos) + 4
        for i in range(an + ns + ar):
            pos = _skip_name(wire, pos)
            rtype, rclass, _, rdlength = struct.unpack_from("!HHIH", wire, pos)
            pos += 10 + rdlength
            if i >= an + ns and rtype == _OPT:
                return int(rclass)
    except (ValueError, struct.error):
        return None
    return None


def _last_record(wire: bytes) -> int | None:
    """Where the message's last record starts (a TSIG record must be last), or None."""
    try:
        _, _, qd, an, ns, ar = struct.unpack_from("!HHHHHH", wire)
        pos = 12
        for _ in range(qd):
            pos = _skip_name(wire, pos) + 4
        start = None
        for _ in range(an + ns + ar):
            start = pos
            pos = _skip_name(wire, pos)
            pos += 10 + struct.unpack_from("!H", wire, pos + 8)[0]
    except (ValueError, struct.error):
        return None
    return start


def mac_verifies(query: bytes, keyring: Keyring) -> bool:
    """Whether `query` carries a TSIG whose MAC is right for one of our keys (its time
    left aside: RFC 8945 5.3 lets the server sign an answer exactly when the MAC is)."""
    try:
        message = dns.message.from_wire(query, keyring=False)
    except Exception:
        return False
    start = _last_record(query)
    if message.tsig is None or start is None:
        return False
    key = keyring.get(message.tsig.name)
    rdata = message.tsig[0]
    if key is None:
        return False
    try:
        dns.tsig.validate(query, key, message.tsig.name, rdata, rdata.time_signed, b"", start)
    except Exception:
        return False
    return True


def udp_limit(query: bytes) -> int:
    """The largest UDP reply `query` allows: 512 without EDNS, else its payload (at least
    512), capped at the 1,232 bytes homing promises never to exceed."""
    try:
        message = dns.message.from_wire(query, keyring=False)
        payload = message.payload if message.edns >= 0 else None
    except Exception:
        payload = _edns_payload(query)
    if payload is None:
        return MIN_UDP
    return min(max(payload, MIN_UDP), OUR_UDP)


def _check_reply(query: bytes, reply: bytes, keyring: Keyring | None) -> dns.message.Message:
    where = f"query {query.hex()} reply {reply.hex()}"
    assert len(reply) >= 12, f"reply shorter than a header: {where}"
    assert reply[:2] == query[:2], f"reply does not carry the query's ID: {where}"
    assert reply[2] & 0x80, f"reply without QR: {where}"
    assert (reply[2] ^ query[2]) & 0x78 == 0, f"reply with another opcode: {where}"
    try:
        parsed = dns.message.from_wire(reply, keyring=False)
    except dns.exception.DNSException as exc:
        raise AssertionError(f"dnspython cannot parse the reply ({exc!r}): {where}") from exc
    if keyring is not None and parsed.tsig is not None and parsed.tsig[0].mac:
        assert mac_verifies(query, keyring), f"a MAC on the answer to an unverified query: {where}"
    if parsed.rcode() == dns.rcode.Rcode.NOTIMP and query[2] & 0x78:
        # An opcode we do not implement: its header's other bits are not ours to echo.
        assert not parsed.flags & dns.flags.CD, f"CD copied into NOTIMP: {where}"
    if parsed.edns >= 0 and _asks_dnssec(query):
        assert parsed.ednsflags & dns.flags.DO, f"DO not echoed (RFC 3225): {where}"
    return parsed


def _asks_dnssec(query: bytes) -> bool:
    """Whether the query's OPT record (read by dnspython) has the DO bit."""
    try:
        message = dns.message.from_wire(query, keyring=False)
    except Exception:
        return False
    return message.edns >= 0 and bool(message.ednsflags & dns.flags.DO)


def _no_reply_due(query: bytes, replies: list[bytes]) -> bool:
    """Too short for a header, or a response: nothing may go back (answers could loop)."""
    if len(query) < 12 or query[2] & 0x80:
        assert not replies, f"answered a non-query {query.hex()}: {[r.hex() for r in replies]}"
        return True
    return False


def check_udp(query: bytes, replies: list[bytes], keyring: Keyring | None = None) -> None:
    """At most one datagram, well-formed, with the query's ID and opcode, within the
    query's size, signed only when the query's MAC verified with a key of `keyring`, no
    CD in NOTIMP to another opcode, the query's DO echoed in an OPT record."""
    if _no_reply_due(query, replies):
        return
    assert len(replies) <= 1, f"{len(replies)} datagrams for one query {query.hex()}"
    for reply in replies:
        parsed = _check_reply(query, reply, keyring)
        if len(reply) > MIN_UDP and not parsed.flags & dns.flags.TC:
            limit = udp_limit(query)
            assert len(reply) <= limit, (
                f"{len(reply)}-byte UDP reply without TC to a query allowing {limit}: "
                f"query {query.hex()} reply {reply.hex()}"
            )


def check_tcp(query: bytes, replies: list[bytes], keyring: Keyring | None = None) -> None:
    """As check_udp, each message of any size a 2-byte length can frame."""
    if _no_reply_due(query, replies):
        return
    for reply in replies:
        _check_reply(query, reply, keyring)
        assert len(reply) <= 65535, f"TCP reply of {len(reply)} bytes to {query.hex()}"


def same_replies(a: list[bytes], b: list[bytes]) -> bool:
    """The same messages, but for the order of records within an RRset (dnspython
    shuffles it when it renders, so two servers may differ there and nowhere else)."""
    if a == b:
        return True
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x != y and (len(x) != len(y) or _parsed(x) != _parsed(y)):
            return False
    return True


def _parsed(wire: bytes) -> object:
    """A message as compared: a server cookie's time and hash left out (they move with
    the clock), records in any order."""
    try:
        message = dns.message.from_wire(wire, keyring=False)
    except dns.exception.DNSException:
        return wire
    options = [o.client if isinstance(o, dns.edns.CookieOption) else o for o in message.options]
    return message, message.edns, message.ednsflags, message.payload, options
