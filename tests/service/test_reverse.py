"""Reverse zones: the networks their names stand for, PTRs kept in step with hosts' addresses
(moves, two hosts on one address, deletion, auto-ptr on and off, the most specific zone)."""

from __future__ import annotations

import ipaddress

import pytest
import sqlalchemy as sa

from homing.domain.errors import HomingError
from homing.domain.records import RRsetValue
from homing.service import accounts, hosts, reverse, zones
from homing.service.changes import ZoneRef, apply_changes, current_rrset
from homing.store.db import Database, Txn
from homing.store.schema import journal
from homing.store.schema import zones as zones_table

ZONE = "dyn.example.net"
REV = "2.0.192.in-addr.arpa"


@pytest.mark.parametrize(
    ("name", "network", "classless"),
    [
        ("2.0.192.in-addr.arpa", "192.0.2.0/24", False),
        ("10.in-addr.arpa", "10.0.0.0/8", False),
        ("0-63.2.0.192.in-addr.arpa", "192.0.2.0/26", True),
        ("64-127.2.0.192.in-addr.arpa", "192.0.2.64/26", True),
        ("8.b.d.0.1.0.0.2.ip6.arpa", "2001:db8::/32", False),
    ],
)
def test_reverse_network(name: str, network: str, classless: bool) -> None:
    assert reverse.reverse_network(name) == (ipaddress.ip_network(network), classless)


@pytest.mark.parametrize(
    "name",
    ["dyn.example.net", "256.in-addr.arpa", "1.2.3.4.in-addr.arpa", "0-62.2.0.192.in-addr.arpa",
     "1-64.2.0.192.in-addr.arpa", "x.ip6.arpa", "01.in-addr.arpa", "in-addr.arpa"],
)  # fmt: skip
def test_not_reverse(name: str) -> None:
    assert reverse.reverse_network(name) is None


def test_ptr_names() -> None:
    plain = reverse.reverse_zone(ZoneRef(1, REV))
    classless = reverse.reverse_zone(ZoneRef(2, "0-63.2.0.192.in-addr.arpa"))
    assert plain is not None and classless is not None
    address = ipaddress.ip_address("192.0.2.5")
    assert plain.ptr_name(address) == "5.2.0.192.in-addr.arpa"
    assert classless.ptr_name(address) == "5.0-63.2.0.192.in-addr.arpa"


async def setup(db: Database, *names: str) -> dict[str, ZoneRef]:
    refs = {ZONE: await zones.add_zone(db, ZONE)}
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    for label in names:
        await hosts.add_host(db, f"{label}.{ZONE}", "alice")
    return refs


async def publish(db: Database, name: str, rtype: str, *addresses: str) -> None:
    async def unit(txn: Txn) -> None:
        zone = await zones.get_zone(txn.conn, ZONE)
        await apply_changes(
            txn, zone, [RRsetValue(name, rtype, 60, addresses)], actor="test", via="test"
        )

    await db.write(unit)


async def ptr(db: Database, zone_name: str, owner: str) -> tuple[str, ...]:
    async def read(conn: sa.ext.asyncio.AsyncConnection) -> tuple[str, ...]:
        zone = await zones.get_zone(conn, zone_name)
        value = await current_rrset(Txn(conn, None), zone, owner, "PTR")  # type: ignore[arg-type]
        return value.rdatas if value else ()

    return await db.read(read)


async def test_ptr_follows_address_in_the_same_transaction(db: Database) -> None:
    await setup(db, "cam")
    await zones.add_zone(db, REV, auto_ptr=True)
    await publish(db, f"cam.{ZONE}", "A", "192.0.2.5")
    assert await ptr(db, REV, "5.2.0.192.in-addr.arpa") == (f"cam.{ZONE}.",)
    await publish(db, f"cam.{ZONE}", "A", "192.0.2.6")
    assert await ptr(db, REV, "5.2.0.192.in-addr.arpa") == ()
    assert await ptr(db, REV, "6.2.0.192.in-addr.arpa") == (f"cam.{ZONE}.",)
    # Outside the reverse zone: no PTR anywhere, and the old one goes.
    await publish(db, f"cam.{ZONE}", "A", "198.51.100.1")
    assert await ptr(db, REV, "6.2.0.192.in-addr.arpa") == ()

    async def rows(conn: sa.ext.asyncio.AsyncConnection) -> list[tuple[str, str, str]]:
        result = await conn.execute(
            sa.select(journal.c.name, journal.c.new, journal.c.via)
            .join(zones_table, zones_table.c.id == journal.c.zone_id)
            .where(zones_table.c.name == REV, journal.c.rtype == "PTR")
            .order_by(journal.c.serial)
        )
        return [tuple(r) for r in result]  # type: ignore[misc]

    assert await db.read(rows) == [
        ("5.2.0.192.in-addr.arpa", f"cam.{ZONE}.", "auto-ptr"),
        ("5.2.0.192.in-addr.arpa", "", "auto-ptr"),
        ("6.2.0.192.in-addr.arpa", f"cam.{ZONE}.", "auto-ptr"),
        ("6.2.0.192.in-addr.arpa", "", "auto-ptr"),
    ]


async def test_latest_host_owns_a_shared_address(db: Database) -> None:
    await setup(db, "a", "b")
    await zones.add_zone(db, REV, auto_ptr=True)
    await publish(db, f"a.{ZONE}", "A", "192.0.2.7")
    await publish(db, f"b.{ZONE}", "A", "192.0.2.7")
    assert await ptr(db, REV, "7.2.0.192.in-addr.arpa") == (f"b.{ZONE}.",)
    # a leaves the address: b's PTR stays.
    await publish(db, f"a.{ZONE}", "A", "192.0.2.8")
    assert await ptr(db, REV, "7.2.0.192.in-addr.arpa") == (f"b.{ZONE}.",)
    # b, the owner, leaves: the PTR goes (not handed back to anyone).
    await publish(db, f"b.{ZONE}", "A")
    assert await ptr(db, REV, "7.2.0.192.in-addr.arpa") == ()
    assert await ptr(db, REV, "8.2.0.192.in-addr.arpa") == (f"a.{ZONE}.",)


async def test_host_delete_removes_its_ptr(db: Database) -> None:
    from homing.service import portal

    await setup(db, "gone")
    await zones.add_zone(db, REV, auto_ptr=True)
    await publish(db, f"gone.{ZONE}", "A", "192.0.2.9")
    assert await ptr(db, REV, "9.2.0.192.in-addr.arpa") == (f"gone.{ZONE}.",)

    async def unit(txn: Txn) -> None:
        row = (
            await txn.conn.execute(
                sa.text("select id, owner_id from hosts where name = :n"), {"n": f"gone.{ZONE}"}
            )
        ).first()
        assert row is not None
        await portal.remove_host(txn, row.id, row.owner_id, actor="test", group_max_age=0)

    await db.write(unit)
    assert await ptr(db, REV, "9.2.0.192.in-addr.arpa") == ()


async def test_auto_ptr_on_fills_and_off_removes(db: Database) -> None:
    await setup(db, "a", "b")
    await zones.add_zone(db, REV)
    await zones.add_zone(db, "8.b.d.0.1.0.0.2.ip6.arpa")
    await publish(db, f"a.{ZONE}", "A", "192.0.2.1", "192.0.2.2")
    await publish(db, f"b.{ZONE}", "AAAA", "2001:db8::b")
    assert await ptr(db, REV, "1.2.0.192.in-addr.arpa") == ()
    assert await reverse.set_auto_ptr(db, REV, True) == (REV, 2)
    assert await ptr(db, REV, "1.2.0.192.in-addr.arpa") == (f"a.{ZONE}.",)
    assert await ptr(db, REV, "2.2.0.192.in-addr.arpa") == (f"a.{ZONE}.",)
    v6 = ipaddress.ip_address("2001:db8::b").reverse_pointer
    assert await reverse.set_auto_ptr(db, "8.b.d.0.1.0.0.2.ip6.arpa", True) == (
        "8.b.d.0.1.0.0.2.ip6.arpa",
        1,
    )
    assert await ptr(db, "8.b.d.0.1.0.0.2.ip6.arpa", v6) == (f"b.{ZONE}.",)
    assert await reverse.set_auto_ptr(db, REV, False) == (REV, 2)
    assert await ptr(db, REV, "1.2.0.192.in-addr.arpa") == ()
    # Off: no longer followed.
    await publish(db, f"a.{ZONE}", "A", "192.0.2.3")
    assert await ptr(db, REV, "3.2.0.192.in-addr.arpa") == ()


async def test_most_specific_zone_holds_the_ptr(db: Database) -> None:
    await setup(db, "a")
    await zones.add_zone(db, REV, auto_ptr=True)
    await zones.add_zone(db, "0-63.2.0.192.in-addr.arpa", auto_ptr=True)
    await publish(db, f"a.{ZONE}", "A", "192.0.2.5", "192.0.2.100")
    assert await ptr(db, "0-63.2.0.192.in-addr.arpa", "5.0-63.2.0.192.in-addr.arpa") == (
        f"a.{ZONE}.",
    )
    assert await ptr(db, REV, "5.2.0.192.in-addr.arpa") == ()
    assert await ptr(db, REV, "100.2.0.192.in-addr.arpa") == (f"a.{ZONE}.",)
    found = await reverse.host_ptrs(db, f"a.{ZONE}", ["192.0.2.5", "192.0.2.100", "203.0.113.1"])
    assert [(p.address, p.target) for p in found] == [
        ("192.0.2.5", f"a.{ZONE}"),
        ("192.0.2.100", f"a.{ZONE}"),
    ]


async def test_auto_ptr_refused_on_a_forward_zone(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    with pytest.raises(HomingError, match="not a reverse zone"):
        await reverse.set_auto_ptr(db, ZONE, True)
    with pytest.raises(HomingError, match="not a reverse zone"):
        await zones.add_zone(db, "other.example.net", auto_ptr=True)


async def test_cname_at_the_ptr_name_is_left_alone(db: Database) -> None:
    """An RFC 2317 parent's CNAME where the PTR would go: no PTR beside it, no error."""
    await setup(db, "a")
    rev = await zones.add_zone(db, REV, auto_ptr=True)
    owner = "5.2.0.192.in-addr.arpa"
    cname = RRsetValue(owner, "CNAME", 60, ("5.0-63.2.0.192.in-addr.arpa.",))
    await db.write(lambda txn: apply_changes(txn, rev, [cname], actor="test", via="test"))
    await publish(db, f"a.{ZONE}", "A", "192.0.2.5")
    assert await ptr(db, REV, owner) == ()

    async def read(conn: sa.ext.asyncio.AsyncConnection) -> tuple[str, ...]:
        value = await current_rrset(Txn(conn, None), rev, owner, "CNAME")  # type: ignore[arg-type]
        return value.rdatas if value else ()

    assert await db.read(read) == ("5.0-63.2.0.192.in-addr.arpa.",)
