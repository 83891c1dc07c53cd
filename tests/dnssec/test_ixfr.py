"""IXFR of a signed zone: the difference carries the RRSIG and NSEC3 changes, an owner's
signatures over several types included, and turns the old zone into the new one."""

from __future__ import annotations

import dns.name
import dns.rdata
import dns.rdatatype
import sqlalchemy as sa

from homing.dns import xfr
from homing.dns.index import ZoneIndex
from homing.dns.push import changed_rrsets
from homing.dns.zonecopy import ZoneCopy
from homing.domain.records import JournalEntry, RRsetValue
from homing.service import dnssec
from homing.service.journal import entries_after, load_zone, stream_zone
from homing.store.db import Database
from homing.store.schema import zones as zones_table
from tests.dnssec.test_signing import ZONE, new_zone, put, serial
from tests.dnssec.zonecheck import zone_text

Record = tuple[str, str, str]


def records(text: str) -> set[Record]:
    """(owner, type, rdata) of a zone file's lines but the SOA, in dnspython's text."""
    out = set()
    for line in text.splitlines():
        name, _, _, rtype, data = line.split(None, 4)
        if rtype != "SOA":
            out.add((name.lower(), rtype, dns.rdata.from_text("IN", rtype, data).to_text()))
    return out


async def test_an_ixfr_turns_the_old_signed_zone_into_the_new(db: Database) -> None:
    await new_zone(db, RRsetValue(f"h1.{ZONE}", "A", 60, ("192.0.2.1",)))
    await dnssec.enable(db, ZONE)
    before_text, since = await zone_text(db, ZONE), await serial(db)
    await put(
        db,
        RRsetValue(f"h2.{ZONE}", "A", 60, ("192.0.2.2",)),  # a new name: A and AAAA signed
        RRsetValue(f"h2.{ZONE}", "AAAA", 60, ("2001:db8::2",)),
        RRsetValue(f"h1.{ZONE}", "A", 60, ("192.0.2.9",)),
    )
    after_text, target = await zone_text(db, ZONE), await serial(db)
    index = ZoneIndex()

    async def read(conn: sa.ext.asyncio.AsyncConnection) -> list:
        zone_id = await conn.scalar(sa.select(zones_table.c.id).where(zones_table.c.name == ZONE))
        await stream_zone(conn, zone_id, index)
        return await entries_after(conn, zone_id, ZONE, since)

    entries = await db.read(read)
    zone = index.zone(ZONE)
    assert zone is not None
    difference = xfr.ixfr_records(zone, since, target, entries)
    assert difference is not None, "an IXFR, not a fall-back to AXFR"
    soa_at = [i for i, rrset in enumerate(difference) if rrset.rdtype == 6]
    deleted, added = difference[soa_at[1] + 1 : soa_at[2]], difference[soa_at[2] + 1 : soa_at[3]]

    def flat(part: list) -> set[Record]:
        return {
            (r.name.to_text().lower(), dns.rdatatype.to_text(r.rdtype), rdata.to_text())
            for r in part
            for rdata in r
        }

    covered: dict[dns.name.Name, set[int]] = {}  # an owner's signatures, one RRset per type
    for r in added:
        if r.rdtype == dns.rdatatype.RRSIG:
            covered.setdefault(r.name, set()).update(s.type_covered for s in r)
    assert any(len(types) > 1 for types in covered.values())
    assert (records(before_text) - flat(deleted)) | flat(added) == records(after_text)


def test_pushes_to_an_external_primary_leave_out_what_signing_makes() -> None:
    def entry(serial: int, name: str, rtype: str, new: tuple[str, ...]) -> JournalEntry:
        return JournalEntry(0, ZONE, serial, name, rtype, 60, (), new, "t", "t")

    sig = "A 13 3 60 20261221183753 20261205192343 1 signed.example. AAAA"
    entries = [
        entry(2, f"h1.{ZONE}", "A", ("192.0.2.1",)),
        entry(3, f"h1.{ZONE}", "RRSIG", (sig,)),
        entry(4, ZONE, "DNSKEY", ("257 3 13 AAAA",)),
        entry(5, f"{'0' * 32}.{ZONE}", "NSEC3", (f"1 0 0 - {'1' * 32} A RRSIG",)),
    ]
    assert [(v.name, v.rtype) for v in changed_rrsets(ZONE, entries)] == [(f"h1.{ZONE}", "A")]


async def test_a_secondary_copy_keeps_every_signature(db: Database) -> None:
    """homing as the secondary of a signed zone: its copy (a dnspython zone, one RRSIG
    RRset per covered type) gives back the RRsets as the store keeps them."""
    await new_zone(
        db,
        RRsetValue(f"h1.{ZONE}", "A", 60, ("192.0.2.1",)),
        RRsetValue(f"h1.{ZONE}", "AAAA", 300, ("2001:db8::1",)),
    )
    await dnssec.enable(db, ZONE)

    async def read(conn: sa.ext.asyncio.AsyncConnection) -> tuple:
        zone_id = await conn.scalar(sa.select(zones_table.c.id).where(zones_table.c.name == ZONE))
        return await load_zone(conn, zone_id)

    meta, stored_serial, values = await db.read(read)
    copy = ZoneCopy.build(meta, stored_serial, values)
    assert sorted(copy.values()) == sorted(values)
