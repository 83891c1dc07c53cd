"""Hidden primary: the UPDATE messages a push sends, and the pusher against a fake primary."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.update
import pytest

from homing.dns.access import AccessLoader
from homing.dns.push import Pusher, changed_rrsets, update_messages
from homing.domain.records import JournalEntry, RRsetValue
from homing.service import keys, zones
from homing.service.changes import ZoneRef, apply_changes
from homing.service.push import push_state
from homing.store.db import Database, Txn

ZONE = "push.example.org"


def entry(serial: int, name: str, rtype: str, *new: str, ttl: int = 60) -> JournalEntry:
    return JournalEntry(0, ZONE, serial, name, rtype, ttl, (), tuple(new), "t", "test")


def update_section(message: dns.message.Message) -> list[tuple[str, str, str, int, list[str]]]:
    """(name, class, type, ttl, rdatas) of each RRset in the update section, as sent (the
    parser gives each RR of an UPDATE its own RRset: consecutive ones are joined again)."""
    wire = dns.message.from_wire(message.to_wire(), keyring=False)
    assert isinstance(wire, dns.update.UpdateMessage)
    found: list[tuple[str, str, str, int, list[str]]] = []
    for rrset in wire.update:
        head = (
            rrset.name.to_text(),
            dns.rdataclass.to_text(rrset.deleting or rrset.rdclass),
            dns.rdatatype.to_text(rrset.rdtype),
            rrset.ttl,
        )
        rdatas = [r.to_text() for r in rrset]
        if found and found[-1][:4] == head and rdatas:
            found[-1] = (*head, sorted(found[-1][4] + rdatas))
        else:
            found.append((*head, sorted(rdatas)))
    return found


# -- building the messages ---------------------------------------------------------


def test_a_changed_rrset_is_replaced_and_a_deleted_one_deleted() -> None:
    values = [
        RRsetValue(f"cam.{ZONE}", "A", 60, ("192.0.2.1", "192.0.2.2")),
        RRsetValue(f"old.{ZONE}", "AAAA", 60, ()),
    ]
    [message] = update_messages(ZONE, values)
    assert message.opcode() == dns.opcode.Opcode.UPDATE
    assert [q.name.to_text() for q in message.zone] == [f"{ZONE}."]
    assert message.zone[0].rdtype == dns.rdatatype.RdataType.SOA
    assert not message.prerequisite  # homing's data wins: no prerequisites
    assert update_section(message) == [
        (f"cam.{ZONE}.", "ANY", "A", 0, []),  # delete the RRset...
        (f"cam.{ZONE}.", "IN", "A", 60, ["192.0.2.1", "192.0.2.2"]),  # ...add its records
        (f"old.{ZONE}.", "ANY", "AAAA", 0, []),
    ]


def test_our_soa_and_apex_ns_are_never_pushed() -> None:
    values = [
        RRsetValue(ZONE, "NS", 3600, ("ns1.example.org.",)),
        RRsetValue(ZONE, "SOA", 60, ("ns1. h. 1 2 3 4 5",)),
        RRsetValue(f"sub.{ZONE}", "NS", 3600, ("ns.elsewhere.example.",)),  # a delegation is data
        RRsetValue(ZONE, "TXT", 60, ('"v=spf1 -all"',)),
    ]
    [message] = update_messages(ZONE, values)
    assert [(name, rtype) for name, cls, rtype, _, _ in update_section(message) if cls == "IN"] == [
        (f"sub.{ZONE}.", "NS"),
        (f"{ZONE}.", "TXT"),
    ]
    assert update_messages(ZONE, values[:2]) == []


def test_a_stored_value_dns_cannot_serve_is_pushed_as_a_delete() -> None:
    # The index skips such a row; the external primary is told to hold what homing answers,
    # and the rest of the push goes on.
    values = [
        RRsetValue(f"bad.{ZONE}", "AAAA", 60, ("fe80::1%eth0",)),
        RRsetValue(f"{'x' * 64}.{ZONE}", "A", 60, ("192.0.2.7",)),  # no name: nothing sent
        RRsetValue(f"cam.{ZONE}", "A", 60, ("192.0.2.1",)),
    ]
    [message] = update_messages(ZONE, values)
    assert update_section(message) == [
        (f"bad.{ZONE}.", "ANY", "AAAA", 0, []),
        (f"cam.{ZONE}.", "ANY", "A", 0, []),
        (f"cam.{ZONE}.", "IN", "A", 60, ["192.0.2.1"]),
    ]


def test_many_rrsets_are_split_over_messages() -> None:
    values = [RRsetValue(f"h{i}.{ZONE}", "A", 60, (f"192.0.2.{i}",)) for i in range(5)]
    messages = update_messages(ZONE, values, per_message=2)
    assert [len(update_section(m)) for m in messages] == [4, 4, 2]


def test_journal_entries_become_each_rrsets_last_value() -> None:
    entries = [
        entry(5, f"a.{ZONE}", "A", "192.0.2.1"),
        entry(6, f"b.{ZONE}", "A", "192.0.2.9"),
        entry(7, f"a.{ZONE}", "A", "192.0.2.2"),
        entry(8, f"b.{ZONE}", "A"),  # deleted
        entry(9, ZONE, "NS", "ns9.example.org."),  # ours
    ]
    assert changed_rrsets(ZONE, entries) == [
        RRsetValue(f"a.{ZONE}", "A", 60, ("192.0.2.2",)),
        RRsetValue(f"b.{ZONE}", "A", 60, ()),
    ]


# -- the pusher against a fake primary over TCP -----------------------------------


class FakePrimary:
    """Takes TSIG-signed UPDATEs over TCP and answers `rcode`, signed."""

    def __init__(self) -> None:
        self.keyring: dict[dns.name.Name, dns.tsig.Key] = {}
        self.rcode = dns.rcode.Rcode.NOERROR
        self.received: list[dns.message.Message] = []
        self.arrived = asyncio.Event()
        self.connections: set[asyncio.StreamWriter] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(2), "big")
                query = dns.message.from_wire(
                    await reader.readexactly(length), keyring=self.keyring
                )
                assert query.had_tsig
                self.received.append(query)
                self.arrived.set()
                response = dns.message.make_response(query)
                response.set_rcode(self.rcode)
                wire = response.to_wire()
                writer.write(len(wire).to_bytes(2, "big") + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.connections.discard(writer)
            writer.close()

    def updated(self) -> list[tuple[str, str, str, int, list[str]]]:
        return [rr for message in self.received for rr in update_section(message)]


@pytest.fixture
async def primary() -> AsyncIterator[tuple[FakePrimary, int]]:
    fake = FakePrimary()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    try:
        yield fake, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in list(fake.connections):
            writer.close()  # one the pusher left mid-request when it was closed
        await asyncio.wait_for(server.wait_closed(), 5.0)


async def setup_key(db: Database, fake: FakePrimary) -> None:
    """The zone's push key, known to the fake primary too."""
    key = await keys.add_key(db, "push-key", zone=ZONE)
    name = dns.name.from_text(key.name)
    fake.keyring[name] = dns.tsig.Key(name, key.secret, dns.tsig.HMAC_SHA256)


async def setup_zone(db: Database, port: int, fake: FakePrimary) -> ZoneRef:
    zone = await zones.add_zone(
        db, ZONE, ns=["ns1.example.org"], push=f"127.0.0.1:{port}", push_key="push-key"
    )
    await setup_key(db, fake)
    return zone


async def change(db: Database, zone: ZoneRef, *values: RRsetValue) -> int:
    async def unit(txn: Txn) -> list[JournalEntry]:
        return await apply_changes(txn, zone, list(values), actor="t", via="test")

    return (await db.write(unit))[-1].serial


async def stored_pushed(db: Database) -> int | None:
    state = await db.read(lambda conn: push_state(conn, ZONE))
    assert state is not None
    return state.pushed


async def test_pusher_sends_the_zone_then_each_change_and_retries_failures(
    db: Database, primary: tuple[FakePrimary, int]
) -> None:
    fake, port = primary
    zone = await setup_zone(db, port, fake)
    access = AccessLoader(db)
    await access.reload()
    pusher = Pusher(db, access, timeout=1.0, retry_min=0.05, retry_max=0.2)
    try:
        # A new target gets the whole zone first (homing's apex NS excepted).
        serial = await change(db, zone, RRsetValue(f"a.{ZONE}", "A", 60, ("192.0.2.1",)))
        pusher.changed(ZONE)
        assert await pusher.pushed(ZONE, serial, 5.0)
        assert fake.updated() == [
            (f"a.{ZONE}.", "ANY", "A", 0, []),
            (f"a.{ZONE}.", "IN", "A", 60, ["192.0.2.1"]),
        ]
        assert await stored_pushed(db) == serial

        # Then the journal, in order: a replace and a deletion.
        fake.received.clear()
        await change(db, zone, RRsetValue(f"b.{ZONE}", "TXT", 60, ('"x"',)))
        serial = await change(db, zone, RRsetValue(f"a.{ZONE}", "A", 60, ()))
        pusher.changed(ZONE)
        assert await pusher.pushed(ZONE, serial, 5.0)
        assert fake.updated() == [
            (f"b.{ZONE}.", "ANY", "TXT", 0, []),
            (f"b.{ZONE}.", "IN", "TXT", 60, ['"x"']),
            (f"a.{ZONE}.", "ANY", "A", 0, []),
        ]

        # The primary refuses: the waiter hears it at once, the store keeps the old serial.
        fake.rcode = dns.rcode.Rcode.REFUSED
        before = serial
        serial = await change(db, zone, RRsetValue(f"c.{ZONE}", "A", 60, ("192.0.2.3",)))
        pusher.changed(ZONE)
        started = asyncio.get_running_loop().time()
        assert not await pusher.pushed(ZONE, serial, 5.0)
        assert asyncio.get_running_loop().time() - started < 1.0
        assert await stored_pushed(db) == before

        # It takes updates again: the pusher's own retry brings it up to date, no new change.
        fake.rcode = dns.rcode.Rcode.NOERROR
        fake.received.clear()
        fake.arrived.clear()
        await asyncio.wait_for(fake.arrived.wait(), 5.0)
        assert await pusher.pushed(ZONE, serial, 5.0)
        assert await stored_pushed(db) == serial
        assert (f"c.{ZONE}.", "IN", "A", 60, ["192.0.2.3"]) in fake.updated()
    finally:
        await pusher.close()


async def test_a_missing_key_fails_the_push_and_a_zone_without_target_never_waits(
    db: Database, primary: tuple[FakePrimary, int]
) -> None:
    _fake, port = primary
    zone = await zones.add_zone(
        db, ZONE, ns=["ns1.example.org"], push=f"127.0.0.1:{port}", push_key="not-yet"
    )
    plain = await zones.add_zone(db, "plain.example.org")
    access = AccessLoader(db)
    await access.reload()
    pusher = Pusher(db, access, timeout=1.0, retry_min=0.05, retry_max=0.2)
    try:
        serial = await change(db, zone, RRsetValue(f"a.{ZONE}", "A", 60, ("192.0.2.1",)))
        pusher.changed(ZONE)
        assert not await pusher.pushed(ZONE, serial, 2.0)
        other = await change(db, plain, RRsetValue("a.plain.example.org", "A", 60, ("192.0.2.1",)))
        assert await pusher.pushed("plain.example.org", other, 0.01)
    finally:
        await pusher.close()


async def test_a_zone_given_a_target_later_is_pushed_whole_without_a_change(
    db: Database, primary: tuple[FakePrimary, int]
) -> None:
    fake, port = primary
    zone = await zones.add_zone(db, ZONE, ns=["ns1.example.org"])
    serial = await change(db, zone, RRsetValue(f"a.{ZONE}", "A", 60, ("192.0.2.1",)))
    access = AccessLoader(db)
    await access.reload()
    pusher = Pusher(db, access, timeout=1.0, retry_min=0.05, retry_max=0.2)
    try:
        await setup_key(db, fake)
        await zones.set_push(db, ZONE, f"127.0.0.1:{port}", "push-key")
        await access.reload()  # what `homing serve` does every few seconds
        await asyncio.wait_for(fake.arrived.wait(), 5.0)
        assert await pusher.pushed(ZONE, serial, 5.0)
        assert (f"a.{ZONE}.", "IN", "A", 60, ["192.0.2.1"]) in fake.updated()
    finally:
        await pusher.close()
