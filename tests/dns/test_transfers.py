"""AXFR and IXFR through the real DNS transport and store, read by dnspython's own xfr client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import dns.asyncquery
import dns.message
import dns.name
import dns.rcode
import dns.tsigkeyring
import dns.versioned
import dns.xfr
import pytest
import sqlalchemy as sa

from homing.dns import xfr
from homing.dns.access import AccessLoader
from homing.dns.dispatch import Dispatcher
from homing.dns.index import ZoneIndex
from homing.dns.server import DnsServer, start_dns
from homing.service import zones
from homing.service.dnsupdate import Operation, UpdateScope, apply_update
from homing.service.journal import Follower, entries_after
from homing.service.keys import add_key
from homing.store.db import Database, Txn
from homing.store.schema import journal
from homing.store.schema import zones as zones_table

ZONE = "xfr.example.net"
MANY = 1200  # names: more than one 16 KiB message


async def update(db: Database, *ops: Operation) -> None:
    await apply_update(db, ZONE, [], list(ops), UpdateScope(ZONE), actor="test")


@pytest.fixture
async def primary(db: Database) -> AsyncIterator[tuple[DnsServer, ZoneIndex, dict[str, str]]]:
    await zones.add_zone(db, ZONE, ns=["ns1.example.org"], allow_transfer=["192.0.2.0/24"])
    key = await add_key(db, "xfr-key", zone=ZONE, algorithm="hmac-sha512")
    await update(db, *(Operation("add", f"h{i}.{ZONE}", "A", 60, f"10.0.{i // 250}.{i % 250}")
                       for i in range(MANY)))  # fmt: skip
    index = ZoneIndex()
    follower = Follower(db, index)
    await follower.sync()
    access = AccessLoader(db)
    await access.reload()
    server = await start_dns(
        index, "127.0.0.1", 0, dispatch=lambda r: Dispatcher(index, db, access, r)
    )
    try:
        yield server, index, {"name": key.name, "algorithm": key.algorithm, "secret": key.secret}
    finally:
        await server.close()
        db.on_commit.remove(follower.committed)


def keyring(key: dict[str, str]) -> dict[dns.name.Name, dns.tsig.Key]:
    return dns.tsigkeyring.from_text({key["name"]: (key["algorithm"], key["secret"])})


async def transfer(
    server: DnsServer, zone: dns.versioned.Zone, key: dict[str, str]
) -> dns.rdatatype.RdataType:
    query, _ = dns.xfr.make_query(zone, keyring=keyring(key), keyname=key["name"])
    await dns.asyncquery.inbound_xfr(server.host, zone, query, port=server.port, timeout=10)
    return query.question[0].rdtype


def same(a: dns.versioned.Zone, b: dns.versioned.Zone) -> bool:
    def texts(zone: dns.versioned.Zone) -> list[str]:
        return sorted(
            f"{name} {ttl} {rdata.rdtype} {rdata}" for name, ttl, rdata in zone.iterate_rdatas()
        )

    return texts(a) == texts(b)


async def axfr(server: DnsServer, key: dict[str, str]) -> dns.versioned.Zone:
    zone = dns.versioned.Zone(ZONE)
    assert await transfer(server, zone, key) == dns.rdatatype.RdataType.AXFR
    return zone


async def test_signed_axfr_then_ixfr(
    primary: tuple[DnsServer, ZoneIndex, dict[str, str]], db: Database
) -> None:
    server, index, key = primary
    secondary = await axfr(server, key)
    assert secondary.get_soa().serial == index.serial_of(ZONE)
    assert len(list(secondary.iterate_rdatas("A"))) == MANY

    # Replace one address, delete one name, change a TTL, add a TXT: one IXFR.
    await update(
        db,
        Operation("delete_rrset", f"h1.{ZONE}", "A"),
        Operation("add", f"h1.{ZONE}", "A", 60, "192.0.2.1"),
        Operation("delete_name", f"h2.{ZONE}"),
        Operation("delete_rrset", f"h3.{ZONE}", "A"),
        Operation("add", f"h3.{ZONE}", "A", 600, "10.0.0.3"),
        Operation("add", f"h4.{ZONE}", "TXT", 60, '"hello"'),
    )
    assert await transfer(server, secondary, key) == dns.rdatatype.RdataType.IXFR
    assert secondary.get_soa().serial == index.serial_of(ZONE)
    assert same(secondary, await axfr(server, key))
    assert secondary.find_rdataset(f"h3.{ZONE}.", "A").ttl == 600

    # Up to date: the SOA alone, nothing changes.
    assert await transfer(server, secondary, key) == dns.rdatatype.RdataType.IXFR
    assert same(secondary, await axfr(server, key))


async def test_ixfr_falls_back_to_axfr_when_the_journal_does_not_reach_back(
    primary: tuple[DnsServer, ZoneIndex, dict[str, str]], db: Database
) -> None:
    server, index, key = primary
    secondary = await axfr(server, key)
    before = secondary.get_soa().serial
    await update(db, Operation("add", f"late.{ZONE}", "A", 60, "192.0.2.7"))
    await update(db, Operation("add", f"later.{ZONE}", "A", 60, "192.0.2.8"))

    async def prune(txn: Txn) -> None:
        await txn.conn.execute(sa.delete(journal).where(journal.c.serial == before + 1))

    await db.write(prune)
    await transfer(server, secondary, key)
    assert secondary.get_soa().serial == index.serial_of(ZONE)
    assert same(secondary, await axfr(server, key))


async def test_transfer_refused_without_key_or_listed_address(
    primary: tuple[DnsServer, ZoneIndex, dict[str, str]],
) -> None:
    server, _, key = primary
    for rdtype in ("AXFR", "IXFR"):
        query = dns.message.make_query(ZONE, rdtype)
        response = await dns.asyncquery.tcp(query, server.host, port=server.port, timeout=5)
        assert response.rcode() == dns.rcode.Rcode.REFUSED
        assert not response.answer
    # A key of another name is as good as none.
    stranger = {**key, "name": "stranger"}
    zone = dns.versioned.Zone(ZONE)
    with pytest.raises(dns.tsig.PeerBadKey):
        await transfer(server, zone, stranger)
    # Not ours at all.
    query = dns.message.make_query("example.com", "AXFR")
    response = await dns.asyncquery.tcp(query, server.host, port=server.port, timeout=5)
    assert response.rcode() == dns.rcode.Rcode.NOTAUTH


async def test_ixfr_over_udp_answers_the_soa(
    primary: tuple[DnsServer, ZoneIndex, dict[str, str]], db: Database
) -> None:
    server, index, key = primary
    secondary = await axfr(server, key)
    await update(db, Operation("add", f"udp.{ZONE}", "A", 60, "192.0.2.9"))
    query, _ = dns.xfr.make_query(secondary, keyring=keyring(key), keyname=key["name"])
    response = await dns.asyncquery.udp(query, server.host, port=server.port, timeout=5)
    assert response.rcode() == dns.rcode.Rcode.NOERROR
    assert [r.rdtype for r in response.answer] == [dns.rdatatype.RdataType.SOA]
    assert response.answer[0][0].serial == index.serial_of(ZONE)


async def test_ixfr_deletes_records_with_their_old_ttl(
    primary: tuple[DnsServer, ZoneIndex, dict[str, str]], db: Database
) -> None:
    server, index, key = primary
    since = index.serial_of(ZONE)
    assert since is not None
    # h5 goes from TTL 60 to 300 with a new address; h6 keeps its address, TTL 60 -> 900.
    await update(
        db,
        Operation("delete_rrset", f"h5.{ZONE}", "A"),
        Operation("add", f"h5.{ZONE}", "A", 300, "192.0.2.5"),
        Operation("delete_rrset", f"h6.{ZONE}", "A"),
        Operation("add", f"h6.{ZONE}", "A", 900, "10.0.0.6"),
    )
    rows = (
        await db.read(lambda conn: conn.execute(sa.select(journal.c.name, journal.c.old_ttl)))
    ).all()
    assert (f"h5.{ZONE}", 60) in [(r.name, r.old_ttl) for r in rows]

    query = dns.message.make_query(ZONE, "IXFR")
    query.authority.append(xfr.soa_at(index.zones[dns.name.from_text(ZONE)], since))
    query.use_tsig(keyring(key), keyname=key["name"])
    answer = await dns.asyncquery.tcp(
        query, server.host, port=server.port, timeout=10, one_rr_per_rrset=True
    )
    records = list(answer.answer)
    soas = [i for i, r in enumerate(records) if r.rdtype == dns.rdatatype.RdataType.SOA]
    assert len(soas) == 4  # new, old, new (between deletions and additions), new
    deleted = {r.name.to_text(): r for r in records[soas[1] + 1 : soas[2]]}
    added = {r.name.to_text(): r for r in records[soas[2] + 1 : soas[3]]}
    assert deleted[f"h5.{ZONE}."].ttl == 60
    assert deleted[f"h6.{ZONE}."].ttl == 60
    assert added[f"h5.{ZONE}."].ttl == 300
    assert added[f"h6.{ZONE}."].ttl == 900
    assert [r.to_text() for r in deleted[f"h6.{ZONE}."]] == ["10.0.0.6"]


async def test_ixfr_across_an_unservable_journal_row_falls_back_to_axfr(
    primary: tuple[DnsServer, ZoneIndex, dict[str, str]], db: Database
) -> None:
    # A row an older version stored (an address with a scope ID): the index skips it, and a
    # difference that crosses it is answered with the zone as served instead of an error.
    server, index, key = primary
    secondary = await axfr(server, key)
    before = secondary.get_soa().serial

    async def poison(txn: Txn) -> int:
        zone = (
            await txn.conn.execute(sa.select(zones_table).where(zones_table.c.name == ZONE))
        ).one()
        serial = int(zone.serial) + 1
        await txn.conn.execute(
            sa.insert(journal).values(
                zone_id=zone.id, serial=serial, name=f"h5.{ZONE}", rtype="AAAA", ttl=60, old="",
                new="fe80::1%eth0", actor="old version", via="dyndns2", at=txn.now,
            )
        )  # fmt: skip
        await txn.conn.execute(
            sa.update(zones_table).where(zones_table.c.id == zone.id).values(serial=serial)
        )
        return int(zone.id)

    zone_id = await db.write(poison)
    await update(db, Operation("add", f"late.{ZONE}", "A", 60, "192.0.2.7"))
    target = await db.read(
        lambda conn: conn.scalar(sa.select(zones_table.c.serial).where(zones_table.c.id == zone_id))
    )
    entries = await db.read(lambda conn: entries_after(conn, zone_id, ZONE, before))
    data = index.zone(ZONE)
    assert data is not None
    assert xfr.ixfr_records(data, before, int(target), entries) is None  # AXFR instead
