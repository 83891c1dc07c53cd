"""Kept UDP replies serve a question in any letter case (resolvers' 0x20), echoing the
asker's spelling, and are forgotten on change whatever case kept them."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator

import dns.message
import pytest

from homing.dns.answer import Responder
from homing.dns.index import ZoneIndex
from homing.dns.udp import BatchReceiver, batch_receiver_available
from homing.domain.records import RRsetValue
from tests.dns.test_server import run
from tests.dns.zone import SERIAL, ZONE, host_moved, name
from tests.peers import program

LOCALHOST = "127.0.0.1"
SPELLINGS = 24  # random spellings asked of the running server


class Counting(Responder):
    """The real Responder, counting the answers it works out rather than finds kept."""

    computed = 0

    def compute(self, wire: bytes, *, tcp: bool, client: bytes = b"") -> bytes | None:
        self.computed += 1
        return super().compute(wire, tcp=tcp, client=client)


def spelled(text: str, rng: random.Random) -> str:
    """`text` with each letter's case drawn at random, as a 0x20 resolver asks."""
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def query_wire(qname: str, rdtype: str | int = "A", ident: int = 1) -> bytes:
    q = dns.message.make_query(qname, rdtype, use_edns=0)
    q.id = ident
    return q.to_wire()


def ask(responder: Responder, qname: str, rdtype: str | int = "A", ident: int = 1) -> bytes:
    reply = responder.answer(query_wire(qname, rdtype, ident), tcp=False)
    assert reply is not None
    return reply


def owner_bytes(wire: bytes) -> bytes:
    """The question's name as it is on the wire (uncompressed, right after the header)."""
    return wire[12 : wire.index(0, 12) + 1]


def test_a_mixed_case_query_is_answered_from_the_reply_kept_in_lower_case(
    index: ZoneIndex,
) -> None:
    responder = Counting(index)
    lower = ask(responder, name("host"), ident=7)
    assert responder.computed == 1
    asked = "HoSt.DyN.ExAmPlE.nEt"
    mixed = ask(responder, asked, ident=8)
    assert responder.computed == 1, "answered from the kept reply"
    reply = dns.message.from_wire(mixed)
    assert reply.id == 8
    assert reply.question[0].name.to_text(omit_final_dot=True) == asked
    assert reply.answer[0].name.to_text(omit_final_dot=True) == asked  # owner echoed
    # Byte for byte the lower-case answer, but for the ID and the spelling of the name.
    spelling = owner_bytes(mixed)
    assert spelling.lower() == owner_bytes(lower) and spelling != owner_bytes(lower)
    assert mixed[2:] == lower[2:].replace(owner_bytes(lower), spelling, 1)


def test_a_reply_kept_for_one_spelling_serves_every_other(index: ZoneIndex) -> None:
    responder = Counting(index)
    rng = random.Random(20)
    first = spelled(name("host"), rng)
    ask(responder, first)
    assert responder.computed == 1
    for ident, asked in enumerate([name("host"), first, spelled(name("host"), rng)], 2):
        reply = dns.message.from_wire(ask(responder, asked, "A", ident))
        assert reply.question[0].name.to_text(omit_final_dot=True) == asked
        assert reply.answer[0].name.to_text(omit_final_dot=True) == asked
        assert [r.address for r in reply.answer[0]] == ["192.0.2.1"]
    assert responder.computed == 1


def test_case_folding_never_changes_the_type_asked(index: ZoneIndex) -> None:
    """Type 65 (HTTPS) is 0x0041, an "A" on the wire, and type 97 is "a": the lower-cased
    lookup must not hand one's kept answer to the other."""
    zone = index.zone(ZONE)
    assert zone is not None
    values = [
        RRsetValue(name("svc"), "TYPE97", 60, (r"\# 4 01020304",)),
        RRsetValue(name("svc"), "HTTPS", 60, ("1 . alpn=h2",)),
    ]
    index.replace(ZONE, SERIAL + 1, values)
    responder = Counting(index)
    for first, second in ((97, 65), (65, 97)):
        ask(responder, name("svc"), first)
        reply = dns.message.from_wire(ask(responder, name("SVC"), second))
        assert [rrset.rdtype for rrset in reply.answer] == [second]


def test_a_change_forgets_the_reply_kept_for_a_mixed_case_query(index: ZoneIndex) -> None:
    responder = Counting(index)
    ask(responder, "hOsT.dYn.ExAmPlE.nEt")
    assert index.apply(host_moved("192.0.2.2"))
    for asked in ("HOST.DYN.EXAMPLE.NET", name("host")):
        reply = dns.message.from_wire(ask(responder, asked))
        assert [r.address for r in reply.answer[0]] == ["192.0.2.2"]
    assert responder.computed == 2  # worked out once more after the change, then kept


# --- the running server, asked by dig in random letter case -------------------------------


@pytest.fixture
async def served(index: ZoneIndex) -> AsyncIterator[tuple[Counting, int]]:
    if not batch_receiver_available():
        pytest.skip("no recvmmsg/sendmmsg on this platform")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOCALHOST, 0))
    sock.setblocking(False)
    responder = Counting(index)
    receiver = BatchReceiver(sock, responder, None, lambda _count: None)
    try:
        yield responder, sock.getsockname()[1]
    finally:
        receiver.close()
        await receiver.wait_closed()


async def dig_a(port: int, qname: str) -> list[tuple[str, str]]:
    """(owner, address) of each A record dig gets; +nocookie, so each query's bytes after
    the ID differ from the last one's in the letter case of the name alone."""
    text = await run(
        program("dig"),
        f"@{LOCALHOST}",
        "-p",
        str(port),
        "+norec",
        "+nocookie",
        "+time=3",
        "+tries=1",
        "+noall",
        "+answer",
        qname,
        "A",
    )
    return [(line.split()[0], line.split()[-1]) for line in text.splitlines() if line.strip()]


@pytest.mark.peer("dig")
async def test_dig_in_random_case_is_answered_from_the_kept_reply(
    served: tuple[Counting, int],
) -> None:
    responder, port = served
    assert await dig_a(port, name("host")) == [(name("host") + ".", "192.0.2.1")]
    rng = random.Random(0x20)
    for _ in range(SPELLINGS):
        asked = spelled(name("host"), rng)
        assert await dig_a(port, asked) == [(asked + ".", "192.0.2.1")]
    assert responder.computed == 1
    # A change is answered at once, whatever the spelling, and kept again.
    assert responder.index.apply(host_moved("192.0.2.2"))
    for _ in range(3):
        asked = spelled(name("host"), rng)
        assert await dig_a(port, asked) == [(asked + ".", "192.0.2.2")]
    assert responder.computed == 2
