"""What homing makes of a parent's answer about a zone's DS: only an authoritative answer to
the question asked counts; garbage, a referral or an error changes nothing, and the
leader ends signing only once the parent has no DS and the TTLs have passed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest
import sqlalchemy as sa

from homing.service import dnssec, parentds
from homing.store.db import Database, Txn
from homing.store.schema import zones
from tests.dnssec.test_signing import ZONE, zone  # noqa: F401  (the fixture)

QNAME = dns.name.from_text(ZONE)
SOA = f"{ZONE}. 30 IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 1209600 10"
DS = "12345 13 2 " + "ab" * 32


def response(
    *, aa: bool = True, rcode: int = 0, answer: str = "", authority: str = SOA
) -> dns.message.Message:
    query = dns.message.make_query(QNAME, "DS")
    reply = dns.message.make_response(query)
    reply.flags = dns.flags.QR | (dns.flags.AA if aa else 0)
    reply.set_rcode(dns.rcode.Rcode(rcode))
    if answer:
        reply.answer.append(dns.rrset.from_text(QNAME, 30, "IN", *answer.split(" ", 1)))
    elif authority:
        reply.authority.append(dns.rrset.from_text_list(*_soa_parts(authority)))
    return reply


def _soa_parts(line: str) -> tuple[str, int, str, str, list[str]]:
    owner, ttl, klass, rtype, data = line.split(" ", 4)
    return owner, int(ttl), klass, rtype, [data]


def test_a_ds_answer_and_a_denial_are_read() -> None:
    found = parentds.judge("p", QNAME, response(answer=f"DS {DS}"))
    assert [d.to_text() for d in found.ds] == [DS] and found.ttl == 30
    none = parentds.judge("p", QNAME, response())
    assert none.ds == () and none.ttl == 10, "the negative TTL: the SOA minimum (RFC 2308)"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (lambda: response(aa=False), "not authoritative"),
        (lambda: response(rcode=dns.rcode.SERVFAIL), "SERVFAIL"),
        (lambda: response(rcode=dns.rcode.NXDOMAIN), "NXDOMAIN"),
        (lambda: response(answer=f"CNAME other.{ZONE}."), "CNAME"),
        (lambda: response(authority=""), "lame"),
    ],
)
def test_answers_not_to_act_on_are_errors(
    reply: Callable[[], dns.message.Message], reason: str
) -> None:
    with pytest.raises(parentds.ParentError, match=reason):
        parentds.judge("p", QNAME, reply())


def test_an_answer_to_another_question_is_an_error() -> None:
    other = dns.message.make_response(dns.message.make_query("elsewhere.example.", "DS"))
    other.flags |= dns.flags.AA
    with pytest.raises(parentds.ParentError, match="another question"):
        parentds.judge("p", QNAME, other)


class _Parent(asyncio.DatagramProtocol):
    """A parent name server on loopback answering every query with `answer(query)`."""

    def __init__(self, answer: Callable[[dns.message.Message], bytes]) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None
        self.asked = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.asked += 1
        assert self.transport is not None
        self.transport.sendto(self.answer(dns.message.from_wire(data)), addr)


@contextlib.asynccontextmanager
async def parent(
    answer: Callable[[dns.message.Message], bytes],
) -> AsyncIterator[tuple[_Parent, str]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Parent(answer), local_addr=("127.0.0.1", 0)
    )
    try:
        yield protocol, f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    finally:
        transport.close()


def _no_ds(query: dns.message.Message) -> bytes:
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.AA
    reply.authority.append(
        dns.rrset.from_text_list(*_soa_parts(SOA.replace(" 30 ", " 0 ").replace(" 10", " 0")))
    )
    return reply.to_wire()


async def _soa_ttl(db: Database, ttl: int) -> None:
    async def unit(txn: Txn) -> None:
        await txn.conn.execute(sa.update(zones).where(zones.c.name == ZONE).values(soa_ttl=ttl))

    await db.write(unit)


async def _signed(db: Database) -> bool:
    try:
        await dnssec.ds_records(db, ZONE)
    except dnssec.DnssecError:
        return False
    return True


@pytest.mark.parametrize(
    "garbage",
    [
        lambda q: b"\x00\x01garbage",
        lambda q: dns.message.make_response(q).to_wire(),  # not authoritative: a referral
        lambda q: _no_ds(dns.message.make_query("other.example.", "DS")),  # another question
    ],
    ids=["bytes", "not-aa", "other-question"],
)
async def test_a_parent_answering_garbage_changes_nothing(
    zone: Database,  # noqa: F811
    garbage: Callable[[dns.message.Message], bytes],
) -> None:
    await dnssec.enable(zone, ZONE)
    await dnssec.disable(zone, ZONE)
    await _soa_ttl(zone, 0)
    watch = dnssec.ParentWatch(interval=0)
    async with parent(garbage) as (server, address):
        await dnssec.set_parent_servers(zone, ZONE, [address])
        for _ in range(3):
            assert await watch.check(zone) == []
        assert server.asked >= 3
    assert await _signed(zone), "still signed"


async def test_the_zone_is_unsigned_once_every_parent_server_has_no_ds(
    zone: Database,  # noqa: F811
) -> None:
    await dnssec.enable(zone, ZONE)
    await dnssec.disable(zone, ZONE)
    watch = dnssec.ParentWatch(interval=0)
    async with parent(_no_ds) as (_, good), parent(lambda q: b"junk") as (_, bad):
        await dnssec.set_parent_servers(zone, ZONE, [good, bad])
        assert await watch.check(zone) == [], "one server's garbage: not all agree"
        await dnssec.set_parent_servers(zone, ZONE, [good])
        assert await watch.check(zone) == [], "the DNSKEY TTL (the SOA's, 60 s) to wait"
        assert await _signed(zone)
        await _soa_ttl(zone, 0)  # the DNSKEY TTL: nothing left to wait for
        (done,) = await watch.check(zone)
    assert "the parent has no DS; unsigned" in done
    assert not await _signed(zone)
