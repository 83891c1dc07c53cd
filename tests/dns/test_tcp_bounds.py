"""DNS over TCP under attack: a flood while an UPDATE is in hand, too many connections
from one source, a message that never completes. Real sockets against the real server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import AsyncIterator

import dns.asyncquery
import dns.message
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest
import sqlalchemy as sa

from homing.dns.access import AccessLoader
from homing.dns.dispatch import Dispatcher
from homing.dns.framing import frame
from homing.dns.index import ZoneIndex
from homing.dns.server import DnsServer, TcpLimits, start_dns
from homing.service import zones
from homing.service.journal import Follower
from homing.service.keys import add_key
from homing.store.db import Database
from tests.dns.test_server import LOCALHOST, TIMEOUT, closed_by_server, read_message
from tests.dns.zone import name

ZONE = "upd.example.net"
FLOOD = 100 * 1024 * 1024
CHUNK = 64 * 1024
# Past this many sends in a row that find the kernel's buffers full, with the loop turned
# over between them, the server is not reading: the flood has nowhere left to go.
FULL = 200


@pytest.fixture
async def primary(db: Database) -> AsyncIterator[tuple[DnsServer, dict[str, tuple[str, str]]]]:
    """A server that takes signed UPDATEs for ZONE, and the key's text for dnspython."""
    await zones.add_zone(db, ZONE, ns=["ns1.example.org"])
    key = await add_key(db, "flood-key", zone=ZONE)
    index = ZoneIndex()
    follower = Follower(db, index)
    await follower.sync()
    access = AccessLoader(db)
    await access.reload()
    server = await start_dns(
        index, LOCALHOST, 0, dispatch=lambda r: Dispatcher(index, db, access, r)
    )
    try:
        yield server, {key.name: (key.algorithm, key.secret)}
    finally:
        await server.close()
        db.on_commit.remove(follower.committed)


@contextlib.asynccontextmanager
async def store_held(db: Database) -> AsyncIterator[None]:
    """Another writer holds the store: an UPDATE waits for it, in hand, for as long."""
    if db.is_sqlite:
        holder = sqlite3.connect(str(db.url.database), isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
            holder.execute("COMMIT")
        finally:
            holder.close()
        return
    async with db.engine.connect() as conn:
        await conn.execute(sa.text("LOCK TABLE journal IN EXCLUSIVE MODE"))
        yield
        await conn.rollback()


async def receive_message(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
        more = await loop.sock_recv(sock, 65536)
        assert more, "closed before the answer"
        data += more
    return data[2 : 2 + int.from_bytes(data[:2], "big")]


async def test_a_flood_while_an_update_is_in_hand_stays_in_the_kernel(
    db: Database, primary: tuple[DnsServer, dict[str, tuple[str, str]]]
) -> None:
    server, key = primary
    update = dns.update.UpdateMessage(ZONE)
    update.add(f"www.{ZONE}.", 60, "A", "192.0.2.7")
    update.use_tsig(dns.tsigkeyring.from_text(key), next(iter(key)))
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with store_held(db):
            await loop.sock_connect(sock, (LOCALHOST, server.port))
            await loop.sock_sendall(sock, frame(update.to_wire()))
            # Then valid pipelined queries, as fast as the socket takes them.
            query = frame(dns.message.make_query(name("host"), "A").to_wire())
            chunk = query * (CHUNK // len(query))
            sent = full = most = 0
            while sent < FLOOD and full < FULL:
                try:
                    sent += sock.send(chunk)
                    full = 0
                except BlockingIOError:
                    full += 1
                await asyncio.sleep(0)  # the server's turn: it reads now if it reads at all
                most = max(most, server.tcp_buffered())
            assert sent < FLOOD, "the server kept reading while the UPDATE was in hand"
            # What the server holds is at most one read's worth.
            assert most <= 1024 * 1024, most
            # Others are answered all the while, over UDP and TCP.
            soa = dns.message.make_query(ZONE, "SOA")
            for ask in (dns.asyncquery.udp, dns.asyncquery.tcp):
                r = await ask(soa, LOCALHOST, port=server.port, timeout=TIMEOUT)
                assert r.rcode() == dns.rcode.Rcode.NOERROR and r.answer
        # The store free again, the UPDATE is applied and answered, then the queries.
        reply = dns.message.from_wire(
            await asyncio.wait_for(receive_message(sock), TIMEOUT), keyring=False
        )
        assert reply.id == update.id and reply.rcode() == dns.rcode.Rcode.NOERROR
    finally:
        sock.close()


LIMITS = TcpLimits(max_connections=8, max_per_source=2)


@pytest.fixture
async def limited(index: ZoneIndex) -> AsyncIterator[DnsServer]:
    server = await start_dns(index, LOCALHOST, 0, limits=LIMITS)
    try:
        yield server
    finally:
        await server.close()


async def answered(
    server: DnsServer, source: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection from `source` that got an answer (so the server took it on)."""
    reader, writer = await asyncio.open_connection(LOCALHOST, server.port, local_addr=(source, 0))
    q = dns.message.make_query(name("host"), "A")
    writer.write(frame(q.to_wire()))
    r = dns.message.from_wire(await asyncio.wait_for(read_message(reader), TIMEOUT))
    assert r.id == q.id and r.rcode() == dns.rcode.Rcode.NOERROR
    return reader, writer


async def test_one_source_cannot_take_every_connection(limited: DnsServer) -> None:
    held = []
    try:
        for _ in range(LIMITS.max_per_source):
            held.append((await answered(limited, "127.0.0.1"))[1])
        reader, writer = await asyncio.open_connection(
            LOCALHOST, limited.port, local_addr=("127.0.0.1", 0)
        )
        held.append(writer)
        await closed_by_server(reader)
        assert limited.tcp_connections == LIMITS.max_per_source
        # Another source is served all the while, and the first keeps what it holds.
        held.append((await answered(limited, "127.0.0.2"))[1])
        assert limited.tcp_connections == LIMITS.max_per_source + 1
    finally:
        for writer in held:
            writer.close()


async def test_a_source_gets_its_share_back_when_it_closes(limited: DnsServer) -> None:
    first = [await answered(limited, "127.0.0.1") for _ in range(LIMITS.max_per_source)]
    reader, writer = first[0]
    writer.close()
    await closed_by_server(reader)
    try:
        held = [(await answered(limited, "127.0.0.1"))[1]]
    finally:
        for _, writer in first:
            writer.close()
    for writer in held:
        writer.close()


async def test_half_a_message_is_dropped_with_the_default_limits(index: ZoneIndex) -> None:
    server = await start_dns(index, LOCALHOST, 0)
    try:
        wire = frame(dns.message.make_query(name("host"), "A").to_wire())
        reader, writer = await asyncio.open_connection(LOCALHOST, server.port)
        try:
            writer.write(wire[: len(wire) // 2])
            await closed_by_server(reader)  # within TcpLimits().message_timeout
            assert server.tcp_connections == 0
        finally:
            writer.close()
    finally:
        await server.close()
