"""Answers from a signed zone, in process: with DO the RRSIGs of every RRset and the NSEC3
records of each denial; without DO none of them, as before signing."""

from __future__ import annotations

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
import sqlalchemy as sa

from homing.dns.answer import Responder
from homing.dns.index import ZoneIndex
from homing.dns.resolution import resolve
from homing.dns.signed import secure
from homing.domain.records import RRsetValue
from homing.service import dnssec
from homing.service.journal import entries_after, stream_zone
from homing.store.db import Database
from homing.store.schema import zones as zones_table
from tests.dnssec.test_signing import ZONE, new_zone, put

ORIGIN = dns.name.from_text(ZONE)


async def signed_responder(db: Database, *values: RRsetValue) -> Responder:
    """ZONE with `values`, signed, loaded into an index as `homing serve` loads it."""
    await new_zone(db, *values)
    await dnssec.enable(db, ZONE)
    index = ZoneIndex()

    async def load(conn: sa.ext.asyncio.AsyncConnection) -> None:
        zone_id = await conn.scalar(sa.select(zones_table.c.id).where(zones_table.c.name == ZONE))
        await stream_zone(conn, zone_id, index)

    await db.read(load)
    return Responder(index)


@pytest.fixture
async def responder(db: Database) -> Responder:
    return await signed_responder(
        db,
        RRsetValue(f"h1.{ZONE}", "A", 60, ("192.0.2.1",)),
        RRsetValue(f"*.w.{ZONE}", "A", 60, ("192.0.2.7",)),
        RRsetValue(f"a.b.{ZONE}", "TXT", 60, ('"deep"',)),
        RRsetValue(f"child.{ZONE}", "NS", 3600, (f"ns.child.{ZONE}.",)),
        RRsetValue(f"ns.child.{ZONE}", "A", 3600, ("192.0.2.9",)),
    )


def ask(responder: Responder, name: str, rdtype: str, *, do: bool) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=do)
    wire = responder.answer(query.to_wire(), tcp=True)
    assert wire is not None
    return dns.message.from_wire(wire)


def keys(responder: Responder) -> dict[dns.name.Name, dns.rrset.RRset]:
    found = ask(responder, ZONE, "DNSKEY", do=True).find_rrset(
        dns.message.ANSWER, ORIGIN, 1, dns.rdatatype.DNSKEY
    )
    return {ORIGIN: found}


def validated(message: dns.message.Message, section: list[dns.rrset.RRset], key: dict) -> set:
    """The types of the RRsets in `section` that a signature there validates."""
    good = set()
    for rrset in section:
        if rrset.rdtype == dns.rdatatype.RRSIG:
            continue
        sigs = [r for r in section if r.rdtype == dns.rdatatype.RRSIG and r.name == rrset.name]
        for sig in sigs:
            mine = [s for s in sig if s.type_covered == rrset.rdtype]
            if mine:
                dns.dnssec.validate(
                    rrset, dns.rrset.from_rdata_list(rrset.name, rrset.ttl, mine), key
                )
                good.add((rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype)))
    return good


async def test_with_do_every_rrset_comes_signed(responder: Responder) -> None:
    key = keys(responder)
    reply = ask(responder, f"h1.{ZONE}", "A", do=True)
    assert (f"h1.{ZONE}.", "A") in validated(reply, reply.answer, key)
    plain = ask(responder, f"h1.{ZONE}", "A", do=False)
    assert all(r.rdtype != dns.rdatatype.RRSIG for r in plain.answer)
    wild = ask(responder, f"x.w.{ZONE}", "A", do=True)
    assert (f"x.w.{ZONE}.", "A") in validated(wild, wild.answer, key)
    assert any(r.rdtype == dns.rdatatype.NSEC3 for r in wild.authority), "no next-closer proof"


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "at_least"),
    [
        (f"nothing.{ZONE}", "A", dns.rcode.NXDOMAIN, 2),  # encloser, next closer, wildcard
        (f"h1.{ZONE}", "TXT", dns.rcode.NOERROR, 1),  # NODATA: the name's own NSEC3
        (f"b.{ZONE}", "A", dns.rcode.NOERROR, 1),  # an empty non-terminal
        (f"child.{ZONE}", "A", dns.rcode.NOERROR, 1),  # an insecure delegation
        (f"x.w.{ZONE}", "TXT", dns.rcode.NOERROR, 3),  # NODATA at a wildcard (RFC 5155 7.2.5)
        (f"no.such.b.{ZONE}", "A", dns.rcode.NXDOMAIN, 3),  # below an empty non-terminal
    ],
)
async def test_with_do_denials_carry_signed_nsec3(
    responder: Responder, name: str, rdtype: str, rcode: int, at_least: int
) -> None:
    key = keys(responder)
    reply = ask(responder, name, rdtype, do=True)
    assert reply.rcode() == rcode
    nsec3 = [r for r in reply.authority if r.rdtype == dns.rdatatype.NSEC3]
    assert len(nsec3) >= at_least, reply
    proven = validated(reply, reply.authority, key)
    assert all((r.name.to_text(), "NSEC3") in proven for r in nsec3)
    plain = ask(responder, name, rdtype, do=False)
    assert not [
        r for r in plain.authority if r.rdtype in (dns.rdatatype.NSEC3, dns.rdatatype.RRSIG)
    ]


async def test_signed_answers_over_udp_carry_their_rrsets_own_signatures(
    responder: Responder,
) -> None:
    key = keys(responder)
    query = dns.message.make_query(f"h1.{ZONE}", "A", want_dnssec=True)
    first = responder.answer(query.to_wire(), tcp=False)
    again = responder.answer(query.to_wire(), tcp=False)
    assert first is not None and first == again
    reply = dns.message.from_wire(first)
    assert (f"h1.{ZONE}.", "A") in validated(reply, reply.answer, key)
    (sigs,) = [r for r in reply.answer if r.rdtype == dns.rdatatype.RRSIG]
    (rrset,) = [r for r in reply.answer if r.rdtype == dns.rdatatype.A]
    assert {s.type_covered for s in sigs} == {dns.rdatatype.A} and sigs.ttl == rrset.ttl


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        (f"nothing.{ZONE}", "A"),
        (f"no.such.b.{ZONE}", "AAAA"),
        (f"deeper.still.h1.{ZONE}", "A"),
        (f"h1.{ZONE}", "TXT"),
        (f"b.{ZONE}", "A"),
    ],
)
async def test_denials_made_from_wire_equal_the_slow_paths(
    responder: Responder, name: str, rdtype: str
) -> None:
    """The hot path's NXDOMAIN and NODATA proofs (homing.dns.signed.denial) hold the very
    RRsets the dnspython path picks out, and validate."""
    key = keys(responder)
    qname = dns.name.from_text(name)
    resolution = resolve(responder.index, qname, dns.rdatatype.from_text(rdtype), 1)
    zone = responder.index.zones[ORIGIN]
    secure(zone, resolution, qname)
    for udp in (False, True):
        query = dns.message.make_query(name, rdtype, want_dnssec=True)
        wire = responder.answer(query.to_wire(), tcp=not udp)
        assert wire is not None
        reply = dns.message.from_wire(wire)
        assert reply.rcode() == resolution.rcode
        assert reply.flags & dns.flags.AA

        def seen(rrsets: list[dns.rrset.RRset]) -> set[tuple[object, ...]]:
            return {(r.name, r.rdtype, r.covers, r.ttl, frozenset(r)) for r in rrsets}

        assert seen(reply.authority) == seen(resolution.authority)
        assert not reply.answer
        nsec3 = [r for r in reply.authority if r.rdtype == dns.rdatatype.NSEC3]
        proven = validated(reply, reply.authority, key)
        assert nsec3 and all((r.name.to_text(), "NSEC3") in proven for r in nsec3)
        assert (f"{ZONE}.", "SOA") in proven


async def test_a_kept_nodata_reply_follows_every_change_in_the_zone(
    responder: Responder, db: Database
) -> None:
    """NODATA with DO over UDP is kept, filed by zone: a change at another name (a new
    serial, new NSEC3 records) is in the next reply, which still validates."""
    key = keys(responder)
    query = dns.message.make_query(f"h1.{ZONE}", "TXT", want_dnssec=True).to_wire()
    first = responder.answer(query, tcp=False)
    assert first is not None and responder.answer(query, tcp=False) == first
    zone = responder.index.zones[ORIGIN]
    before = zone.serial
    await put(db, RRsetValue(f"h2.{ZONE}", "A", 60, ("192.0.2.2",)))

    await follow(db, responder, before)
    assert zone.serial > before
    again = responder.answer(query, tcp=False)
    assert again is not None and again != first
    reply = dns.message.from_wire(again)
    (soa,) = [r for r in reply.authority if r.rdtype == dns.rdatatype.SOA]
    assert next(iter(soa)).serial == zone.serial
    proven = validated(reply, reply.authority, key)
    assert (f"{ZONE}.", "SOA") in proven and any(t == "NSEC3" for _, t in proven)


async def follow(db: Database, responder: Responder, serial: int) -> None:
    """Apply to the responder's index the journal entries after `serial`, as a follower."""

    async def changes(conn: sa.ext.asyncio.AsyncConnection) -> list:
        zone_id = await conn.scalar(sa.select(zones_table.c.id).where(zones_table.c.name == ZONE))
        return await entries_after(conn, zone_id, ZONE, serial)

    for entry in await db.read(changes):
        responder.index.apply(entry)


async def test_denials_stay_proven_when_signing_goes_off_and_on_again(
    responder: Responder, db: Database
) -> None:
    """The hashed owners a server listed for its proofs are listed again as the chain
    goes and comes back (new keys) in the same zone in memory."""
    name = f"nothing.{ZONE}"
    assert ask(responder, name, "A", do=True).rcode() == dns.rcode.NXDOMAIN
    zone = responder.index.zones[ORIGIN]
    serial = zone.serial
    await dnssec.disable(db, ZONE, at_once=True)
    await follow(db, responder, serial)
    unsigned = ask(responder, name, "A", do=True)
    assert not [r for r in unsigned.authority if r.rdtype == dns.rdatatype.NSEC3]
    serial = zone.serial
    await dnssec.enable(db, ZONE)
    await follow(db, responder, serial)
    assert responder.index.zones[ORIGIN] is zone, "the same zone in memory throughout"
    key = keys(responder)
    reply = ask(responder, name, "A", do=True)
    nsec3 = [r for r in reply.authority if r.rdtype == dns.rdatatype.NSEC3]
    proven = validated(reply, reply.authority, key)
    assert len(nsec3) >= 2 and all((r.name.to_text(), "NSEC3") in proven for r in nsec3)
