"""The test zone every DNS test answers from."""

from __future__ import annotations

from homing.dns.index import ZoneIndex, ZoneMeta
from homing.domain.records import JournalEntry, RRsetValue

ZONE = "dyn.example.net"
SERIAL = 42
SOA_TTL = 300
NEGATIVE_TTL = 30  # the SOA MINIMUM, smaller than the SOA TTL, so RFC 2308 picks it
MANY = 100  # A records at many.ZONE: too big for 1232 bytes
FORTY = 40  # A records at forty.ZONE: too big for 512 bytes, fits 1232


def name(label: str) -> str:
    """`label` under the test zone."""
    return f"{label}.{ZONE}" if label else ZONE


def build_index() -> ZoneIndex:
    """A fresh index holding the test zone."""
    index = ZoneIndex()
    meta = ZoneMeta(
        ZONE,
        "ns1.example.net",
        "hostmaster.example.net",
        minimum=NEGATIVE_TTL,
        soa_ttl=SOA_TTL,
    )
    rrsets = [
        RRsetValue(ZONE, "NS", 3600, ("ns1.example.net.", "ns2.example.net.")),
        RRsetValue(name("host"), "A", 60, ("192.0.2.1",)),
        RRsetValue(name("host"), "AAAA", 60, ("2001:db8::1",)),
        RRsetValue(name("many"), "A", 60, tuple(f"192.0.2.{i}" for i in range(1, MANY + 1))),
        RRsetValue(name("forty"), "A", 60, tuple(f"198.51.100.{i}" for i in range(1, FORTY + 1))),
        RRsetValue(name("mail"), "MX", 60, (f"10 {name('host')}.",)),
        RRsetValue(name("alias"), "CNAME", 60, (f"{name('host')}.",)),
        RRsetValue(name("chain"), "CNAME", 60, (f"{name('alias')}.",)),
        RRsetValue(name("loop1"), "CNAME", 60, (f"{name('loop2')}.",)),
        RRsetValue(name("loop2"), "CNAME", 60, (f"{name('loop1')}.",)),
        RRsetValue(name("out"), "CNAME", 60, ("www.example.org.",)),
        RRsetValue(name("dangling"), "CNAME", 60, (f"{name('gone')}.",)),
        RRsetValue(name("*.wild"), "A", 60, ("192.0.2.99",)),
        RRsetValue(name("a.x.wild"), "TXT", 60, ('"below an empty non-terminal"',)),
        RRsetValue(name("deep.b.c"), "TXT", 60, ('"deep"',)),
    ]
    index.put_zone(meta, SERIAL, rrsets)
    return index


def host_moved(new: str) -> JournalEntry:
    """The journal entry that moves host.ZONE's A record from 192.0.2.1 to `new`."""
    return JournalEntry(
        position=1,
        zone=ZONE,
        serial=SERIAL + 1,
        name=name("host"),
        rtype="A",
        ttl=60,
        old=("192.0.2.1",),
        new=(new,),
        actor="test",
        via="test",
    )
