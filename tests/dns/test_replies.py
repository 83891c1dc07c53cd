"""The kept UDP replies as the UDP server's loop finds them (homing.dns.udp, where the
lookup is inlined) and as `replies.kept_reply` does: one lower-cased lookup serves every
spelling of a name, byte for byte the lower-case reply but for the ID and the spelling;
questions whose other bytes hold a letter (type 65 is "A", type 97 "a"; an EDNS payload
of 1400 is 0x0578, "x") are kept for their own bytes alone, never confused."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from homing.dns.index import ZoneIndex
from homing.dns.udp import BatchReceiver, batch_receiver_available
from homing.domain.records import RRsetValue
from tests.dns.test_letter_case import Counting, owner_bytes, spelled
from tests.dns.zone import SERIAL, ZONE, build_index, name

LOCALHOST = "127.0.0.1"
TIMEOUT = 5.0
SPELLINGS = 4


@dataclass
class Served:
    responder: Counting
    client: socket.socket

    async def ask(self, wire: bytes) -> bytes:
        """The loop's reply to `wire`, which it answers as Responder.answer does."""
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(self.client, wire)
        reply = await asyncio.wait_for(loop.sock_recv(self.client, 65535), TIMEOUT)
        return reply


def query(qname: str, rdtype: int, ident: int, edns: int | None, payload: int = 1232) -> bytes:
    if edns is None:
        q = dns.message.make_query(qname, rdtype, use_edns=False)
    else:
        q = dns.message.make_query(qname, rdtype, use_edns=0, payload=payload)
    q.id = ident
    return q.to_wire()


def with_services(index: ZoneIndex) -> ZoneIndex:
    values = [
        RRsetValue(name("svc"), "TYPE97", 60, (r"\# 4 01020304",)),
        RRsetValue(name("svc"), "HTTPS", 60, ("1 . alpn=h2",)),
    ]
    index.replace(ZONE, SERIAL + 1, values)
    return index


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    if not batch_receiver_available():
        pytest.skip("no recvmmsg/sendmmsg on this platform")
    index = build_index()
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((LOCALHOST, 0))
    server.setblocking(False)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    client.connect(server.getsockname())
    responder = Counting(index)
    receiver = BatchReceiver(server, responder, None, lambda _count: None)
    try:
        yield Served(responder, client)
    finally:
        receiver.close()
        await receiver.wait_closed()
        client.close()


CASES = [
    ("host", dns.rdatatype.A, True),
    ("host", dns.rdatatype.AAAA, True),
    ("deep.b.c", dns.rdatatype.TXT, True),
    ("nowhere", dns.rdatatype.A, False),  # NXDOMAIN: worked out each time, never kept
]


@pytest.mark.parametrize("edns", [None, 0], ids=["plain", "edns"])
@pytest.mark.parametrize(
    ("label", "rdtype", "kept"), CASES, ids=[c[0] + "-" + c[1].name for c in CASES]
)
async def test_every_spelling_gets_the_reply_kept_in_its_own_spelling(
    served: Served, label: str, rdtype: dns.rdatatype.RdataType, kept: bool, edns: int | None
) -> None:
    lower = await served.ask(query(name(label), rdtype, 1, edns))
    assert served.responder.computed == 1
    expected_rcode = dns.rcode.NOERROR if kept else dns.rcode.NXDOMAIN
    assert dns.message.from_wire(lower).rcode() == expected_rcode
    rng = random.Random(0x20)
    for ident in range(2, 2 + SPELLINGS):
        asked = spelled(name(label), rng)
        wire = query(asked, rdtype, ident, edns)
        reply = await served.ask(wire)
        # The loop's inlined lookup and kept_reply (Responder.answer) agree byte for byte.
        assert reply == served.responder.answer(wire, tcp=False)
        message = dns.message.from_wire(reply)
        assert message.id == ident
        assert message.question[0].name.to_text(omit_final_dot=True) == asked
        spelling = owner_bytes(reply)
        assert spelling.lower() == owner_bytes(lower)
        if kept:
            # The kept bytes, the asker's spelling (the answer's owner points at it).
            assert reply[2:] == lower[2:].replace(owner_bytes(lower), spelling, 1)
            assert message.answer[0].name.to_text(omit_final_dot=True) == asked
    # Kept: worked out once, whatever the spellings (twice per query: loop and answer()).
    assert served.responder.computed == (1 if kept else 1 + 2 * SPELLINGS)


@pytest.mark.parametrize("edns", [None, 0], ids=["plain", "edns"])
async def test_the_type_byte_letter_case_is_never_folded(served: Served, edns: int | None) -> None:
    """Type 65 (HTTPS, 0x0041) lower-cased would read type 97 (0x0061), and the reverse
    upper-cased: each is kept for its own bytes and answered as itself."""
    with_services(served.responder.index)
    for first, second in ((97, 65), (65, 97)):
        for rdtype in (first, second, first, second):
            for asked in (name("svc"), name("SVC"), spelled(name("svc"), random.Random(rdtype))):
                reply = dns.message.from_wire(await served.ask(query(asked, rdtype, 9, edns)))
                assert [rrset.rdtype for rrset in reply.answer] == [rdtype]
                assert reply.question[0].name.to_text(omit_final_dot=True) == asked
    computed = served.responder.computed
    # Asked again as first asked, each is found among the kept replies.
    for rdtype in (65, 97):
        reply = dns.message.from_wire(await served.ask(query(name("svc"), rdtype, 10, edns)))
        assert [rrset.rdtype for rrset in reply.answer] == [rdtype]
    assert served.responder.computed == computed


async def test_a_letter_in_the_edns_payload_is_kept_for_its_own_bytes(served: Served) -> None:
    wire = query(name("host"), dns.rdatatype.A, 1, 0, payload=1400)  # 0x0578: "x"
    assert b"\x05\x78" in wire[-11:]
    first = await served.ask(wire)
    again = await served.ask(wire[:1] + b"\x02" + wire[2:])
    assert again[2:] == first[2:] and again[:2] == wire[:1] + b"\x02"
    assert served.responder.computed == 1
    # Another spelling is not looked for under its own bytes (nor found lower-cased: the
    # reply is kept apart): worked out, with its own spelling.
    mixed = query(name("HOST"), dns.rdatatype.A, 3, 0, payload=1400)
    reply = dns.message.from_wire(await served.ask(mixed))
    assert reply.question[0].name.to_text(omit_final_dot=True) == name("HOST")
    assert [r.address for r in reply.answer[0]] == ["192.0.2.1"]
    assert served.responder.computed == 2
