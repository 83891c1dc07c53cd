"""DNS messages to fuzz with: valid seeds of every kind the server answers, and mutations.

The mutations take a `random.Random`, so the hypothesis tests (which hand in a
shrinkable one) and bench/fuzz_dns.py (seeded, for a million packets) share them.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update

from homing.dns.cookies import ServerCookies
from tests.dns.zone import ZONE, name

__all__ = ["MUTATIONS", "cookie_queries", "mutate", "plain_queries", "seeds"]

OWNERS = (
    "",
    "host",
    "HoSt",
    "many",
    "forty",
    "mail",
    "alias",
    "chain",
    "loop1",
    "out",
    "dangling",
    "gone",
    "x.wild",
    "a.x.wild",
    "x",
    "deep.b.c",
    "b.c",
    "nothing.here",
)
TYPES = ("A", "AAAA", "MX", "TXT", "CNAME", "NS", "SOA", "ANY", "SRV", "DS", "RRSIG", "MAILB")
_HEADER = struct.Struct("!HHHHHH")


def _wire(message: dns.message.Message, **kw: object) -> bytes:
    return message.to_wire(**kw)  # type: ignore[arg-type]


def plain_queries() -> list[bytes]:
    """Plain questions (no EDNS, with EDNS, with options): what the fast path answers."""
    out = []
    for owner in OWNERS:
        for rtype in TYPES:
            out.append(_wire(dns.message.make_query(name(owner), rtype)))
    for payload in (0, 511, 512, 1232, 4096, 65535):
        for owner in ("host", "forty", "many", "nothing.here", "", "alias"):
            out.append(_wire(dns.message.make_query(name(owner), "A", use_edns=0, payload=payload)))
    cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01" * 8)
    subnet = dns.edns.ECSOption("192.0.2.0", 24)
    padding = dns.edns.GenericOption(dns.edns.OptionType.PADDING, b"\x00" * 40)
    for options in ([cookie], [subnet], [padding], [cookie, subnet, padding]):
        q = dns.message.make_query(name("host"), "A", use_edns=0, options=options)
        out.append(_wire(q))
    q = dns.message.make_query(name("many"), "A", use_edns=0, want_dnssec=True)
    out.append(_wire(q))
    for flags in (0, dns.flags.RD | dns.flags.CD, dns.flags.AD):
        q = dns.message.make_query(name("host"), "A")
        q.flags = flags
        out.append(_wire(q))
    for owner, rtype in (("version.bind.", "TXT"), ("www.example.org.", "A"), (".", "NS")):
        out.append(_wire(dns.message.make_query(owner, rtype, rdclass="CH")))
        out.append(_wire(dns.message.make_query(owner, rtype)))
    out.append(_wire(dns.message.make_query(name("host"), "A", rdclass="ANY")))
    return out


def _signed(message: dns.message.Message, keyring: dict[dns.name.Name, dns.tsig.Key]) -> bytes:
    (key_name,) = keyring
    message.use_tsig(keyring, key_name)
    return _wire(message)


def _ixfr(serial: int) -> dns.message.Message:
    q = dns.message.make_query(ZONE + ".", "IXFR")
    soa = f"ns1.example.net. hostmaster.example.net. {serial} 1 1 1 1"
    q.authority.append(dns.rrset.from_text(ZONE + ".", 0, "IN", "SOA", soa))
    return q


def _update() -> dns.update.UpdateMessage:
    update = dns.update.UpdateMessage(ZONE + ".")
    update.replace("host", 60, "A", "198.51.100.9")
    update.delete("mail")
    return update


def special_queries(keyring: dict[dns.name.Name, dns.tsig.Key]) -> list[bytes]:
    """Transfers, NOTIFY, UPDATE and signed messages: the dispatcher's.

    `keyring` holds the zone's real key. UPDATEs are only ever unsigned or signed with a
    key the server does not have (or the real name with a wrong secret): no fuzzed
    message may change the zone.
    """
    (key_name,) = keyring
    real = keyring[key_name]
    forged = {key_name: dns.tsig.Key(key_name, b"\x00" * 32, real.algorithm)}
    stranger = dns.tsigkeyring.from_text({"stranger-key": "c2VjcmV0c2VjcmV0c2VjcmV0"})
    out = []
    for serial in (0, 1, 2, 3, 4, 5, 6, 2**32 - 1):
        out.append(_wire(_ixfr(serial)))
    out.append(_signed(_ixfr(3), keyring))
    out.append(_wire(dns.message.make_query(ZONE + ".", "AXFR")))
    out.append(_signed(dns.message.make_query(ZONE + ".", "AXFR"), keyring))
    out.append(_signed(dns.message.make_query(ZONE + ".", "AXFR"), stranger))
    out.append(_signed(dns.message.make_query(ZONE + ".", "SOA"), keyring))
    out.append(_signed(dns.message.make_query(name("host"), "A"), forged))
    out.append(_wire(dns.message.make_query("example.org.", "AXFR")))
    notify = dns.message.make_query(ZONE + ".", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    out.append(_wire(notify))
    out.append(_wire(_update()))
    out.append(_signed(_update(), forged))
    out.append(_signed(_update(), stranger))
    return out


def cookie_queries(cookies: ServerCookies, client: bytes) -> list[bytes]:
    """Queries with DNS Cookies: a client cookie alone, with the server cookie we gave
    `client`, with one we did not, malformed lengths, and no question at all."""
    mine = b"\x11" * 8
    good = mine + cookies.make(mine, client)
    datas = [mine, good, mine + bytes(16), mine + b"\x01" * 8, b"\x22" * 7, b"\x22" * 9]
    datas += [mine + bytes(33), good + b"\x00"]
    out = []
    for owner, rtype in (("host", "A"), ("", "SOA"), ("many", "A"), ("nothing.here", "AAAA")):
        for data in datas:
            option = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, data)
            q = dns.message.make_query(name(owner), rtype, use_edns=0, options=[option])
            out.append(_wire(q))
    for data in (mine, good, b"\x22" * 9):
        option = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, data)
        q = dns.message.Message()
        q.use_edns(0, options=[option])
        out.append(_wire(q))
    return out


def seeds(
    keyring: dict[dns.name.Name, dns.tsig.Key],
    cookies: ServerCookies | None = None,
    client: bytes = b"",
) -> list[bytes]:
    """Every valid message the mutations start from (with cookies made for `client`)."""
    out = plain_queries() + special_queries(keyring)
    return out if cookies is None else out + cookie_queries(cookies, client)


# --- mutations --------------------------------------------------------------------------------


def _names_end(wire: bytes) -> int:
    """Where the first question's name ends (or the message does), read loosely."""
    pos = 12
    while pos < len(wire) and wire[pos] and wire[pos] < 64:
        pos += wire[pos] + 1
    return min(pos, len(wire))


def flip_bits(rng: random.Random, wire: bytes) -> bytes:
    data = bytearray(wire)
    for _ in range(rng.randint(1, 4)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def set_byte(rng: random.Random, wire: bytes) -> bytes:
    if not wire:
        return wire
    data = bytearray(wire)
    data[rng.randrange(len(data))] = rng.choice(
        (0, 1, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xFF, rng.randrange(256))
    )
    return bytes(data)


def truncate(rng: random.Random, wire: bytes) -> bytes:
    return wire[: rng.randrange(len(wire) + 1)]


def extend(rng: random.Random, wire: bytes) -> bytes:
    return wire + rng.randbytes(rng.choice((1, 2, 11, rng.randrange(600))))


def counts(rng: random.Random, wire: bytes) -> bytes:
    """A header count (QD, AN, NS or AR) that lies."""
    if len(wire) < 12:
        return wire
    field = 4 + 2 * rng.randrange(4)
    (value,) = struct.unpack_from("!H", wire, field)
    value = rng.choice((0, 1, 2, value + 1, max(value - 1, 0), 0xFFFF, rng.randrange(65536)))
    return wire[:field] + struct.pack("!H", value & 0xFFFF) + wire[field + 2 :]


def header_bits(rng: random.Random, wire: bytes) -> bytes:
    """Random flags, opcode and rcode."""
    if len(wire) < 4:
        return wire
    return wire[:2] + rng.randbytes(2) + wire[4:]


def label_length(rng: random.Random, wire: bytes) -> bytes:
    """One of the question name's length bytes set to a lie (or a pointer's first byte)."""
    end = _names_end(wire)
    positions = [12]
    pos = 12
    while pos < end:
        pos += wire[pos] + 1
        positions.append(pos)
    at = rng.choice([p for p in positions if p < len(wire)] or [len(wire)])
    if at >= len(wire):
        return wire
    value = rng.choice((0, 1, 63, 64, 0x80, 0xC0, rng.randrange(256)))
    return wire[:at] + bytes((value,)) + wire[at + 1 :]


def pointer_loop(rng: random.Random, wire: bytes) -> bytes:
    """A compression pointer in the question that points at itself, back, or forward."""
    end = _names_end(wire)
    at = rng.randint(12, max(12, end))
    target = rng.choice((at, 12, at - 2, at + 2, rng.randrange(len(wire) + 16)))
    pointer = struct.pack("!H", 0xC000 | (target & 0x3FFF))
    return wire[:at] + pointer + wire[at + rng.choice((0, 2)) :]


def many_options(rng: random.Random, wire: bytes) -> bytes:
    """An OPT record (replacing the query's additional section) holding many options,
    some of whose lengths may lie."""
    if len(wire) < 12:
        return wire
    options = b""
    for _ in range(rng.choice((1, 10, 100, 1000))):
        body = rng.randbytes(rng.randrange(12))
        length = len(body) if rng.random() < 0.9 else rng.randrange(65536)
        options += struct.pack("!HH", rng.randrange(65536), length) + body
    options = options[:65000]
    payload = rng.choice((0, 512, 1232, 4096, 65535))
    version = 0 if rng.random() < 0.8 else rng.randrange(256)
    opt = b"\x00" + struct.pack("!HHBBHH", 41, payload, 0, version, 0, len(options)) + options
    question_end = min(_names_end(wire) + 5, len(wire))
    head = wire[:10] + struct.pack("!H", 1) + wire[12:question_end]
    return head + opt


def many_opts(rng: random.Random, wire: bytes) -> bytes:
    """Several OPT records (RFC 6891 6.1.1: a FORMERR)."""
    if len(wire) < 12:
        return wire
    count = rng.choice((2, 3, 50))
    opt = b"\x00" + struct.pack("!HHBBHH", 41, 1232, 0, 0, 0, 0)
    (arcount,) = struct.unpack_from("!H", wire, 10)
    return wire[:10] + struct.pack("!H", (arcount + count) & 0xFFFF) + wire[12:] + opt * count


def many_labels(rng: random.Random, wire: bytes) -> bytes:
    """A question name of many labels: at the 255-byte limit, past it, or 63-byte labels."""
    if len(wire) < 12:
        return wire
    kind = rng.randrange(3)
    if kind == 0:
        labels = b"\x01a" * rng.choice((100, 126, 127, 128, 200))
    elif kind == 1:
        labels = (b"\x3f" + b"b" * 63) * rng.choice((3, 4, 5))
    else:
        labels = b"".join(
            bytes((n,)) + rng.randbytes(n)
            for n in (rng.randrange(1, 64) for _ in range(rng.randrange(1, 20)))
        )
    suffix = b"" if rng.random() < 0.3 else b"\x03dyn\x07example\x03net"
    end = _names_end(wire)
    return wire[:12] + labels + suffix + wire[end:]


def splice(rng: random.Random, wire: bytes) -> bytes:
    """Part of the message with part of itself repeated."""
    if len(wire) < 2:
        return wire
    a = rng.randrange(len(wire))
    b = rng.randrange(a, len(wire) + 1)
    return wire[:b] + wire[a:b] + wire[b:]


def type_class(rng: random.Random, wire: bytes) -> bytes:
    """Another question type and class (meta types, OPT, TSIG, private ones)."""
    end = _names_end(wire) + 1
    if end + 4 > len(wire):
        return wire
    qtype = rng.choice((0, 41, 250, 251, 252, 253, 254, 255, 65535, rng.randrange(65536)))
    qclass = rng.choice((1, 3, 4, 254, 255, 0, rng.randrange(65536)))
    return wire[:end] + struct.pack("!HH", qtype, qclass) + wire[end + 4 :]


def case(rng: random.Random, wire: bytes) -> bytes:
    """Letters of the question name in another case (same question, other bytes)."""
    end = _names_end(wire)
    head, body, tail = wire[:12], bytearray(wire[12:end]), wire[end:]
    for i, c in enumerate(body):
        if (0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A) and rng.random() < 0.5:
            body[i] = c ^ 0x20
    return head + bytes(body) + tail


Mutation = Callable[[random.Random, bytes], bytes]
MUTATIONS: tuple[Mutation, ...] = (
    flip_bits,
    set_byte,
    truncate,
    extend,
    counts,
    header_bits,
    label_length,
    pointer_loop,
    many_options,
    many_opts,
    many_labels,
    splice,
    type_class,
    case,
)


def mutate(rng: random.Random, wire: bytes) -> bytes:
    """One to three mutations of `wire`."""
    for _ in range(rng.choice((1, 1, 2, 3))):
        wire = rng.choice(MUTATIONS)(rng, wire)
    return wire
