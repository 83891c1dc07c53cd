"""Fuzzing the DNS wire path: random bytes, mutated queries, valid queries with random
names, types and case, and TCP streams cut anywhere.

Every message goes through the path the transports take (tests/fuzz/wire.py) over UDP
and over TCP; tests/fuzz/properties.py says what every reply must be. Nothing may
raise, nothing may be logged as homing's own error, and the zone index and the store
must end as they began.
"""

from __future__ import annotations

import random
import struct

import dns.flags
import dns.message
import dns.opcode
import dns.update
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import FUZZ
from tests.fuzz.properties import check_tcp, check_udp, mac_verifies, same_replies
from tests.fuzz.queries import mutate, plain_queries, seeds, special_queries
from tests.fuzz.wire import ALLOWED_PEER, OTHER_PEER, ZONE, WirePath, client_bytes, zone_state

peers = st.sampled_from((ALLOWED_PEER, OTHER_PEER))
# Mutations draw from a Random seeded by hypothesis: drawing each of their thousands of
# choices through hypothesis would cost more than answering the message. A failure
# names the message in hex, which is what a reproduction needs.
SEEDS = st.integers(0, 2**32 - 1)

ZONE_LABELS = (b"dyn", b"example", b"net")
LABELS = st.one_of(
    st.sampled_from(
        (b"host", b"HoSt", b"many", b"forty", b"alias", b"loop1", b"*", b"x", b"wild", b"a")
    ),
    st.sampled_from((b"b", b"c", b"deep", b"mail", b"chain", b"out", b"gone", b"dangling")),
    st.binary(min_size=1, max_size=63),
    st.text(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789_.\\",
        min_size=1,
        max_size=63,
    ).map(str.encode),
)
SUFFIXES = st.sampled_from(
    (
        ZONE_LABELS,
        ZONE_LABELS,
        ZONE_LABELS,
        (),
        (b"example", b"org"),
        (b"net",),
        (b"EXAMPLE", b"NET"),
    )
)
TYPES = st.one_of(
    st.sampled_from((1, 28, 15, 16, 5, 2, 6, 255, 251, 252, 253, 254, 41, 250, 249, 0, 46, 43)),
    st.integers(0, 65535),
)
CLASSES = st.one_of(st.sampled_from((1, 1, 1, 3, 4, 254, 255)), st.integers(0, 65535))
OPTIONS = st.lists(
    st.tuples(
        st.sampled_from((8, 10, 12, 15, 0, 65535)) | st.integers(0, 65535), st.binary(max_size=40)
    ),
    max_size=5,
)


def _recased(label: bytes, mask: int) -> bytes:
    return bytes(
        c ^ 0x20 if (mask >> (i % 64)) & 1 and chr(c).isalpha() and c < 0x80 else c
        for i, c in enumerate(label)
    )


@st.composite
def valid_queries(draw: st.DrawFn) -> bytes:
    """A query as a resolver could send it: any name (under the zone or not), type, class,
    case, flags (QR clear, opcode QUERY), with or without EDNS and its options."""
    labels = [*draw(st.lists(LABELS, max_size=8)), *draw(SUFFIXES)]
    mask = draw(st.integers(0, 2**64 - 1))  # which letters change case
    if mask:
        labels = [_recased(label, mask) for label in labels]
    qname = b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"
    flags = draw(st.integers(0, 0xFFFF)) & 0x07F0  # RD, RA, Z, AD, CD: QR 0, opcode 0, rcode 0
    edns = draw(st.none() | st.tuples(st.integers(0, 65535), st.booleans(), OPTIONS))
    additional = b""
    if edns is not None:
        payload, do, options = edns
        rdata = b"".join(struct.pack("!HH", code, len(data)) + data for code, data in options)
        additional = (
            b"\x00"
            + struct.pack("!HHBBHH", 41, payload, 0, 0, 0x8000 if do else 0, len(rdata))
            + rdata
        )
    header = struct.pack(
        "!HHHHHH", draw(st.integers(0, 65535)), flags, 1, 0, 0, 1 if additional else 0
    )
    return header + qname + struct.pack("!HH", draw(TYPES), draw(CLASSES)) + additional


_SEEDS: dict[str, list[bytes]] = {}


def _seeds(path: WirePath) -> list[bytes]:
    if "all" not in _SEEDS:
        _SEEDS["all"] = seeds(path.keyring, path.cookies, client_bytes(ALLOWED_PEER))
    return _SEEDS["all"]


@FUZZ
@given(query=st.binary(max_size=1500), peer=peers)
def test_random_bytes(wire_path: WirePath, query: bytes, peer: str) -> None:
    wire_path.exercise(query, peer)


@FUZZ
@given(
    header=st.binary(min_size=12, max_size=12),
    counts=st.tuples(*[st.sampled_from((0, 1, 2, 0xFFFF)) for _ in range(4)]),
    body=st.binary(max_size=300),
    peer=peers,
)
def test_random_bodies(
    wire_path: WirePath, header: bytes, counts: tuple[int, ...], body: bytes, peer: str
) -> None:
    """A header with small counts (random bytes rarely have them) over a random body."""
    wire_path.exercise(header[:4] + struct.pack("!HHHH", *counts) + body, peer)


@FUZZ
@given(index=st.integers(min_value=0), seed=SEEDS, peer=peers)
def test_mutated_queries(wire_path: WirePath, index: int, seed: int, peer: str) -> None:
    """Bit flips, truncation, lying counts and lengths, pointer loops, many OPT records
    and options, huge label counts, spliced bytes, other types and classes."""
    candidates = _seeds(wire_path)
    wire_path.exercise(mutate(random.Random(seed), candidates[index % len(candidates)]), peer)


@FUZZ
@given(query=valid_queries())
def test_valid_queries(wire_path: WirePath, query: bytes) -> None:
    wire_path.exercise(query)


@FUZZ
@given(
    picks=st.lists(st.tuples(st.integers(min_value=0), st.booleans()), min_size=1, max_size=6),
    lies=st.lists(st.integers(0, 65535), max_size=2),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
    seed=SEEDS,
)
def test_tcp_streams(
    wire_path: WirePath,
    picks: list[tuple[int, bool]],
    lies: list[int],
    cuts: list[int],
    seed: int,
) -> None:
    """Pipelined messages (some mutated, some with a length that lies) read in pieces
    cut anywhere: each message is answered as if it came alone, and a broken frame ends
    the stream with the framer's error, never another exception."""
    candidates = _seeds(wire_path)
    rng = random.Random(seed)
    stream = b""
    for index, mutated in picks:
        message = candidates[index % len(candidates)]
        if mutated:
            message = mutate(rng, message)
        stream += struct.pack("!H", len(message) & 0xFFFF) + message
    for lie in lies:
        at = rng.randrange(len(stream) + 1)
        stream = stream[:at] + struct.pack("!H", lie) + stream[at:]
    points = sorted({cut % (len(stream) + 1) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    exchanges, _ = wire_path.tcp([chunk for chunk in chunks if chunk])
    for message, replies in exchanges:
        check_tcp(message, replies, wire_path.keyring)
    assert zone_state(wire_path.index) == wire_path.state


def _with_do(message: dns.message.Message) -> dns.message.Message:
    message.use_edns(0, dns.flags.DO, 1232)
    return message


def _dispatched(path: WirePath) -> dict[str, tuple[dns.message.Message, str, bool]]:
    """(query, peer, over TCP) for each kind of answer the dispatcher gives."""
    apex = ZONE + "."
    notify = _with_do(dns.message.make_query(apex, "SOA"))
    notify.set_opcode(dns.opcode.NOTIFY)
    update = _with_do(dns.update.UpdateMessage(apex))
    update.add("x", 60, "A", "192.0.2.1")
    signed = _with_do(dns.message.make_query("host." + apex, "A"))
    signed.use_tsig(path.keyring, path.key_name)
    return {
        "AXFR refused": (_with_do(dns.message.make_query(apex, "AXFR")), OTHER_PEER, True),
        "AXFR over UDP": (_with_do(dns.message.make_query(apex, "AXFR")), ALLOWED_PEER, False),
        "AXFR of no zone": (
            _with_do(dns.message.make_query("x." + apex, "AXFR")),
            OTHER_PEER,
            True,
        ),
        "NOTIFY": (notify, ALLOWED_PEER, False),
        "unsigned UPDATE": (update, ALLOWED_PEER, False),
        "signed query": (signed, ALLOWED_PEER, False),
    }


DISPATCHED = (
    "AXFR refused",
    "AXFR over UDP",
    "AXFR of no zone",
    "NOTIFY",
    "unsigned UPDATE",
    "signed query",
)


@pytest.mark.parametrize("kind", DISPATCHED)
def test_the_dispatchers_answers_echo_do(wire_path: WirePath, kind: str) -> None:
    """Each kind of answer the dispatcher gives, to a query with DO (the fuzz targets
    reach them only now and then)."""
    query, peer, tcp = _dispatched(wire_path)[kind]
    wire = query.to_wire()
    if tcp:
        check_tcp(wire, wire_path.tcp_message(wire, peer), wire_path.keyring)
    else:
        check_udp(wire, wire_path.udp(wire, peer), wire_path.keyring)


def test_the_tsig_oracle_tells_verified_from_forged(wire_path: WirePath) -> None:
    """The property's own check: a signed seed verifies, the same with a flipped bit does not."""
    signed = [q for q in special_queries(wire_path.keyring) if mac_verifies(q, wire_path.keyring)]
    assert len(signed) >= 3
    for query in signed:
        assert not mac_verifies(query[:-1] + bytes((query[-1] ^ 1,)), wire_path.keyring)


def test_plain_queries_answered_as_by_a_fresh_server(wire_path: WirePath) -> None:
    """After every fuzz target above ran on this path: each plain query still gets the
    reply of a server that has seen nothing else, and the store has not moved."""
    with WirePath() as fresh:
        for query in plain_queries():
            assert same_replies(wire_path.udp(query), fresh.udp(query)), query.hex()
            assert same_replies(wire_path.tcp_message(query), fresh.tcp_message(query)), query.hex()
    assert zone_state(wire_path.index) == wire_path.state
    assert wire_path.store_unchanged()
