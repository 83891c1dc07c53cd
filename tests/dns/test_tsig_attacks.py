"""TSIG attacks against the real DNS server and store: forged UPDATEs, bad MACs on every
signed path, replayed UPDATEs (also into another worker). Each shows the attack refused
and the zone unchanged."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import dns.asyncquery
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update
import pytest
import sqlalchemy as sa

from homing.dns.access import AccessLoader
from homing.dns.dispatch import Dispatcher
from homing.dns.index import ZoneIndex
from homing.dns.server import DnsServer, start_dns
from homing.service import zones
from homing.service.journal import Follower
from homing.service.keys import add_key
from homing.store.db import Database
from homing.store.schema import journal, rrsets
from tests.dns.tsigwire import forgery, with_mac

ZONE = "sig.example.net"
VICTIM = f"victim.{ZONE}"


@dataclass
class Node:
    """One worker: its index, followed from the store, and its DNS server."""

    db: Database
    index: ZoneIndex
    server: DnsServer
    follower: Follower

    async def close(self) -> None:
        await self.server.close()
        self.db.on_commit.remove(self.follower.committed)


async def start_node(db: Database) -> Node:
    index = ZoneIndex()
    follower = Follower(db, index)
    await follower.sync()
    access = AccessLoader(db)
    await access.reload()
    server = await start_dns(
        index, "127.0.0.1", 0, dispatch=lambda r: Dispatcher(index, db, access, r)
    )
    return Node(db, index, server, follower)


@pytest.fixture
async def node(db: Database) -> AsyncIterator[Node]:
    await zones.add_zone(db, ZONE, ns=["ns1.example.org"])
    await add_key(db, "zk", zone=ZONE, secret=SECRET)
    started = await start_node(db)
    try:
        yield started
    finally:
        await started.close()


SECRET = "L+ZBF39M36X744cbFmRi/HNC766UtmbCvUVb305/4mI="
KEY = dns.tsig.Key("zk", SECRET, dns.tsig.HMAC_SHA256)


async def exchange(server: DnsServer, wire: bytes, *, tcp: bool = False) -> bytes:
    """One raw message out, one back (the first, for a transfer)."""

    def run() -> bytes:
        if tcp:
            with socket.create_connection((server.host, server.port), timeout=5) as s:
                s.sendall(struct.pack("!H", len(wire)) + wire)
                size = struct.unpack("!H", s.recv(2, socket.MSG_WAITALL))[0]
                return s.recv(size, socket.MSG_WAITALL)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(wire, (server.host, server.port))
            return s.recv(65535)

    return await asyncio.to_thread(run)


def signed(update: dns.message.Message) -> bytes:
    update.use_tsig(KEY)
    return update.to_wire()


def set_a(address: str) -> dns.update.UpdateMessage:
    update = dns.update.UpdateMessage(ZONE)
    update.replace(dns.name.from_text(VICTIM), 60, "A", address)
    return update


async def zone_state(db: Database) -> tuple[int, list[tuple[str, str, str]]]:
    """The journal's length and every RRset: what an attack must leave as it was."""

    async def read(conn: sa.ext.asyncio.AsyncConnection) -> tuple[int, list[tuple[str, str, str]]]:
        size = await conn.scalar(sa.select(sa.func.count()).select_from(journal))
        rows = await conn.execute(
            sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.rdatas).order_by(
                rrsets.c.name, rrsets.c.rtype
            )
        )
        return int(size or 0), [(r.name, r.rtype, r.rdatas) for r in rows]

    return await db.read(read)


def unsigned_error(reply: bytes, error: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.from_wire(reply, keyring=False)
    assert response.rcode() == dns.rcode.Rcode.NOTAUTH
    assert response.tsig_error == error
    assert response.mac == b""
    return response


async def test_forged_update_is_refused_and_changes_nothing(node: Node, db: Database) -> None:
    """Knowing the key's name only: the request whose "MAC" is the forged UPDATE's start
    gets FORMERR without any TSIG, the same request with a MAC of the right size gets an
    unsigned BADSIG, and the forged UPDATE built from either answer is refused."""
    assert await exchange(node.server, signed(set_a("192.0.2.1")))
    before = await zone_state(db)
    forge = forgery("zk", dns.tsig.HMAC_SHA256, ZONE, f"evil.{ZONE}", "203.0.113.66")

    answer = dns.message.from_wire(await exchange(node.server, forge.request), keyring=False)
    assert answer.rcode() == dns.rcode.Rcode.FORMERR
    assert answer.tsig is None

    sized = with_mac(forge.request, b"\xa5" * 32)
    reply = await exchange(node.server, sized)
    unsigned_error(reply, dns.rcode.Rcode.BADSIG)  # not BADTIME: the MAC is checked first
    for candidate in (forge.finish(reply), with_mac(forge.finish(reply), b"\xa5" * 32)):
        response = dns.message.from_wire(await exchange(node.server, candidate), keyring=False)
        assert response.rcode() in (dns.rcode.Rcode.FORMERR, dns.rcode.Rcode.NOTAUTH)
        assert response.mac in (None, b"")
    assert await zone_state(db) == before


async def test_bad_mac_with_a_good_time_is_badsig_unsigned(node: Node, db: Database) -> None:
    before = await zone_state(db)
    wire = signed(set_a("203.0.113.66"))
    for tcp in (False, True):
        reply = await exchange(node.server, with_mac(wire, b"\x00" * 32), tcp=tcp)
        response = unsigned_error(reply, dns.rcode.Rcode.BADSIG)
        assert response.opcode() == dns.opcode.Opcode.UPDATE
    assert await zone_state(db) == before


async def test_badtime_with_a_wrong_mac_is_badsig_unsigned(node: Node, db: Database) -> None:
    before = await zone_state(db)
    wire = signed(set_a("203.0.113.66"))
    head = dns.message.from_wire(wire, keyring=False)
    assert head.tsig is not None
    old = head.tsig[0].time_signed - 3600
    unsigned_error(
        await exchange(node.server, with_mac(wire, b"\x11" * 32, time_signed=old)),
        dns.rcode.Rcode.BADSIG,
    )
    # The real MAC over an hour-old time: BADTIME, signed, so the client can trust it.
    stale = dns.update.UpdateMessage(ZONE)
    stale.replace(dns.name.from_text(VICTIM), 60, "A", "203.0.113.66")
    stale.use_tsig(KEY, fudge=10)
    real_time = dns.message.time.time
    dns.message.time.time = lambda: real_time() - 3600  # type: ignore[attr-defined]
    try:
        wire = stale.to_wire()
    finally:
        dns.message.time.time = real_time  # type: ignore[attr-defined]
    with pytest.raises(dns.tsig.PeerBadTime):
        dns.message.from_wire(
            await exchange(node.server, wire), keyring={KEY.name: KEY}, request_mac=stale.mac
        )
    assert await zone_state(db) == before


@pytest.mark.parametrize("kind", ["AXFR", "IXFR", "SOA", "NOTIFY"])
async def test_every_signed_path_refuses_a_bad_mac_unsigned(node: Node, kind: str) -> None:
    query = dns.message.make_query(ZONE, "SOA" if kind == "NOTIFY" else kind)
    if kind == "NOTIFY":
        query.set_opcode(dns.opcode.Opcode.NOTIFY)
    query.use_tsig(KEY)
    forged = with_mac(query.to_wire(), b"\x42" * 32)
    response = unsigned_error(
        await exchange(node.server, forged, tcp=kind == "AXFR"), dns.rcode.Rcode.BADSIG
    )
    assert not response.answer
    # The same query signed for real is answered and signed.
    good = await dns.asyncquery.tcp(query, node.server.host, port=node.server.port, timeout=5)
    assert good.had_tsig


async def test_a_replayed_update_does_not_undo_a_later_one(node: Node, db: Database) -> None:
    """A=1, then A=2, then the first UPDATE's bytes again (to this worker, and to another
    worker on the same store): the first answer again, A still 2, the journal as it was."""
    first = set_a("192.0.2.1")
    first_wire = signed(first)
    first_reply = await exchange(node.server, first_wire)
    assert dns.message.from_wire(first_reply, keyring=False).rcode() == dns.rcode.Rcode.NOERROR
    second = await exchange(node.server, signed(set_a("192.0.2.2")))
    assert dns.message.from_wire(second, keyring=False).rcode() == dns.rcode.Rcode.NOERROR
    before = await zone_state(db)

    url = db.engine.url.render_as_string(hide_password=False)
    other_db = Database(url, schema=db.schema)
    other = await start_node(other_db)
    try:
        for server in (node.server, other.server):
            again = await exchange(server, first_wire)
            # The first answer, signed over this copy's MAC, as a client verifies it.
            response = dns.message.from_wire(again, keyring={KEY.name: KEY}, request_mac=first.mac)
            assert response.rcode() == dns.rcode.Rcode.NOERROR
            assert await zone_state(db) == before
    finally:
        await other.close()
        await other_db.close()
    answer = await dns.asyncquery.udp(
        dns.message.make_query(VICTIM, "A"), node.server.host, port=node.server.port, timeout=5
    )
    assert [r.to_text() for r in answer.answer[0]] == ["192.0.2.2"]
