"""The zone index tracks existing names and a change log; the cache forgets only what changed."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from homing.dns.answer import Responder
from homing.dns.index import ZoneIndex
from homing.domain.records import JournalEntry, RRsetValue, ZoneMeta

ZONE = "dyn.example.net"


def make_index() -> ZoneIndex:
    index = ZoneIndex()
    index.put_zone(
        ZoneMeta(ZONE, f"ns1.{ZONE}", f"hostmaster.{ZONE}"),
        1,
        [
            RRsetValue(ZONE, "NS", 3600, (f"ns1.{ZONE}.",)),
            RRsetValue(f"a.{ZONE}", "A", 60, ("192.0.2.1",)),
            RRsetValue(f"b.{ZONE}", "A", 60, ("192.0.2.2",)),
        ],
    )
    return index


def entry(index: ZoneIndex, name: str, *rdatas: str) -> JournalEntry:
    serial = index.serial_of(ZONE)
    assert serial is not None
    return JournalEntry(0, ZONE, serial + 1, name, "A", 60, (), tuple(rdatas), "t", "t")


def ask(responder: Responder, name: str) -> dns.message.Message:
    query = dns.message.make_query(name, dns.rdatatype.A)
    wire = responder.answer(query.to_wire(), tcp=False)
    assert wire is not None
    return dns.message.from_wire(wire)


def test_names_follow_owners_and_their_ancestors() -> None:
    index = make_index()
    zone = index.zone(ZONE)
    assert zone is not None
    deep = f"x.y.z.{ZONE}"
    assert index.apply(entry(index, deep, "192.0.2.9"))
    assert dns.name.from_text(f"y.z.{ZONE}") in zone.names  # an empty non-terminal
    assert index.apply(entry(index, deep))  # deleted again
    assert dns.name.from_text(f"z.{ZONE}") not in zone.names
    assert dns.name.from_text(f"a.{ZONE}") in zone.names
    assert zone.origin in zone.names


def test_change_log_and_its_limits() -> None:
    index = make_index()
    start = index.generation
    index.apply(entry(index, f"a.{ZONE}", "192.0.2.10"))
    assert index.changes_since(start) == [
        (dns.name.from_text(ZONE), dns.name.from_text(f"a.{ZONE}"))
    ]
    assert index.changes_since(index.generation) == []
    index.generation += 1  # changed behind the log's back: callers must start over
    assert index.changes_since(start) is None


def test_cache_forgets_only_the_changed_name_and_negative_answers() -> None:
    index = make_index()
    responder = Responder(index)
    ask(responder, f"a.{ZONE}")
    b_first = ask(responder, f"b.{ZONE}")
    nx = ask(responder, f"nobody.{ZONE}")
    cached = dict(responder._cache)
    index.apply(entry(index, f"a.{ZONE}", "192.0.2.10"))
    assert ask(responder, f"a.{ZONE}").answer[0][0].address == "192.0.2.10"
    # b's answer stayed cached (the same object), the negative answer was rebuilt.
    b_key = next(k for k in cached if k.startswith(dns.name.from_text(f"b.{ZONE}").to_wire()))
    assert responder._cache.get(b_key) is cached[b_key]
    assert ask(responder, f"b.{ZONE}").answer == b_first.answer
    fresh_nx = ask(responder, f"nobody.{ZONE}")
    assert fresh_nx.rcode() == dns.rcode.NXDOMAIN
    assert fresh_nx.authority[0][0].serial == nx.authority[0][0].serial + 1


def test_new_name_turns_nxdomain_into_an_answer_and_ancestors_into_nodata() -> None:
    index = make_index()
    responder = Responder(index)
    assert ask(responder, f"new.sub.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    assert ask(responder, f"sub.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    index.apply(entry(index, f"new.sub.{ZONE}", "192.0.2.77"))
    assert ask(responder, f"new.sub.{ZONE}").answer[0][0].address == "192.0.2.77"
    nodata = ask(responder, f"sub.{ZONE}")
    assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, [])


def test_full_cache_evicts_the_oldest_and_stays_bounded() -> None:
    index = make_index()
    responder = Responder(index, cache_size=8)
    for i in range(40):
        assert ask(responder, f"n{i}.{ZONE}").rcode() == dns.rcode.NXDOMAIN
        assert len(responder._cache) <= 8
    assert ask(responder, f"a.{ZONE}").answer[0][0].address == "192.0.2.1"
    index.apply(entry(index, f"a.{ZONE}", "192.0.2.11"))
    assert ask(responder, f"a.{ZONE}").answer[0][0].address == "192.0.2.11"


def test_directly_rendered_answers_read_like_dnspythons() -> None:
    index = make_index()
    index.apply(entry(index, f"a.{ZONE}", "192.0.2.1", "192.0.2.3", "192.0.2.2"))
    responder = Responder(index)
    for use_edns in (False, True):
        query = dns.message.make_query(f"A.{ZONE.upper()}", dns.rdatatype.A, use_edns=use_edns)
        wire = responder.answer(query.to_wire(), tcp=False)
        assert wire is not None
        reply = dns.message.from_wire(wire)
        assert reply.id == query.id and reply.flags & dns.flags.AA and reply.flags & dns.flags.QR
        assert reply.question[0].name.to_text() == f"A.{ZONE.upper()}."  # the case echoed
        [rrset] = reply.answer
        assert sorted(r.address for r in rrset) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        assert rrset.ttl == 60 and not reply.authority
        assert (reply.edns == 0) == use_edns
        if use_edns:
            assert reply.payload == 1232
