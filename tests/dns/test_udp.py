"""UDP served in batches (recvmmsg/sendmmsg), its fallback, and the query counter."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rrset
import pytest

from homing.dns.answer import Responder
from homing.dns.index import ZoneIndex
from homing.dns.server import DnsServer, query_count, start_dns
from homing.dns.udp import BATCH, ROUNDS, BatchReceiver, batch_receiver_available
from tests.dns.zone import host_moved, name

LOCALHOST = "127.0.0.1"
TIMEOUT = 10.0
# More clients at once than one readiness callback takes (BATCH x ROUNDS), so answers
# leave in several sendmmsg calls and the socket is drained over several callbacks.
CLIENTS = BATCH * ROUNDS + 77


@pytest.fixture(params=["batches", "protocol"])
async def server(request: pytest.FixtureRequest, index: ZoneIndex) -> AsyncIterator[DnsServer]:
    batches = request.param == "batches"
    if batches and not batch_receiver_available():
        pytest.skip("no recvmmsg/sendmmsg on this platform")
    server = await start_dns(index, LOCALHOST, 0, udp_batches=batches)
    try:
        yield server
    finally:
        await server.close()


class _Client(asyncio.DatagramProtocol):
    """One client socket; what it receives, in order."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.replies.put_nowait(data)


async def clients(port: int, count: int) -> list[tuple[asyncio.DatagramTransport, _Client]]:
    loop = asyncio.get_running_loop()
    return [
        await loop.create_datagram_endpoint(_Client, remote_addr=(LOCALHOST, port))
        for _ in range(count)
    ]


def query(label: str, ident: int) -> bytes:
    q = dns.message.make_query(name(label), "A")
    q.id = ident
    return q.to_wire()


async def next_reply(client: _Client) -> dns.message.Message:
    return dns.message.from_wire(await asyncio.wait_for(client.replies.get(), TIMEOUT))


def address_of(reply: dns.message.Message) -> str:
    return str(reply.answer[0][0].to_text())


async def test_a_burst_is_answered_each_to_its_sender(server: DnsServer) -> None:
    """Every client gets its own answer, also where dropped datagrams sit in between."""
    peers = await clients(server.port, CLIENTS)
    try:
        # Every fifth client sends a runt, which is dropped: later answers in the batch
        # then go out from an earlier send slot, to the address of a later receive slot.
        # All are sent before the loop runs the server, so they wait in one queue.
        for i, (transport, _) in enumerate(peers):
            transport.sendto(b"\x00\x01\x00" if i % 5 == 0 else query("host", i))
        for i, (_, client) in enumerate(peers):
            if i % 5:
                reply = await next_reply(client)
                assert reply.id == i
                assert address_of(reply) == "192.0.2.1"
        # The runts got nothing: the first thing their senders receive is this answer.
        for i, (transport, client) in enumerate(peers):
            if i % 5 == 0:
                transport.sendto(query("host", 0xF000 + i))
                assert (await next_reply(client)).id == 0xF000 + i
    finally:
        for transport, _ in peers:
            transport.close()


async def test_queries_waiting_when_the_index_changes_see_the_change(
    server: DnsServer, index: ZoneIndex
) -> None:
    [(transport, client)] = await clients(server.port, 1)
    try:
        transport.sendto(query("host", 1))
        assert address_of(await next_reply(client)) == "192.0.2.1"  # cached from now on
        for i in range(BATCH):
            transport.sendto(query("host", 100 + i))
        # The queries are in the socket's queue, not yet read: the journal follower moves
        # the index now, in the loop's thread, as it does between two callbacks.
        assert index.apply(host_moved("192.0.2.77"))
        seen = [await next_reply(client) for _ in range(BATCH)]
        assert sorted(r.id for r in seen) == [100 + i for i in range(BATCH)]
        assert {address_of(r) for r in seen} == {"192.0.2.77"}
    finally:
        transport.close()


async def test_query_count_counts_answers_sent(server: DnsServer) -> None:
    before = query_count()
    peers = await clients(server.port, 40)
    try:
        for i, (transport, _) in enumerate(peers):
            transport.sendto(query("host", i))
            transport.sendto(b"\x00\x01\x80\x00")  # dropped, not counted
        for _, client in peers:
            await next_reply(client)
        over_tcp = dns.message.make_query(name("nothing-here"), "A")
        reply = await dns.asyncquery.tcp(over_tcp, LOCALHOST, port=server.port, timeout=TIMEOUT)
        assert reply.rcode() == dns.rcode.NXDOMAIN
        assert query_count() - before == 41
    finally:
        for transport, _ in peers:
            transport.close()


class _Buggy(Responder):
    """The real Responder with a bug for one query ID: the failure the server must contain."""

    def compute(self, wire: bytes, *, tcp: bool, client: bytes = b"") -> bytes | None:
        if wire[:2] == b"\xde\xad":
            raise RuntimeError("a bug in the answer path")
        return super().compute(wire, tcp=tcp, client=client)


@pytest.mark.skipif(not batch_receiver_available(), reason="no recvmmsg/sendmmsg")
async def test_a_failing_query_leaves_the_rest_of_its_batch_answered(
    index: ZoneIndex, caplog: pytest.LogCaptureFixture
) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOCALHOST, 0))
    sock.setblocking(False)
    counted: list[int] = []
    receiver = BatchReceiver(sock, _Buggy(index), None, counted.append)
    [(transport, client)] = await clients(sock.getsockname()[1], 1)
    try:
        with caplog.at_level(logging.ERROR, logger="homing.dns.udp"):
            # One batch (sent before the loop serves them). The failing query comes first:
            # sent after 1 (the same bytes but the ID), it would get 1's kept reply.
            for ident in (0xDEAD, 1, 2):
                transport.sendto(query("host", ident))
            assert [(await next_reply(client)).id for _ in range(2)] == [1, 2]
        assert [r.message for r in caplog.records] == [
            "DNS UDP query failed: " + query("host", 0xDEAD).hex()
        ]
        assert sum(counted) == 2
    finally:
        transport.close()
        receiver.close()
        await receiver.wait_closed()


@pytest.mark.skipif(not batch_receiver_available(), reason="no recvmmsg/sendmmsg")
def test_a_kept_answer_carries_each_askers_id_and_spelling() -> None:
    """queue_kept: the ID and the name's spelling come from each datagram, the rest from
    the kept reply, also for an answer larger than a send slot; answers may leave in
    another order than their questions came."""
    from homing.dns.udp import SEND_SLOT, DatagramBatch

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((LOCALHOST, 0))
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    batch = DatagramBatch(server)
    try:
        spellings = ["Host.Example.NET", "host.example.net", "HOST.example.Net"]
        for ident, (sender, spelling) in enumerate(zip(senders, spellings, strict=True)):
            message = dns.message.make_query(spelling, "A")
            message.id = 0x100 + ident
            sender.settimeout(TIMEOUT)
            sender.sendto(message.to_wire(), server.getsockname())
        reply = dns.message.make_response(dns.message.make_query("host.example.net", "A"))
        reply.answer.append(dns.rrset.from_text("host.example.net.", 60, "IN", "A", "192.0.2.1"))
        named = len(b"\x04host\x07example\x03net\x00")

        def kept(wire: bytes) -> tuple[bytes, int, bytes]:  # as replies.KeptAnswers keeps it
            return wire[2:12], named, wire[12 + named :]

        small = kept(reply.to_wire())
        texts = (f'"{i:03} {"x" * 250}"' for i in range(20))
        reply.answer.append(dns.rrset.from_text("host.example.net.", 60, "IN", "TXT", *texts))
        large = kept(reply.to_wire())
        assert len(large[2]) > SEND_SLOT
        assert batch.receive() == 3  # loopback: each datagram is there once sent
        for slot in (2, 0, 1):
            batch.queue_kept(slot, large if slot == 0 else small)
        assert batch.send() == 3
        for ident, (sender, spelling) in enumerate(zip(senders, spellings, strict=True)):
            answer = dns.message.from_wire(sender.recv(65536))
            assert answer.id == 0x100 + ident
            assert answer.question[0].name.to_text() == spelling + "."  # as asked, not kept
            assert answer.answer[0][0].to_text() == "192.0.2.1"
            assert len(answer.answer) == (2 if ident == 0 else 1)
    finally:
        batch.close()
        for sock in (server, *senders):
            sock.close()
