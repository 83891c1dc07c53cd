"""Transfers of a signed zone give each RRSIG the TTL of the RRset it covers (RFC 4034 3),
though the store keeps an owner's signatures as one RRset: a secondary serves the TTLs it
was sent."""

from __future__ import annotations

import dns.rdatatype
import dns.rrset
import sqlalchemy as sa

from homing.dns import xfr
from homing.dns.index import ZoneIndex
from homing.domain.records import RRsetValue
from homing.service import dnssec
from homing.service.journal import entries_after, stream_zone
from homing.store.db import Database
from homing.store.schema import zones as zones_table
from tests.dnssec.test_signing import ZONE, new_zone, put, serial


def signature_ttls(rrsets: list[dns.rrset.RRset]) -> dict[tuple[str, str], set[int]]:
    """(owner, type) of every RRset and RRSIG record: the TTLs they were sent with."""
    ttls: dict[tuple[str, str], set[int]] = {}
    for rrset in rrsets:
        for rdata in rrset:
            if rrset.rdtype == dns.rdatatype.RRSIG:
                key = (rrset.name.to_text(), "RRSIG " + dns.rdatatype.to_text(rdata.type_covered))
            else:
                key = (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype))
            ttls.setdefault(key, set()).add(rrset.ttl)
    return ttls


def assert_signatures_take_their_rrsets_ttl(rrsets: list[dns.rrset.RRset]) -> int:
    """Every RRSIG sent with its covered RRset's TTL, when that RRset is sent too; how many."""
    ttls = signature_ttls(rrsets)
    checked = 0
    for (owner, kind), sent in ttls.items():
        if kind.startswith("RRSIG ") and (owner, kind[6:]) in ttls:
            assert sent == ttls[owner, kind[6:]], (owner, kind, sent, ttls[owner, kind[6:]])
            checked += 1
    return checked


async def index_and_entries(db: Database, since: int) -> tuple[ZoneIndex, list]:
    index = ZoneIndex()

    async def read(conn: sa.ext.asyncio.AsyncConnection) -> list:
        zone_id = await conn.scalar(sa.select(zones_table.c.id).where(zones_table.c.name == ZONE))
        await stream_zone(conn, zone_id, index)
        return await entries_after(conn, zone_id, ZONE, since)

    return index, await db.read(read)


async def test_axfr_and_ixfr_send_each_signature_with_its_rrsets_ttl(db: Database) -> None:
    await new_zone(db, RRsetValue(f"h1.{ZONE}", "A", 60, ("192.0.2.1",)))
    await dnssec.enable(db, ZONE)
    since = await serial(db)
    await put(
        db,
        RRsetValue(f"h1.{ZONE}", "AAAA", 900, ("2001:db8::1",)),  # beside the A's 60 s
        RRsetValue(f"h1.{ZONE}", "TXT", 300, ('"cam"',)),
        RRsetValue(f"h1.{ZONE}", "A", 60, ("192.0.2.9",)),
    )
    index, entries = await index_and_entries(db, since)
    zone = index.zone(ZONE)
    assert zone is not None
    axfr = xfr.axfr_records(zone)
    # The apex's SOA, NS, DNSKEY and NSEC3PARAM; the host's A, AAAA and TXT.
    assert assert_signatures_take_their_rrsets_ttl(axfr) >= 7
    sent = signature_ttls(axfr)
    assert sent[f"h1.{ZONE}.", "RRSIG AAAA"] == {900}
    assert sent[f"{ZONE}.", "RRSIG DNSKEY"] == sent[f"{ZONE}.", "DNSKEY"]
    difference = xfr.ixfr_records(zone, since, zone.serial, entries)
    assert difference is not None
    added = difference[[i for i, r in enumerate(difference) if r.rdtype == 6][2] :]
    assert assert_signatures_take_their_rrsets_ttl(added) >= 4  # the host's three, the SOA
    assert signature_ttls(added)[f"h1.{ZONE}.", "RRSIG TXT"] == {300}
