"""The UDP/TCP server end to end: real sockets, real dig and kdig, dnspython's asyncquery."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest

from homing.dns.answer import answer
from homing.dns.framing import frame
from homing.dns.index import ZoneIndex
from homing.dns.server import DnsServer, TcpLimits, parse_listen, start_dns
from tests.dns.zone import MANY, name
from tests.peers import program

LOCALHOST = "127.0.0.1"
TIMEOUT = 10.0  # an upper bound for anything to happen; tests wait for events, not for time
LIMITS = TcpLimits(idle_timeout=1.0, message_timeout=0.5, max_connections=4)

Rcode = dns.rcode.Rcode


@pytest.fixture
async def server(index: ZoneIndex) -> AsyncIterator[DnsServer]:
    server = await start_dns(index, LOCALHOST, 0, limits=LIMITS)
    try:
        yield server
    finally:
        await server.close()


# --- talking to the server --------------------------------------------------------------


@dataclass
class Reply:
    """The header of a dig or kdig answer, and its full text."""

    status: str
    flags: set[str]
    answers: int
    text: str


async def run(*argv: str) -> str:
    """Run a peer program without blocking the loop that serves it; its stdout."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, f"{argv} failed: {stdout.decode()}{stderr.decode()}"
    return stdout.decode()


def parse(text: str) -> Reply:
    # dig writes "status: X," and "flags: a b;", kdig "status: X;" and "Flags: a b;".
    status = re.search(r"status: (\w+)", text)
    flags = re.search(r"flags: ([a-z ]*);", text, re.IGNORECASE)
    answers = re.search(r"ANSWER: (\d+)", text)
    assert status and flags and answers, text
    return Reply(status[1], set(flags[1].split()), int(answers[1]), text)


async def dig(server: DnsServer, *args: str) -> Reply:
    return parse(
        await run(
            program("dig"),
            f"@{server.host}",
            "-p",
            str(server.port),
            "+norec",
            "+time=3",
            "+tries=1",
            *args,
        )
    )


async def kdig(server: DnsServer, *args: str) -> Reply:
    return parse(
        await run(
            program("kdig"),
            f"@{server.host}",
            "-p",
            str(server.port),
            "+norec",
            "+timeout=3",
            "+retry=0",
            *args,
        )
    )


CLIENTS = {"dig": dig, "kdig": kdig}


async def read_message(reader: asyncio.StreamReader) -> bytes:
    (length,) = struct.unpack("!H", await reader.readexactly(2))
    return await reader.readexactly(length)


async def closed_by_server(reader: asyncio.StreamReader) -> None:
    """Return once the server has closed (or reset) the connection; fail after TIMEOUT."""

    async def drain() -> None:
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass  # abort() sends a reset: closed all the same

    await asyncio.wait_for(drain(), TIMEOUT)


async def still_answers(server: DnsServer) -> None:
    """A UDP and a TCP query, from dnspython, both get the right answer."""
    q = dns.message.make_query(name("host"), "A")
    udp = await dns.asyncquery.udp(q, server.host, port=server.port, timeout=TIMEOUT)
    tcp = await dns.asyncquery.tcp(q, server.host, port=server.port, timeout=TIMEOUT)
    for r in (udp, tcp):
        assert r.rcode() == Rcode.NOERROR
        assert r.answer[0][0].to_text() == "192.0.2.1"


# --- answers through the real clients ---------------------------------------------------


@pytest.mark.peer("dig")
@pytest.mark.peer("kdig")
@pytest.mark.parametrize("client", CLIENTS)
async def test_authoritative_a_answer(server: DnsServer, client: str) -> None:
    reply = await CLIENTS[client](server, name("host"), "A")
    assert reply.status == "NOERROR"
    assert {"qr", "aa"} <= reply.flags
    assert "ra" not in reply.flags and "tc" not in reply.flags
    assert reply.answers == 1
    assert re.search(
        rf"^{re.escape(name('host'))}\.\s+60\s+IN\s+A\s+192\.0\.2\.1$", reply.text, re.M
    )


@pytest.mark.peer("dig")
@pytest.mark.peer("kdig")
@pytest.mark.parametrize("client", CLIENTS)
async def test_nxdomain_with_soa(server: DnsServer, client: str) -> None:
    reply = await CLIENTS[client](server, name("nobody"), "A")
    assert reply.status == "NXDOMAIN"
    assert "aa" in reply.flags
    assert reply.answers == 0
    assert re.search(r"IN\s+SOA\s+ns1\.example\.net\. hostmaster\.example\.net\. 42 ", reply.text)


@pytest.mark.peer("dig")
@pytest.mark.peer("kdig")
@pytest.mark.parametrize("client", CLIENTS)
async def test_refused_outside_our_zones(server: DnsServer, client: str) -> None:
    reply = await CLIENTS[client](server, "www.example.org", "A")
    assert reply.status == "REFUSED"
    assert "aa" not in reply.flags and "ra" not in reply.flags


@pytest.mark.peer("dig")
async def test_question_case_is_echoed(server: DnsServer) -> None:
    reply = await dig(server, "HoSt.DYN.example.NET", "A")
    assert re.search(r"^;HoSt\.DYN\.example\.NET\.\s+IN\s+A$", reply.text, re.M)
    assert re.search(r"^HoSt\.DYN\.example\.NET\.\s+60\s+IN\s+A\s+192\.0\.2\.1$", reply.text, re.M)


@pytest.mark.peer("dig")
@pytest.mark.peer("kdig")
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("edns", ["+noedns", "+edns=0"])
async def test_truncated_over_udp_then_complete_over_tcp(
    server: DnsServer, client: str, edns: str
) -> None:
    ask = CLIENTS[client]
    udp = await ask(server, edns, "+ignore", "+notcp", name("many"), "A")
    assert {"qr", "aa", "tc"} <= udp.flags
    assert udp.answers == 0
    tcp = await ask(server, edns, "+tcp", name("many"), "A")
    assert "tc" not in tcp.flags and "aa" in tcp.flags
    assert tcp.answers == MANY
    # Left alone, the client falls back to TCP by itself.
    fallback = await ask(server, edns, name("many"), "A")
    assert fallback.answers == MANY


@pytest.mark.peer("dig")
async def test_any_is_minimal(server: DnsServer) -> None:
    for transport in ("+notcp", "+tcp"):
        reply = await dig(server, transport, name("host"), "ANY")
        assert reply.status == "NOERROR"
        assert reply.answers == 1


async def test_dnspython_falls_back_to_tcp(server: DnsServer) -> None:
    q = dns.message.make_query(name("many"), "A", use_edns=0)
    udp = await dns.asyncquery.udp(q, LOCALHOST, port=server.port, timeout=TIMEOUT)
    assert udp.flags & dns.flags.TC
    assert udp.answer == []
    r, used_tcp = await dns.asyncquery.udp_with_fallback(
        q, LOCALHOST, port=server.port, timeout=TIMEOUT
    )
    assert used_tcp
    assert len(r.answer[0]) == MANY
    assert r.flags & dns.flags.AA


# --- TCP connection handling -------------------------------------------------------------


async def test_pipelined_queries_are_answered_in_order(server: DnsServer) -> None:
    queries = [dns.message.make_query(name(label), "A") for label in ("host", "nobody", "many")]
    reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
    try:
        writer.write(b"".join(frame(q.to_wire()) for q in queries))
        replies = [
            dns.message.from_wire(await asyncio.wait_for(read_message(reader), TIMEOUT))
            for _ in queries
        ]
    finally:
        writer.close()
    assert [r.id for r in replies] == [q.id for q in queries]
    assert [r.rcode() for r in replies] == [Rcode.NOERROR, Rcode.NXDOMAIN, Rcode.NOERROR]
    assert len(replies[2].answer[0]) == MANY


@pytest.mark.peer("dig")
async def test_a_stalled_client_does_not_block_others(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
    try:
        writer.write(b"\x00")  # half a length prefix, and then nothing
        await writer.drain()
        reply = await dig(server, "+tcp", name("host"), "A")
        assert reply.status == "NOERROR" and reply.answers == 1
        await still_answers(server)
        # The slow client itself is dropped once its message is overdue.
        await closed_by_server(reader)
    finally:
        writer.close()


async def test_a_slow_client_is_dropped_mid_message(server: DnsServer) -> None:
    wire = frame(dns.message.make_query(name("host"), "A").to_wire())
    reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
    try:
        writer.write(wire[:-1])
        await closed_by_server(reader)
    finally:
        writer.close()


async def test_an_idle_connection_is_closed_after_its_answers(server: DnsServer) -> None:
    q = dns.message.make_query(name("host"), "A")
    reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
    try:
        writer.write(frame(q.to_wire()))
        r = dns.message.from_wire(await asyncio.wait_for(read_message(reader), TIMEOUT))
        assert r.id == q.id
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b"", "a clean close"
    finally:
        writer.close()


async def test_half_closed_client_still_gets_its_answer(server: DnsServer) -> None:
    q = dns.message.make_query(name("host"), "A")
    reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
    try:
        writer.write(frame(q.to_wire()))
        writer.write_eof()
        r = dns.message.from_wire(await asyncio.wait_for(read_message(reader), TIMEOUT))
        assert r.id == q.id and r.answer
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    finally:
        writer.close()


async def test_connections_over_the_limit_are_turned_away(server: DnsServer) -> None:
    q = dns.message.make_query(name("host"), "A")
    held = []
    try:
        for _ in range(LIMITS.max_connections):
            reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
            held.append(writer)
            # An answer proves the server has taken the connection on.
            writer.write(frame(q.to_wire()))
            await asyncio.wait_for(read_message(reader), TIMEOUT)
        assert server.tcp_connections == LIMITS.max_connections
        reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
        held.append(writer)
        await closed_by_server(reader)
        # UDP does not count against the TCP limit.
        r = await dns.asyncquery.udp(q, LOCALHOST, port=server.port, timeout=TIMEOUT)
        assert r.answer
    finally:
        for writer in held:
            writer.close()


async def test_tcp_garbage_gets_formerr_and_the_connection_lives_on(server: DnsServer) -> None:
    q = dns.message.make_query(name("host"), "A")
    reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
    try:
        writer.write(frame(b"\x12\x34\x01\x00\x00\x01" + b"\xff" * 20))
        garbage_reply = await asyncio.wait_for(read_message(reader), TIMEOUT)
        assert garbage_reply[:2] == b"\x12\x34"
        assert garbage_reply[3] & 0xF == Rcode.FORMERR
        writer.write(frame(q.to_wire()))
        r = dns.message.from_wire(await asyncio.wait_for(read_message(reader), TIMEOUT))
        assert r.id == q.id and r.answer
    finally:
        writer.close()


async def test_a_zero_length_message_ends_the_connection(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
    try:
        writer.write(b"\x00\x00")
        await closed_by_server(reader)
        await still_answers(server)
    finally:
        writer.close()


# --- UDP robustness -----------------------------------------------------------------------


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.replies.put_nowait(data)


async def test_udp_garbage_then_a_valid_query(
    server: DnsServer, index: ZoneIndex, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(1035)
    packets = [rng.randbytes(rng.randrange(0, 200)) for _ in range(300)]
    packets += [b"\x00" * 12, b"\xff" * 12, b"\x00\x01\x80" + b"\x00" * 9, b"\x00" * 512]
    head = dns.message.make_query(name("host"), "A").to_wire()  # up to the largest datagram
    packets += [head + rng.randbytes(size) for size in (5000, 65507 - len(head))]
    loop = asyncio.get_running_loop()
    transport, collector = await loop.create_datagram_endpoint(
        _Collector, remote_addr=(LOCALHOST, server.port)
    )
    try:
        with caplog.at_level(logging.ERROR):
            for packet in packets:
                transport.sendto(packet)
                # The sans-I/O core says whether this one deserves a reply; wait for it.
                expected = answer(packet, index, tcp=False)
                if expected is not None:
                    reply = await asyncio.wait_for(collector.replies.get(), TIMEOUT)
                    assert reply[:2] == packet[:2]
            q = dns.message.make_query(name("host"), "A")
            transport.sendto(q.to_wire())
            r = dns.message.from_wire(await asyncio.wait_for(collector.replies.get(), TIMEOUT))
            assert r.id == q.id
            assert r.answer[0][0].to_text() == "192.0.2.1"
        assert [record for record in caplog.records if record.name.startswith("homing")] == []
    finally:
        transport.close()


# --- addresses and lifecycle --------------------------------------------------------------


@pytest.mark.peer("dig")
async def test_ipv6_loopback(index: ZoneIndex) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        server = await start_dns(index, "::1", 0, limits=LIMITS)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert server.host == "::1"
        for transport in ("+notcp", "+tcp"):
            reply = await dig(server, transport, name("host"), "AAAA")
            assert reply.status == "NOERROR" and "aa" in reply.flags
            assert "2001:db8::1" in reply.text
    finally:
        await server.close()


async def test_reuse_port_lets_workers_share_the_port(index: ZoneIndex) -> None:
    first = await start_dns(index, LOCALHOST, 0, reuse_port=True, limits=LIMITS)
    try:
        second = await start_dns(index, LOCALHOST, first.port, reuse_port=True, limits=LIMITS)
        try:
            assert second.port == first.port
            await still_answers(second)
        finally:
            await second.close()
    finally:
        await first.close()


async def test_a_taken_port_is_an_error(server: DnsServer, index: ZoneIndex) -> None:
    with pytest.raises(OSError):
        await start_dns(index, LOCALHOST, server.port)


async def test_close_drops_clients_and_frees_the_port(index: ZoneIndex) -> None:
    server = await start_dns(index, LOCALHOST, 0, limits=LIMITS)
    reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
    try:
        writer.write(b"\x00")
        await asyncio.wait_for(server.close(), TIMEOUT)
        await closed_by_server(reader)
    finally:
        writer.close()
    again = await start_dns(index, LOCALHOST, server.port, limits=LIMITS)
    await again.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8053", ("127.0.0.1", 8053)),
        ("[::1]:53", ("::1", 53)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:53", ("localhost", 53)),
        (" [2001:db8::1]:5353 ", ("2001:db8::1", 5353)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("127.0.0.1", "not HOST:PORT"),
        (":53", "not HOST:PORT"),
        ("::1:53", "brackets"),
        ("[::1]", "brackets"),
        ("[nope]:53", "not an IPv6 address"),
        ("127.0.0.1:65536", "port must be"),
        ("127.0.0.1:-1", "port must be"),
        ("127.0.0.1:x", "port must be"),
    ],
)
def test_parse_listen_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_listen(text)


@pytest.mark.parametrize(
    "kwargs",
    [{"idle_timeout": 0}, {"message_timeout": -1.0}, {"max_connections": 0}],
)
def test_tcp_limits_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="TcpLimits"):
        TcpLimits(**kwargs)  # type: ignore[arg-type]
