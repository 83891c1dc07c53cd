"""Nothing DNS cannot serve is committed; a row that still cannot be (an older version's, or
written by hand) is skipped by the zone index and the journal follower, which keep the zone
moving, and `homing check` names it."""

from __future__ import annotations

import logging

import dns.name
import dns.rdatatype
import pytest
import sqlalchemy as sa

from homing.dns.index import ZoneIndex
from homing.domain.addresses import AddressSet
from homing.domain.errors import HomingError, InvalidAddress, UnservableRecord
from homing.domain.outcomes import Outcome
from homing.domain.records import RRsetValue
from homing.service import accounts, hosts, imports, updates, zones
from homing.service.changes import apply_change, apply_changes
from homing.service.checks import unservable_rows
from homing.service.journal import Follower
from homing.store.db import Database, Txn
from homing.store.schema import hosts as hosts_table
from homing.store.schema import journal, rrsets
from homing.store.schema import zones as zones_table

ZONE = "dyn.example.net"
HOST = f"h1.{ZONE}"


async def snapshot(db: Database) -> tuple[int, int, list[tuple[str, str, str]]]:
    """The zone's serial, the journal's length and every RRset but the apex's."""

    async def read(
        conn: sa.ext.asyncio.AsyncConnection,
    ) -> tuple[int, int, list[tuple[str, str, str]]]:
        serial = await conn.scalar(
            sa.select(zones_table.c.serial).where(zones_table.c.name == ZONE)
        )
        count = await conn.scalar(sa.select(sa.func.count()).select_from(journal))
        rows = await conn.execute(
            sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.rdatas).where(rrsets.c.name != ZONE)
        )
        return int(serial), int(count or 0), sorted(tuple(r) for r in rows)

    return await db.read(read)


async def change(db: Database, *values: RRsetValue) -> None:
    async def unit(txn: Txn) -> None:
        zone = await zones.get_zone(txn.conn, ZONE)
        await apply_changes(txn, zone, list(values), actor="test", via="test")

    await db.write(unit)


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        (RRsetValue(HOST, "AAAA", 60, ("fe80::1%eth0",)), InvalidAddress, "scope IDs"),
        (RRsetValue(HOST, "A", 60, ("255.255.255.255",)), InvalidAddress, "broadcast address"),
        (RRsetValue(HOST, "A", 60, ("240.0.0.1",)), InvalidAddress, "reserved"),
        (RRsetValue(HOST, "A", 60, ("192.0.2.300",)), InvalidAddress, "not an IPv4 address"),
        (RRsetValue(HOST, "TXT", 60, ('"unclosed',)), UnservableRecord, "TXT value"),
        (RRsetValue(HOST, "CNAME", 60, ("relative",)), UnservableRecord, "CNAME value"),
        (RRsetValue(HOST, "NOSUCHTYPE", 60, ("x",)), UnservableRecord, "NOSUCHTYPE value"),
        (RRsetValue(f"a..{ZONE}", "A", 60, ("192.0.2.1",)), UnservableRecord, "not a valid DNS"),
        (RRsetValue(HOST, "A", -5, ("192.0.2.1",)), UnservableRecord, "TTL -5"),
    ],
)
async def test_apply_changes_refuses_what_dns_could_not_serve(
    db: Database, value: RRsetValue, error: type[HomingError], words: str
) -> None:
    await zones.add_zone(db, ZONE)
    good = RRsetValue(f"ok.{ZONE}", "A", 60, ("192.0.2.1",))
    before = await snapshot(db)
    with pytest.raises(error, match=words):
        await change(db, good, value)  # the good value in the same call is not written either
    assert await snapshot(db) == before


async def poison(db: Database) -> int:
    """What an older version stored for `myip=fe80::1%25eth0`: the RRset, its journal entry
    and the serial, written with SQL. The entry's serial."""

    async def unit(txn: Txn) -> int:
        conn = txn.conn
        row = (await conn.execute(sa.select(zones_table).where(zones_table.c.name == ZONE))).one()
        serial = int(row.serial) + 1
        await conn.execute(
            sa.insert(rrsets).values(
                zone_id=row.id, name=HOST, rtype="AAAA", ttl=60, rdatas="fe80::1%eth0"
            )
        )
        await conn.execute(
            sa.insert(journal).values(
                zone_id=row.id, serial=serial, name=HOST, rtype="AAAA", ttl=60, old="",
                new="fe80::1%eth0", actor="old version", via="dyndns2", at=txn.now,
            )
        )  # fmt: skip
        await conn.execute(
            sa.update(zones_table).where(zones_table.c.id == row.id).values(serial=serial)
        )
        return serial

    return await db.write(unit)


def addresses(index: ZoneIndex, rtype: str) -> list[str]:
    zone = index.zone(ZONE)
    assert zone is not None
    node = zone.node(dns.name.from_text(HOST)) or {}
    rrset = node.get(dns.rdatatype.RdataType.make(rtype))
    return sorted(r.to_text() for r in rrset) if rrset is not None else []


async def test_the_follower_skips_an_unservable_entry_and_the_zone_moves_on(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await zones.add_zone(db, ZONE)
    index = ZoneIndex()
    follower = Follower(db, index)
    await follower.sync()
    await change(db, RRsetValue(HOST, "A", 60, ("192.0.2.1",)))
    serial = await poison(db)  # as another process would have committed it
    with caplog.at_level(logging.ERROR, logger="homing.dns.index"):
        await follower.sync()
    assert index.serial_of(ZONE) == serial
    assert f"zone {ZONE} serial {serial}: journal entry {HOST} AAAA cannot be served" in caplog.text
    assert addresses(index, "A") == ["192.0.2.1"] and addresses(index, "AAAA") == []
    # A later change in the zone reaches the index at once (after its commit).
    await change(db, RRsetValue(HOST, "A", 60, ("192.0.2.2",)))
    assert index.serial_of(ZONE) == serial + 1
    assert addresses(index, "A") == ["192.0.2.2"]


async def test_a_zone_with_an_unservable_row_loads_and_check_names_it(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await zones.add_zone(db, ZONE)
    await change(db, RRsetValue(HOST, "A", 60, ("192.0.2.1",)))
    assert await unservable_rows(db) == []
    serial = await poison(db)
    index = ZoneIndex()
    with caplog.at_level(logging.ERROR, logger="homing.dns.index"):
        await Follower(db, index).sync()  # what `homing serve` does before READY
    assert index.serial_of(ZONE) == serial
    assert f"stored RRset {HOST} AAAA cannot be served" in caplog.text
    assert addresses(index, "A") == ["192.0.2.1"]

    found = [row.to_text() for row in await unservable_rows(db)]
    assert found == [
        f"rrset zone={ZONE} serial={serial} name={HOST} type=AAAA: {HOST} AAAA "
        "'fe80::1%eth0': scope IDs are not allowed in an address",
        f"journal zone={ZONE} serial={serial} name={HOST} type=AAAA: {HOST} AAAA "
        "'fe80::1%eth0': scope IDs are not allowed in an address",
    ]
    # A good value replaces both the RRset and the entry in effect: nothing left to find.
    await change(db, RRsetValue(HOST, "AAAA", 60, ("2001:db8::1",)))
    assert await unservable_rows(db) == []


@pytest.mark.parametrize("address", ["fe80::1%eth0", "ff02::1", "::1"])
async def test_host_import_refuses_an_address_naming_its_line(db: Database, address: str) -> None:
    await zones.add_zone(db, ZONE)
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    before = await snapshot(db)
    text = f"name,ipv4,ipv6\nok.{ZONE},192.0.2.1,\nbad.{ZONE},,{address}\n"
    with pytest.raises(HomingError, match="line 3: "):
        await imports.import_hosts(db, text, default_owner="alice")
    assert await snapshot(db) == before


async def test_host_import_publishes_loopback_only_when_allowed(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    text = f"name,ipv4\nlab.{ZONE},127.0.0.2\n"
    with pytest.raises(HomingError, match="loopback"):
        await imports.import_hosts(db, text, default_owner="alice")
    result = await imports.import_hosts(db, text, default_owner="alice", allow_local=True)
    assert result.rrsets == 1


async def test_apply_change_still_deletes_an_unservable_rrset(db: Database) -> None:
    """Mending: an operator (or the owner's next update) can always remove such a row."""
    await zones.add_zone(db, ZONE)
    await poison(db)

    async def unit(txn: Txn) -> object:
        zone = await zones.get_zone(txn.conn, ZONE)
        return await apply_change(txn, zone, RRsetValue(HOST, "AAAA", 60, ()), actor="t", via="t")

    assert await db.write(unit) is not None
    assert await unservable_rows(db) == []


async def test_a_group_leaves_out_a_members_unservable_row(db: Database) -> None:
    """A group's refresh copies its members' addresses: a poisoned member must not make the
    group's RRset unservable, nor stop the other members' updates."""
    await zones.add_zone(db, ZONE)
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    other = f"h2.{ZONE}"
    await hosts.add_host(db, HOST, "alice")
    created = await hosts.add_host(db, other, "alice")
    pool = f"pool.{ZONE}"
    await hosts.add_group(db, pool, "alice", [HOST, other])
    policy = updates.UpdatePolicy()

    def ask(*addresses: str) -> updates.UpdateRequest:
        return updates.UpdateRequest(
            other,
            created.secret,
            [other],
            AddressSet.parse(list(addresses)),
            "dyndns2",
            "192.0.2.99",
        )

    [first] = await updates.update(db, ask("192.0.2.2", "2001:db8::2"), policy)
    assert first.outcome is Outcome.GOOD
    await poison(db)  # h1's AAAA
    await db.write(  # h1 counts as updated now, so the group takes its addresses
        lambda txn: txn.conn.execute(
            sa.update(hosts_table).where(hosts_table.c.name == HOST).values(last_update_at=txn.now)
        )
    )
    [second] = await updates.update(db, ask("192.0.2.3", "2001:db8::3"), policy)
    assert second.outcome is Outcome.GOOD

    async def group_aaaa(conn: sa.ext.asyncio.AsyncConnection) -> str | None:
        return await conn.scalar(
            sa.select(rrsets.c.rdatas).where(rrsets.c.name == pool, rrsets.c.rtype == "AAAA")
        )

    assert await db.read(group_aaaa) == "2001:db8::3"


async def test_a_zone_that_cannot_load_does_not_hold_the_others_back(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await zones.add_zone(db, ZONE)

    async def broken_zone(txn: Txn) -> None:  # a name no DNS index can take
        row = (
            await txn.conn.execute(sa.select(zones_table).where(zones_table.c.name == ZONE))
        ).one()
        values = {k: v for k, v in row._mapping.items() if k != "id"}
        await txn.conn.execute(sa.insert(zones_table).values({**values, "name": "bad..zone"}))

    await db.write(broken_zone)
    index = ZoneIndex()
    follower = Follower(db, index)
    with caplog.at_level(logging.ERROR, logger="homing.service.journal"):
        await follower.sync()
        await follower.sync()  # tried again only when its serial moves: said once
    assert index.serial_of(ZONE) is not None
    assert caplog.text.count("zone bad..zone serial") == 1
    await change(db, RRsetValue(HOST, "A", 60, ("192.0.2.1",)))
    assert addresses(index, "A") == ["192.0.2.1"]
