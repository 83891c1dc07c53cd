"""The compact zone index: wire-name keys, records kept as answer wire, existing names, the
change log, the store-form load path, and answers that follow every change at once."""

from __future__ import annotations

import logging

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from homing.dns.answer import Responder
from homing.dns.index import ZoneIndex, name_wire
from homing.dns.wire import OUR_OPT, Question
from homing.domain.records import JournalEntry, RRsetValue, ZoneMeta

ZONE = "dyn.example.net"
META = ZoneMeta(ZONE, f"ns1.{ZONE}", f"hostmaster.{ZONE}")


def make_index() -> ZoneIndex:
    index = ZoneIndex()
    index.put_zone(
        META,
        1,
        [
            RRsetValue(ZONE, "NS", 3600, (f"ns1.{ZONE}.",)),
            RRsetValue(f"a.{ZONE}", "A", 60, ("192.0.2.1",)),
            RRsetValue(f"b.{ZONE}", "A", 60, ("192.0.2.2",)),
        ],
    )
    return index


def entry(index: ZoneIndex, name: str, *rdatas: str, rtype: str = "A") -> JournalEntry:
    serial = index.serial_of(ZONE)
    assert serial is not None
    return JournalEntry(0, ZONE, serial + 1, name, rtype, 60, (), tuple(rdatas), "t", "t")


def ask(responder: Responder, name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    wire = responder.answer(query.to_wire(), tcp=False)
    assert wire is not None
    return dns.message.from_wire(wire)


def key(label: str) -> bytes:
    """A name's key in the zone: its labels below the apex, as wire."""
    return name_wire(label)[:-1]


def test_keys_are_relative_wire_names_and_the_zone_labels_are_not_repeated() -> None:
    index = make_index()
    zone = index.zone(ZONE)
    assert zone is not None
    assert zone.wire == b"\x03dyn\x07example\x03net\x00"
    assert set(zone.owners) == {b"", b"\x01a", b"\x01b"}
    rdtype, count, wire = zone.owners[b"\x01a"]
    # One answer record, owner a pointer to the question, then type, class, TTL, the address.
    assert (rdtype, count) == (1, 1)
    assert wire == bytes.fromhex("c00c 0001 0001 0000003c 0004 c0000201")
    assert zone.key_of_text(f"A.{ZONE.upper()}.") == b"\x01a"
    assert zone.key_of(dns.name.from_text(f"x.A.{ZONE}")) == b"\x01x\x01a"
    assert zone.key_of_text("a.example.net") is None  # outside
    assert zone.key_of_text(f"xdyn.{ZONE[4:]}") is None  # a suffix, but not at a label boundary


def test_names_follow_owners_and_their_ancestors() -> None:
    index = make_index()
    zone = index.zone(ZONE)
    assert zone is not None
    assert zone.below == {}  # owners one label down count nothing
    deep = f"x.y.z.{ZONE}"
    assert index.apply(entry(index, deep, "192.0.2.9"))
    assert zone.below == {key("y.z"): 1, key("z"): 1}
    assert zone.exists(key("y.z")) and zone.exists(key("z"))  # empty non-terminals
    assert index.apply(entry(index, f"w.z.{ZONE}", "192.0.2.8"))
    assert zone.below[key("z")] == 2
    assert index.apply(entry(index, deep))  # deleted again
    assert zone.below == {key("z"): 1}
    assert not zone.exists(key("y.z"))
    assert zone.exists(key("a")) and zone.exists(b"")


def test_change_log_and_its_limits() -> None:
    index = make_index()
    start = index.generation
    index.apply(entry(index, f"a.{ZONE}", "192.0.2.10"))
    assert index.changes_since(start) == [(name_wire(ZONE), b"\x01a")]
    assert index.changes_since(index.generation) == []
    index.generation += 1  # changed behind the log's back: callers must start over
    assert index.changes_since(start) is None


def test_an_update_changes_the_next_answer_and_the_negative_serial() -> None:
    index = make_index()
    responder = Responder(index)
    assert ask(responder, f"a.{ZONE}").answer[0][0].address == "192.0.2.1"
    nx = ask(responder, f"nobody.{ZONE}")
    nodata = ask(responder, f"a.{ZONE}", "AAAA")
    assert nx.authority[0][0].serial == nodata.authority[0][0].serial == 1
    index.apply(entry(index, f"a.{ZONE}", "192.0.2.10"))
    assert ask(responder, f"a.{ZONE}").answer[0][0].address == "192.0.2.10"
    assert ask(responder, f"b.{ZONE}").answer[0][0].address == "192.0.2.2"
    assert ask(responder, f"nobody.{ZONE}").authority[0][0].serial == 2
    assert ask(responder, f"a.{ZONE}", "AAAA").authority[0][0].serial == 2
    index.apply(entry(index, f"a.{ZONE}", "2001:db8::a", rtype="AAAA"))
    assert ask(responder, f"a.{ZONE}", "AAAA").answer[0][0].address == "2001:db8::a"
    assert ask(responder, f"a.{ZONE}").answer[0][0].address == "192.0.2.10"  # A kept
    index.apply(entry(index, f"a.{ZONE}"))  # A deleted: the name still has its AAAA
    nodata = ask(responder, f"a.{ZONE}")
    assert (nodata.rcode(), nodata.answer, nodata.authority[0][0].serial) == (0, [], 4)


def test_the_hot_path_keeps_positive_replies_and_the_slow_path_forgets_its_zone() -> None:
    index = make_index()
    responder = Responder(index)
    for name, rdtype in ((f"a.{ZONE}", "A"), (f"nobody.{ZONE}", "A"), (f"b.{ZONE}", "TXT")):
        ask(responder, name, rdtype)
    assert responder._kept.prepared.entries == {}  # answered straight from the index
    # Only the positive reply is kept whole: a negative one carries the zone's serial.
    [kept] = responder.udp_replies()
    assert name_wire(f"a.{ZONE}") in kept
    soa = ask(responder, ZONE, "SOA")  # the apex goes through dnspython, and is cached
    assert len(responder._kept.prepared.entries) == 1 and soa.answer[0][0].serial == 1
    index.apply(entry(index, f"a.{ZONE}", "192.0.2.10"))
    assert ask(responder, ZONE, "SOA").answer[0][0].serial == 2


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
    for i in range(40):  # ANY takes the cached slow path
        assert ask(responder, f"n{i}.{ZONE}", "ANY").rcode() == dns.rcode.NXDOMAIN
        assert len(responder._kept.prepared.entries) <= 8
    assert ask(responder, f"a.{ZONE}", "ANY").answer[0][0].address == "192.0.2.1"
    index.apply(entry(index, f"a.{ZONE}", "192.0.2.11"))
    assert ask(responder, f"a.{ZONE}", "ANY").answer[0][0].address == "192.0.2.11"


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


STORED = [
    (f"h1.{ZONE}", "A", 60, "192.0.2.1"),
    (f"h1.{ZONE}", "AAAA", 60, "2001:db8::1"),
    (f"h2.{ZONE}", "A", 300, "192.0.2.2\n192.0.2.3\n192.0.2.2"),  # a duplicate counts once
    (f"H3.{ZONE}", "A", 60, "192.0.2.4"),  # upper case
    (f"404.{ZONE}", "AAAA", 60, "::ffff:192.0.2.5"),
    (f"deep.er.{ZONE}", "TXT", 60, '"x y"'),
    (f"*.wild.{ZONE}", "A", 60, "192.0.2.6"),
    (f"mail.{ZONE}", "MX", 60, f"10 h1.{ZONE}."),
    (ZONE, "NS", 3600, f"ns1.{ZONE}.\nns2.{ZONE}."),
    ("stray.example.org", "A", 60, "192.0.2.7"),  # outside the zone
]


def test_loading_stored_rows_matches_setting_each_rrset() -> None:
    loaded, built = ZoneIndex(), ZoneIndex()
    zone = loaded.loading(META, 7)
    zone.load(STORED[:4])
    zone.load(STORED[4:])  # in batches, as the follower streams them
    assert loaded.zone(ZONE) is None  # not served before loaded()
    loaded.loaded(zone)
    built.put_zone(
        META, 7, [RRsetValue(n, t, ttl, RRsetValue.decode_rdatas(r)) for n, t, ttl, r in STORED]
    )
    other = built.zone(ZONE)
    assert other is not None
    assert (zone.owners, zone.below, zone.outside) == (other.owners, other.below, other.outside)
    assert zone.owners[b"\x02h2"][1] == 2
    assert zone.below == {key("er"): 1, key("wild"): 1}  # the empty non-terminals
    assert set(zone.outside) == {name_wire("stray.example.org")}


def test_the_dnspython_view_holds_every_rrset_for_axfr() -> None:
    index = ZoneIndex()
    zone = index.loading(META, 7)
    zone.load(STORED)
    index.loaded(zone)
    texts = sorted(rrset.to_text() for rrset in zone.rrsets())
    expected = []
    for name, rtype, ttl, rdatas in STORED:
        owner = dns.name.from_text(name.lower())
        expected.append(dns.rrset.from_text_list(owner, ttl, "IN", rtype, rdatas.split("\n")))
    assert texts == sorted(r.to_text() for r in expected)
    mx = zone.node(dns.name.from_text(f"mail.{ZONE}"))
    assert mx is not None and mx[dns.rdatatype.RdataType.MX][0].exchange.to_text() == f"h1.{ZONE}."


@pytest.mark.parametrize(
    "row",
    [
        (f"h.{ZONE}", "A", 60, "192.0.2.300"),
        (f"h.{ZONE}", "AAAA", 60, "2001:db8::g"),
        (f"{'x' * 64}.{ZONE}", "A", 60, "192.0.2.1"),
        (f"h.{ZONE}", "MX", 60, "not a number"),
        (f"h.{ZONE}", "NOSUCHTYPE", 60, "x"),
    ],
)
def test_bad_rows_are_logged_skipped_and_change_nothing(
    row: tuple[str, str, int, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A stored row the index cannot render (written by hand or an older version) is named
    in the log and left out; the rows after it still load."""
    index = make_index()
    zone = index.zone(ZONE)
    assert zone is not None
    before = dict(zone.owners)
    good = (f"after.{ZONE}", "A", 60, "192.0.2.9")
    with caplog.at_level(logging.ERROR, logger="homing.dns.index"):
        zone.load([row, good])
    assert zone.owners == {**before, zone.key_of_text(good[0]): zone.owners[b"\x05after"]}
    [record] = caplog.records
    assert f"zone {ZONE} serial" in record.getMessage()
    assert f"{row[0]} {row[1]} cannot be served, skipped" in record.getMessage()


def test_a_journal_entry_that_cannot_be_served_is_skipped_and_the_zone_moves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    index = make_index()
    zone = index.zone(ZONE)
    assert zone is not None
    serial = zone.serial
    name = f"h1.{ZONE}"

    def entry(step: int, new: tuple[str, ...]) -> JournalEntry:
        return JournalEntry(0, ZONE, serial + step, name, "AAAA", 60, (), new, "test", "test")

    with caplog.at_level(logging.ERROR, logger="homing.dns.index"):
        assert index.apply(entry(1, ("fe80::1%eth0",)))
    assert zone.serial == serial + 1
    assert "AAAA" not in str(zone.node(dns.name.from_text(name)) or {})
    assert f"serial {serial + 1}: journal entry {name} AAAA cannot be served" in caplog.text
    assert index.apply(entry(2, ("2001:db8::7",)))
    node = zone.node(dns.name.from_text(name))
    assert node is not None
    assert [r.to_text() for r in node[dns.rdatatype.RdataType.AAAA]] == ["2001:db8::7"]


def test_the_negative_record_follows_serial_and_soa_parameters() -> None:
    index = make_index()
    zone = index.zone(ZONE)
    assert zone is not None
    first = zone.negative_record()
    assert zone.negative_record() is first  # kept while nothing moves
    zone.serial += 1
    second = zone.negative_record()
    assert second != first
    zone.meta = ZoneMeta(ZONE, f"ns1.{ZONE}", f"hostmaster.{ZONE}", minimum=5)
    responder = Responder(index)
    nx = ask(responder, f"nobody.{ZONE}")
    [soa] = nx.authority
    assert (soa.ttl, soa[0].serial, soa[0].minimum) == (5, 2, 5)
    assert soa.name == dns.name.from_text(ZONE)


@pytest.mark.parametrize(
    ("qname", "rdtype"),
    [
        (f"h1.{ZONE}", "A"),
        (f"H1.{ZONE.upper()}", "AAAA"),
        (f"h2.{ZONE}", "A"),  # two records
        (f"h2.{ZONE}", "AAAA"),  # NODATA
        (f"nobody.{ZONE}", "A"),  # NXDOMAIN
        (f"x.h1.{ZONE}", "A"),  # NXDOMAIN below a name without children
        (f"er.{ZONE}", "TXT"),  # an empty non-terminal: NODATA
        (f"deep.er.{ZONE}", "TXT"),
        (f"Any.Wild.{ZONE}", "A"),  # a wildcard, owner the name asked
        (f"any.wild.{ZONE}", "TXT"),  # NODATA from the wildcard
        (f"404.{ZONE}", "AAAA"),  # (MX takes the slow path: its target's addresses come too)
        (f"h1.{ZONE}", "SOA"),
    ],
)
@pytest.mark.parametrize("use_edns", [False, True])
def test_written_answers_match_what_dnspython_renders_from_resolve(
    qname: str, rdtype: str, use_edns: bool
) -> None:
    index = ZoneIndex()
    zone = index.loading(META, 7)
    zone.load(STORED)
    index.loaded(zone)
    query = dns.message.make_query(qname, rdtype, use_edns=use_edns)
    wire = query.to_wire()
    responder = Responder(index)
    direct = responder.answer(wire, tcp=False)
    assert direct is not None and responder._kept.prepared.entries == {}  # the hot path answered
    # The same question through resolve() and dnspython's renderer.
    name_end = wire.index(0, 12) + 1
    question = wire[12 : name_end + 4]
    lowered = question[: name_end - 12].lower()
    payload, opt = (1232, OUR_OPT) if use_edns else (None, b"")
    parsed = Question(query.id, query.flags, question, name_end - 12, payload, opt)
    prepared, _ = responder._prepare(lowered, parsed)
    rendered = prepared.render(parsed, 1232 if use_edns else 512)
    ours, theirs = dns.message.from_wire(direct), dns.message.from_wire(rendered)
    assert ours == theirs
    assert (ours.rcode(), ours.flags) == (theirs.rcode(), theirs.flags)
    assert ours.question[0].name.to_text() == query.question[0].name.to_text()  # case echoed
    sections = zip(ours.answer + ours.authority, theirs.answer + theirs.authority, strict=True)
    for mine, other in sections:
        assert (mine.name.to_text(), mine.ttl) == (other.name.to_text(), other.ttl)
