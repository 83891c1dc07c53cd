"""Signing in the store: turning it on signs the whole zone; every later change brings its
signatures and keeps the NSEC3 chain complete, in the same transaction and journal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

from homing.dnssec import signer
from homing.domain.records import RRsetValue
from homing.service import accounts, dnssec, hostcare, hosts, zones
from homing.service.changes import apply_changes
from homing.service.zones import zone_row
from homing.store.db import Database, Txn
from homing.store.schema import journal
from homing.store.schema import zones as zones_table
from tests.dnssec.zonecheck import check_signed, ldns_verify, zone_text

ZONE = "signed.example"


async def put(db: Database, *values: RRsetValue) -> None:
    async def unit(txn: Txn) -> None:
        row = await zone_row(txn.conn, ZONE)
        await apply_changes(txn, zones.ZoneRef(row.id, ZONE), values, actor="test", via="test")

    await db.write(unit)


async def serial(db: Database) -> int:
    return int(
        await db.read(
            lambda conn: conn.scalar(
                sa.select(zones_table.c.serial).where(zones_table.c.name == ZONE)
            )
        )
    )


async def new_zone(db: Database, *values: RRsetValue) -> None:
    """The test zone, unsigned, with its name server's address and `values`."""
    await zones.add_zone(db, ZONE, ns=[f"ns1.{ZONE}"], rname=f"hostmaster.{ZONE}")
    await put(db, RRsetValue(f"ns1.{ZONE}", "A", 300, ("192.0.2.53",)), *values)


@pytest.fixture
async def zone(db: Database) -> Database:
    await new_zone(
        db,
        RRsetValue(f"h1.{ZONE}", "A", 60, ("192.0.2.1",)),
        RRsetValue(f"h1.{ZONE}", "AAAA", 60, ("2001:db8::1",)),
        RRsetValue(f"_acme-challenge.h1.{ZONE}", "TXT", 60, ('"token"',)),
        RRsetValue(f"a.b.c.{ZONE}", "TXT", 60, ('"deep"',)),
    )
    return db


@pytest.mark.parametrize("split", [False, True], ids=["csk", "ksk+zsk"])
async def test_turning_signing_on_signs_every_rrset(
    zone: Database, tmp_path: Path, split: bool
) -> None:
    done = await dnssec.enable(zone, ZONE, split=split)
    assert done.keys == (2 if split else 1)
    text = await zone_text(zone, ZONE)
    check_signed(text, ZONE)
    ldns_verify(text, tmp_path)
    ds = await dnssec.ds_records(zone, ZONE)
    assert len(ds) == 1 and ds[0].startswith(f"{ZONE}. IN DS ") and " 13 2 " in ds[0]


async def test_changes_keep_the_zone_signed_and_the_chain_whole(
    zone: Database, tmp_path: Path
) -> None:
    await dnssec.enable(zone, ZONE)
    steps = [
        [RRsetValue(f"h1.{ZONE}", "A", 60, ("198.51.100.7",))],  # an address moves
        [RRsetValue(f"h2.{ZONE}", "A", 60, ("192.0.2.2",))],  # a new owner
        [RRsetValue(f"x.y.z.{ZONE}", "A", 60, ("192.0.2.3",))],  # with empty non-terminals
        [RRsetValue(f"h1.{ZONE}", "AAAA", 60)],  # a type goes
        [RRsetValue(f"a.b.c.{ZONE}", "TXT", 60)],  # a deep owner goes, its ENTs with it
        [RRsetValue(f"h1.{ZONE}", "A", 300, ("198.51.100.7",))],  # a TTL alone
        [
            RRsetValue(f"child.{ZONE}", "NS", 3600, (f"ns.child.{ZONE}.",)),  # a delegation
            RRsetValue(f"ns.child.{ZONE}", "A", 3600, ("192.0.2.9",)),  # its glue
            RRsetValue(f"child.{ZONE}", "DS", 3600, ("12345 13 2 " + "ab" * 32,)),
        ],
        [RRsetValue(f"h2.{ZONE}", "A", 60), RRsetValue(f"h3.{ZONE}", "A", 60, ("192.0.2.4",))],
        [RRsetValue(f"child.{ZONE}", "NS", 3600), RRsetValue(f"child.{ZONE}", "DS", 3600)],
    ]
    for values in steps:
        before = await serial(zone)
        await put(zone, *values)
        text = await zone_text(zone, ZONE)
        check_signed(text, ZONE)
        after = await serial(zone)
        rows = await zone.read(
            lambda conn, before=before: conn.scalar(
                sa.select(sa.func.count()).select_from(journal).where(journal.c.serial > before)
            )
        )
        assert rows == after - before, "one journal row per serial, signatures included"
    ldns_verify(await zone_text(zone, ZONE), tmp_path)


def apex_lines(text: str, rtype: str) -> list[str]:
    """The apex's records of `rtype` in a zone text, their data alone."""
    return [
        line.split(f" IN {rtype} ", 1)[1]
        for line in text.splitlines()
        if line.startswith(f"{ZONE}. ") and f" IN {rtype} " in line
    ]


async def test_turning_signing_off_asks_the_parent_first(zone: Database) -> None:
    """Off: the zone stays signed and publishes CDS and CDNSKEY DELETE (RFC 8078), signed;
    on again withdraws them; off at once removes everything."""
    await dnssec.enable(zone, ZONE)
    assert (await dnssec.disable(zone, ZONE)).state == "unsigning"
    text = await zone_text(zone, ZONE)
    assert apex_lines(text, "CDS") == ["0 0 0 00"]
    assert apex_lines(text, "CDNSKEY") == ["0 3 0 AA=="]
    assert [s.split()[0] for s in apex_lines(text, "RRSIG")].count("CDS") == 1
    check_signed(text, ZONE)
    with pytest.raises(dnssec.DnssecError, match="already"):
        await dnssec.disable(zone, ZONE)
    assert await dnssec.ds_records(zone, ZONE), "still signed: the DS still fits"
    assert (await dnssec.enable(zone, ZONE)).state == "resumed"
    text = await zone_text(zone, ZONE)
    assert not apex_lines(text, "CDS") and not apex_lines(text, "CDNSKEY")
    check_signed(text, ZONE)


async def test_turning_signing_off_at_once_removes_what_it_added(zone: Database) -> None:
    unsigned = await zone_text(zone, ZONE)
    await dnssec.enable(zone, ZONE)
    await dnssec.disable(zone, ZONE)
    assert (await dnssec.disable(zone, ZONE, at_once=True)).state == "unsigned"
    text = await zone_text(zone, ZONE)
    assert text.split("\n")[1:] == unsigned.split("\n")[1:]  # the SOA's serial moved
    with pytest.raises(dnssec.DnssecError):
        await dnssec.ds_records(zone, ZONE)


async def test_signatures_due_are_made_again(zone: Database) -> None:
    await dnssec.enable(zone, ZONE)
    first = await serial(zone)
    assert await dnssec.resign_due(zone) == 0, "nothing is due yet"
    assert await serial(zone) == first
    # Everything counts as due when the horizon lies past the longest validity.
    again = await dnssec.resign_due(zone, before=signer.VALIDITY + signer.SPREAD + 1)
    assert again >= 5  # hosts, their NSEC3 owners...
    check_signed(await zone_text(zone, ZONE), ZONE)


async def test_a_change_while_signatures_are_made_apart_is_kept_and_signed(
    zone: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """resign_due makes its signatures outside the write transaction: a change to a due
    owner that commits meanwhile is neither overwritten nor left with stale signatures."""
    await dnssec.enable(zone, ZONE)
    loop = asyncio.get_running_loop()
    original = dnssec._Due.sign
    changed: list[str] = []

    def sign_while_changed(self: dnssec._Due) -> list[RRsetValue]:
        made = original(self)
        # The write transaction is not open yet: a writer commits between read and write.
        done = asyncio.run_coroutine_threadsafe(
            put(zone, RRsetValue(f"h1.{ZONE}", "A", 60, ("192.0.2.99",))), loop
        )
        done.result(timeout=60)
        changed.append(f"h1.{ZONE}")
        return made

    monkeypatch.setattr(dnssec._Due, "sign", sign_while_changed)
    due = await dnssec.resign_due(zone, before=signer.VALIDITY + signer.SPREAD + 1)
    assert changed, "the change came between the read and the write"
    text = await zone_text(zone, ZONE)
    assert f"h1.{ZONE}. 60 IN A 192.0.2.99" in text, "the change is kept"
    check_signed(text, ZONE)  # h1's signatures are the change's, over the new address
    assert due >= 4, "the other due owners are written"


async def test_a_changed_soa_is_signed_again(zone: Database) -> None:
    await dnssec.enable(zone, ZONE)

    async def change_soa(txn: Txn) -> None:
        await txn.conn.execute(
            sa.update(zones_table)
            .where(zones_table.c.name == ZONE)
            .values(minimum=300, serial=zones_table.c.serial + 1)
        )

    await zone.write(change_soa)
    with pytest.raises(Exception, match="verify|signature|validat"):
        check_signed(await zone_text(zone, ZONE), ZONE)
    await dnssec.resign_due(zone, owners=False)
    check_signed(await zone_text(zone, ZONE), ZONE)


async def test_others_cannot_write_what_the_signer_writes(zone: Database) -> None:
    await dnssec.enable(zone, ZONE)
    forged = "A 13 3 60 20300101000000 20200101000000 1 signed.example. AAAAAAAAAAAA"
    await put(
        zone,
        RRsetValue(f"h1.{ZONE}", "RRSIG", 60, (forged,)),
        RRsetValue(ZONE, "DNSKEY", 60, ("257 3 13 " + "A" * 88,)),
        RRsetValue(f"h1.{ZONE}", "TXT", 60, ('"kept"',)),
    )
    text = await zone_text(zone, ZONE)
    assert "AAAAAAAAAAAA" not in text and "A" * 88 not in text
    assert '"kept"' in text
    check_signed(text, ZONE)


async def test_a_hosts_history_shows_its_records_not_their_signatures(zone: Database) -> None:
    password = "correct horse battery staple"
    await accounts.create_account(zone, "alice", "alice@example.org", password)
    created = await hosts.add_host(zone, f"cam.{ZONE}", "alice")
    await dnssec.enable(zone, ZONE)
    await put(zone, RRsetValue(f"cam.{ZONE}", "A", 60, ("192.0.2.77",)))
    account = await accounts.authenticate(zone, "alice", password)
    assert account is not None
    page = await hostcare.history(zone, account, created.id)
    assert [e.rtype for e in page.entries] == ["A"]
