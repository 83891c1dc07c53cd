"""homing as a secondary, in one process: a primary (DNS server, dispatcher, store) and a
`Secondaries` manager with a store of its own, over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.tsigkeyring
import pytest

from homing.dns.access import AccessLoader
from homing.dns.answer import Responder
from homing.dns.dispatch import Dispatcher
from homing.dns.index import ZoneIndex
from homing.dns.refresh import State
from homing.dns.secondary import Secondaries
from homing.dns.server import DnsServer, start_dns
from homing.dns.zonecopy import ZoneCopy
from homing.domain.errors import SecondaryZone
from homing.domain.records import RRsetValue, ZoneMeta
from homing.service import zones
from homing.service.changes import ZoneRef, apply_change
from homing.service.dnsupdate import Operation, UpdateScope, apply_update
from homing.service.journal import Follower
from homing.service.keys import add_key
from homing.service.secondary import load_secondaries
from homing.store.db import Database, Txn

ZONE = "sec.example.net"
KEY = "xfr-sec"


async def update(db: Database, *ops: Operation) -> None:
    await apply_update(db, ZONE, [], list(ops), UpdateScope(ZONE), actor="test")


def a_records(index: ZoneIndex, name: str) -> list[str] | None:
    """What a client asking `index` gets for NAME A (None: not NOERROR)."""
    query = dns.message.make_query(name, dns.rdatatype.A)
    wire = Responder(index).answer(query.to_wire(), tcp=False)
    assert wire is not None
    response = dns.message.from_wire(wire)
    if response.rcode() != dns.rcode.NOERROR:
        return None
    return sorted(r.to_text() for rrset in response.answer for r in rrset)


def rcode_of(index: ZoneIndex, name: str) -> dns.rcode.Rcode:
    query = dns.message.make_query(name, dns.rdatatype.A)
    wire = Responder(index).answer(query.to_wire(), tcp=False)
    assert wire is not None
    return dns.message.from_wire(wire).rcode()


@dataclass
class Primary:
    db: Database
    server: DnsServer
    secret: str


@pytest.fixture
async def primary(tmp_path: Path) -> AsyncIterator[Primary]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'primary.db'}")
    await db.migrate()
    await zones.add_zone(db, ZONE, ns=["ns1.example.org"])
    key = await add_key(db, KEY, zone=ZONE)
    await update(db, Operation("add", f"a.{ZONE}", "A", 60, "192.0.2.1"))
    index = ZoneIndex()
    follower = Follower(db, index)
    await follower.sync()
    access = AccessLoader(db)
    await access.reload()
    server = await start_dns(
        index, "127.0.0.1", 0, dispatch=lambda r: Dispatcher(index, db, access, r)
    )
    try:
        yield Primary(db, server, key.secret)
    finally:
        await server.close()
        await db.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Node:
    db: Database
    index: ZoneIndex
    access: AccessLoader
    manager: Secondaries
    transfers: asyncio.Queue[str]
    settled: asyncio.Queue[State]


async def secondary_node(path: Path, primary: Primary, clock: Clock) -> Node:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    if not await db.read(load_secondaries):
        await zones.add_zone(db, ZONE, primary=f"127.0.0.1:{primary.server.port}")
        await add_key(db, KEY, zone=ZONE, secret=primary.secret)
        await zones.set_primary(db, ZONE, f"127.0.0.1:{primary.server.port}", KEY)
    index = ZoneIndex()
    access = AccessLoader(db)
    await access.reload()
    transfers: asyncio.Queue[str] = asyncio.Queue()
    settled: asyncio.Queue[State] = asyncio.Queue()
    manager = Secondaries(
        index, db, access,
        on_transfer=transfers.put_nowait,
        on_settled=lambda _zone, state: settled.put_nowait(state),
        clock=clock, soa_timeout=0.2,
    )  # fmt: skip
    return Node(db, index, access, manager, transfers, settled)


async def test_axfr_ixfr_restart_and_expire(primary: Primary, tmp_path: Path) -> None:
    clock = Clock()
    node = await secondary_node(tmp_path / "secondary.db", primary, clock)
    # Before the first transfer the zone is known but not answered.
    await node.manager.load()
    try:
        assert await asyncio.wait_for(node.transfers.get(), 10) == ZONE
        zone = node.manager.zones[ZONE]
        assert zone.last is not None and zone.last.kind == "AXFR"
        assert a_records(node.index, f"a.{ZONE}") == ["192.0.2.1"]
        assert node.index.serial_of(ZONE) == 2

        # An IXFR: a changed address, a deleted name, a new TXT.
        await update(
            primary.db,
            Operation("add", f"b.{ZONE}", "A", 60, "192.0.2.2"),
            Operation("add", f"c.{ZONE}", "TXT", 60, '"hello"'),
        )
        await update(
            primary.db,
            Operation("delete_rrset", f"a.{ZONE}", "A"),
            Operation("add", f"a.{ZONE}", "A", 60, "192.0.2.9"),
            Operation("delete_name", f"b.{ZONE}"),
        )
        assert node.manager.notified(ZONE, "127.0.0.1", node.access.current.keyring.get(
            dns.name.from_text(KEY))) == dns.rcode.Rcode.NOERROR  # fmt: skip
        assert await asyncio.wait_for(node.transfers.get(), 10) == ZONE
        assert zone.last is not None and zone.last.kind == "IXFR"
        assert a_records(node.index, f"a.{ZONE}") == ["192.0.2.9"]
        assert rcode_of(node.index, f"b.{ZONE}") == dns.rcode.Rcode.NXDOMAIN
        primary_serial = await primary.db.read(load_serial)
        assert node.index.serial_of(ZONE) == primary_serial

        # NOTIFY from another address, or unsigned: refused, nothing happens.
        assert node.manager.notified(ZONE, "127.0.0.2", None) == dns.rcode.Rcode.REFUSED
        assert node.manager.notified(ZONE, "127.0.0.1", None) == dns.rcode.Rcode.REFUSED
        assert node.manager.notified("other.example", "127.0.0.1", None) == dns.rcode.Rcode.NOTAUTH
    finally:
        await node.manager.close()
        await node.db.close()

    # Restart: the copy comes from the store, the same as transferred.
    restarted = await secondary_node(tmp_path / "secondary.db", primary, clock)
    copies = await restarted.db.read(load_secondaries)
    assert copies[0].serial == primary_serial and copies[0].last_transfer == "IXFR"
    await primary.server.close()  # the primary is gone
    await restarted.manager.load()
    try:
        assert a_records(restarted.index, f"a.{ZONE}") == ["192.0.2.9"]
        txt = RRsetValue(f"c.{ZONE}", "TXT", 60, ('"hello"',))
        assert txt in copies[0].rrsets
        zone = restarted.manager.zones[ZONE]
        # The check at start fails (nobody answers): still answered while retrying.
        await wait_state(restarted, State.RETRYING)
        assert a_records(restarted.index, f"a.{ZONE}") == ["192.0.2.9"]
        # Past the SOA expire with no contact: SERVFAIL.
        clock.now += 1209600 + 1
        zone.wake.set()
        await wait_state(restarted, State.EXPIRED)
        assert rcode_of(restarted.index, f"a.{ZONE}") == dns.rcode.Rcode.SERVFAIL
        assert rcode_of(restarted.index, ZONE) == dns.rcode.Rcode.SERVFAIL
    finally:
        await restarted.manager.close()
        await restarted.db.close()


async def wait_state(node: Node, state: State) -> None:
    """Until the manager's task settles in `state` (bounded)."""
    async with asyncio.timeout(10):
        while await node.settled.get() is not state:
            pass


async def load_serial(conn: object) -> int:
    import sqlalchemy as sa

    from homing.store.schema import zones as zones_table

    result = await conn.scalar(  # type: ignore[attr-defined]
        sa.select(zones_table.c.serial).where(zones_table.c.name == ZONE)
    )
    return int(result)


async def test_writes_to_a_secondary_zone_are_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'homing.db'}")
    await db.migrate()
    try:
        ref = await zones.add_zone(db, ZONE, primary="127.0.0.1:5300")
        value = RRsetValue(f"x.{ZONE}", "A", 60, ("192.0.2.1",))

        async def write(txn: Txn) -> object:
            return await apply_change(txn, ZoneRef(ref.id, ZONE), value, actor="t", via="t")

        with pytest.raises(SecondaryZone):
            await db.write(write)
        assert (await db.read(load_secondaries))[0].rrsets == ()
        assert ZONE not in await db.read(zones.zone_refs)
    finally:
        await db.close()


def test_zone_copy_reports_what_an_incremental_change_touched() -> None:
    meta = ZoneMeta(ZONE, "ns1.example.org.", "hostmaster.example.org.")
    copy = ZoneCopy.build(
        meta,
        5,
        [
            RRsetValue(ZONE, "NS", 3600, ("ns1.example.org.",)),
            RRsetValue(f"a.{ZONE}", "A", 60, ("192.0.2.1",)),
            RRsetValue(f"b.{ZONE}", "A", 60, ("192.0.2.2",)),
            RRsetValue(f"b.{ZONE}", "TXT", 60, ('"x"',)),
        ],
    )
    assert copy.last is None

    def rdata(rtype: str, text: str) -> dns.rdata.Rdata:
        return dns.rdata.from_text("IN", rtype, text)

    with copy.writer() as txn:
        txn.replace(dns.name.from_text(f"a.{ZONE}"), 120, rdata("A", "192.0.2.3"))
        txn.delete(dns.name.from_text(f"b.{ZONE}"), "TXT")
        txn.add(dns.name.from_text(f"c.{ZONE}"), 60, rdata("AAAA", "2001:db8::1"))
        soa = rdata("SOA", "ns1.example.org. h.example.org. 6 1 2 3 4")
        txn.replace(dns.name.from_text(ZONE), 60, soa)
    assert sorted(copy.changes(), key=lambda v: (v.name, v.rtype)) == [
        RRsetValue(f"a.{ZONE}", "A", 120, ("192.0.2.3",)),
        RRsetValue(f"b.{ZONE}", "TXT", 60, ()),
        RRsetValue(f"c.{ZONE}", "AAAA", 60, ("2001:db8::1",)),
    ]
    new_meta = copy.meta(ZONE)
    assert (new_meta.rname, new_meta.refresh, new_meta.expire) == ("h.example.org.", 1, 3)


def test_index_replace_moves_rrsets_and_serial_in_one_step() -> None:
    index = ZoneIndex()
    meta = ZoneMeta(ZONE, "ns1.example.org.", "hostmaster.example.org.")
    index.put_zone(meta, 7, [RRsetValue(f"a.{ZONE}", "A", 60, ("192.0.2.1",))])
    responder = Responder(index)
    query = dns.message.make_query(f"a.{ZONE}", dns.rdatatype.A)
    assert responder.answer(query.to_wire(), tcp=False)  # cached now
    zone = index.replace(
        ZONE,
        9,
        [
            RRsetValue(f"a.{ZONE}", "A", 60, ()),
            RRsetValue(f"b.{ZONE}", "A", 60, ("192.0.2.2",)),
        ],
        replace(meta, refresh=30),
    )
    assert zone is not None and zone.serial == 9 and zone.meta.refresh == 30
    wire = responder.answer(query.to_wire(), tcp=False)
    assert wire is not None
    assert dns.message.from_wire(wire).rcode() == dns.rcode.NXDOMAIN  # the cache forgot it
    assert a_records(index, f"b.{ZONE}") == ["192.0.2.2"]
    assert index.replace("absent.example", 1, []) is None


async def test_workers_pass_an_accepted_notify_on(tmp_path: Path) -> None:
    """With --workers, a NOTIFY another worker accepted reaches worker 0 (SiblingWake)."""
    from homing.dns.access import Access, ZoneAccess
    from homing.dns.notifyjudge import ForwardedNotify
    from homing.workers import SiblingWake

    zones_to_check: asyncio.Queue[str] = asyncio.Queue()
    wakes: list[int] = []
    leader = SiblingWake(tmp_path, lambda: wakes.append(0), on_notify=zones_to_check.put_nowait)
    other = SiblingWake(tmp_path, lambda: wakes.append(1))
    await leader.start()
    # Sockets are named by process id: the second one of this process gets its own name.
    other.path = tmp_path / "worker-other.sock"
    await other.start()
    try:
        access = AccessLoader(Database(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"))
        access.current = Access(zones={ZONE: ZoneAccess(primary=("127.0.0.1", 53))})
        judge = ForwardedNotify(access, other.notify)
        assert judge(ZONE, "127.0.0.2", None) == dns.rcode.Rcode.REFUSED
        assert judge("other.example", "127.0.0.1", None) == dns.rcode.Rcode.NOTAUTH
        assert judge(ZONE, "127.0.0.1", None) == dns.rcode.Rcode.NOERROR
        assert await asyncio.wait_for(zones_to_check.get(), 5) == ZONE
        assert zones_to_check.empty() and wakes == []  # a NOTIFY is not a commit
    finally:
        leader.close()
        other.close()
