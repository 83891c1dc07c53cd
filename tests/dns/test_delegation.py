"""Zone cuts: names at and below NS below the apex get referrals (RFC 1034 4.3.2, RFC 9471)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from homing.dns.answer import Responder
from homing.dns.index import ZoneIndex, ZoneMeta
from homing.domain.records import JournalEntry, RRsetValue

ZONE = "deleg.example"
SERIAL = 10
Rcode = dns.rcode.Rcode


def n(label: str) -> str:
    return f"{label}.{ZONE}." if label else f"{ZONE}."


def zone_rrsets() -> list[RRsetValue]:
    return [
        RRsetValue(ZONE, "NS", 3600, (n("ns1"),)),
        RRsetValue(n("ns1"), "A", 3600, ("192.0.2.53",)),
        RRsetValue(n("host"), "A", 60, ("192.0.2.1",)),
        RRsetValue(n("*"), "A", 60, ("192.0.2.99",)),
        RRsetValue(n("tochild"), "CNAME", 60, (n("www.child"),)),
        # child: in-domain glue, sibling glue, a server outside the zone
        RRsetValue(n("child"), "NS", 3600, (n("ns1.child"), n("ns2.sib"), "ns.example.org.")),
        RRsetValue(n("child"), "DS", 3600, ("12345 13 2 " + "ab" * 32,)),
        RRsetValue(n("ns1.child"), "A", 3600, ("192.0.2.10",)),
        RRsetValue(n("ns1.child"), "AAAA", 3600, ("2001:db8::10",)),
        RRsetValue(n("sib"), "NS", 3600, (n("ns2.sib"),)),
        RRsetValue(n("ns2.sib"), "A", 3600, ("192.0.2.20",)),
    ]


@pytest.fixture
def index() -> ZoneIndex:
    index = ZoneIndex()
    meta = ZoneMeta(ZONE, n("ns1"), "hostmaster.example.", minimum=30, soa_ttl=300)
    index.put_zone(meta, SERIAL, zone_rrsets())
    return index


def ask(
    responder: Responder, qname: str, rdtype: str = "A", *, tcp: bool = False
) -> dns.message.Message:
    q = dns.message.make_query(qname, rdtype, use_edns=0)
    reply = responder.answer(q.to_wire(), tcp=tcp)
    assert reply is not None
    return dns.message.from_wire(reply)


def lines(section: list[dns.rrset.RRset]) -> list[str]:
    return sorted(line for rrset in section for line in rrset.to_text().lower().split("\n"))


REFERRAL_NS = sorted(
    f"{n('child')} 3600 in ns {target}"
    for target in (n("ns1.child"), n("ns2.sib"), "ns.example.org.")
)
REFERRAL_GLUE = sorted(
    [
        f"{n('ns1.child')} 3600 in a 192.0.2.10",
        f"{n('ns1.child')} 3600 in aaaa 2001:db8::10",
        f"{n('ns2.sib')} 3600 in a 192.0.2.20",
    ]
)


def assert_referral(r: dns.message.Message) -> None:
    assert r.rcode() == Rcode.NOERROR
    assert not r.flags & dns.flags.AA
    assert r.answer == []
    assert lines(r.authority) == REFERRAL_NS
    assert lines(r.additional) == REFERRAL_GLUE


@pytest.mark.parametrize(
    ("qname", "rdtype"),
    [
        (n("child"), "A"),
        (n("child"), "NS"),  # as Knot, NSD and BIND: a referral, not an answer
        (n("child"), "ANY"),
        (n("child"), "SOA"),
        (n("www.child"), "A"),  # below the cut and nowhere in the zone: no NXDOMAIN
        (n("a.b.www.child"), "TXT"),
        (n("ns1.child"), "A"),  # glue is never answered as data
        (n("ns1.child"), "AAAA"),
        (n("www.child"), "DS"),  # DS below the cut is the child's
        ("WwW.ChIlD." + ZONE + ".", "A"),
    ],
)
@pytest.mark.parametrize("tcp", [False, True])
def test_names_at_and_below_a_cut_get_a_referral(
    index: ZoneIndex, qname: str, rdtype: str, tcp: bool
) -> None:
    assert_referral(ask(Responder(index), qname, rdtype, tcp=tcp))


def test_glue_below_a_sibling_cut_is_in_the_referral(index: ZoneIndex) -> None:
    r = ask(Responder(index), n("x.sib"))
    assert not r.flags & dns.flags.AA
    assert lines(r.authority) == [f"{n('sib')} 3600 in ns {n('ns2.sib')}"]
    assert lines(r.additional) == [f"{n('ns2.sib')} 3600 in a 192.0.2.20"]


def test_ds_at_the_cut_is_the_parents_data(index: ZoneIndex) -> None:
    r = ask(Responder(index), n("child"), "DS")
    assert r.rcode() == Rcode.NOERROR and r.flags & dns.flags.AA
    assert lines(r.answer) == [f"{n('child')} 3600 in ds 12345 13 2 " + "ab" * 32]
    assert r.authority == [] and r.additional == []


def test_no_ds_at_the_cut_is_nodata_from_the_parent(index: ZoneIndex) -> None:
    r = ask(Responder(index), n("sib"), "DS")
    assert r.rcode() == Rcode.NOERROR and r.flags & dns.flags.AA
    assert r.answer == []
    assert [rrset.rdtype for rrset in r.authority] == [dns.rdatatype.SOA]


def test_a_wildcard_does_not_match_across_a_cut(index: ZoneIndex) -> None:
    responder = Responder(index)
    assert lines(ask(responder, n("nothing")).answer) == [f"{n('nothing')} 60 in a 192.0.2.99"]
    assert_referral(ask(responder, n("nothing.child")))


def test_data_outside_the_cuts_is_still_authoritative(index: ZoneIndex) -> None:
    r = ask(Responder(index), n("host"))
    assert r.flags & dns.flags.AA and lines(r.answer) == [f"{n('host')} 60 in a 192.0.2.1"]
    r = ask(Responder(index), n("gone.ns1"))
    assert r.rcode() == Rcode.NXDOMAIN and r.flags & dns.flags.AA


def test_a_cname_into_a_cut_ends_with_the_referral(index: ZoneIndex) -> None:
    r = ask(Responder(index), n("tochild"))
    assert r.flags & dns.flags.AA  # the CNAME is ours
    assert lines(r.answer) == [f"{n('tochild')} 60 in cname {n('www.child')}"]
    assert lines(r.authority) == REFERRAL_NS
    assert lines(r.additional) == REFERRAL_GLUE


def test_a_zone_without_delegations_keeps_no_cuts(index: ZoneIndex) -> None:
    other = ZoneIndex()
    other.put_zone(ZoneMeta("plain.example", "ns.plain.example", "h.plain.example"), 1, [])
    assert other.zone("plain.example").cuts == set()  # type: ignore[union-attr]
    assert index.zone(ZONE).cuts == {b"\x05child", b"\x03sib"}  # type: ignore[union-attr]


def entry(
    serial: int, name: str, rtype: str, old: tuple[str, ...], new: tuple[str, ...]
) -> JournalEntry:
    return JournalEntry(
        position=serial,
        zone=ZONE,
        serial=serial,
        name=name,
        rtype=rtype,
        ttl=3600,
        old=old,
        new=new,
        actor="test",
        via="test",
    )


def test_kept_answers_below_a_new_cut_are_forgotten(index: ZoneIndex) -> None:
    responder = Responder(index)
    assert index.apply(entry(SERIAL + 1, n("www.new"), "A", (), ("192.0.2.7",)))
    for _ in range(2):  # the second from the kept replies
        r = ask(responder, n("www.new"))
        assert r.flags & dns.flags.AA and len(r.answer) == 1
    assert index.apply(entry(SERIAL + 2, n("new"), "NS", (), ("ns.example.org.",)))
    r = ask(responder, n("www.new"))
    assert not r.flags & dns.flags.AA and r.answer == []
    assert lines(r.authority) == [f"{n('new')} 3600 in ns ns.example.org."]
    assert index.apply(entry(SERIAL + 3, n("new"), "NS", ("ns.example.org.",), ()))
    r = ask(responder, n("www.new"))
    assert r.flags & dns.flags.AA and len(r.answer) == 1  # undelegated: our data again


@pytest.mark.parametrize(
    ("name", "rtype", "new", "expect"),
    [
        (n("ns1.child"), "A", ("192.0.2.11",), f"{n('ns1.child')} 3600 in a 192.0.2.11"),
        (n("ns2.sib"), "A", ("192.0.2.21",), f"{n('ns2.sib')} 3600 in a 192.0.2.21"),
    ],
)
def test_a_glue_change_reaches_kept_referrals(
    index: ZoneIndex, name: str, rtype: str, new: tuple[str, ...], expect: str
) -> None:
    responder = Responder(index)
    for _ in range(2):
        assert_referral(ask(responder, n("www.child")))
    assert index.apply(entry(SERIAL + 1, name, rtype, (), new))
    r = ask(responder, n("www.child"))
    assert expect in lines(r.additional)


def test_a_change_of_the_cuts_ns_reaches_kept_referrals(index: ZoneIndex) -> None:
    responder = Responder(index)
    assert_referral(ask(responder, n("www.child")))
    assert index.apply(entry(SERIAL + 1, n("child"), "NS", (), (n("ns1.child"),)))
    r = ask(responder, n("www.child"))
    assert lines(r.authority) == [f"{n('child')} 3600 in ns {n('ns1.child')}"]
    assert len(lines(r.additional)) == 2


def test_ds_of_a_child_served_here_too_comes_from_the_parent(index: ZoneIndex) -> None:
    """Both sides of the cut on one server: DS is the parent's data (RFC 4035 3.1.4.1),
    other types at the child's apex are the child's."""
    child = f"child.{ZONE}"
    meta = ZoneMeta(child, f"ns1.{child}.", "hostmaster.example.", minimum=30, soa_ttl=300)
    index.put_zone(meta, 1, [RRsetValue(f"{child}.", "NS", 3600, (f"ns1.{child}.",))])
    responder = Responder(index)
    for qname in (f"{child}.", f"CHILD.{ZONE}."):
        r = ask(responder, qname, "DS")
        assert r.rcode() == Rcode.NOERROR and r.flags & dns.flags.AA
        assert lines(r.answer) == [f"{n('child')} 3600 in ds 12345 13 2 {'ab' * 32}"]
    r = ask(responder, f"{child}.", "SOA")
    assert r.flags & dns.flags.AA and lines(r.answer)[0].startswith(f"{n('child')} ")
    assert r.answer[0].rdtype == dns.rdatatype.SOA


def test_ds_of_a_child_the_parent_does_not_delegate_is_the_parents_denial(
    index: ZoneIndex,
) -> None:
    """A zone served here under another served zone that has no cut for it: the parent's
    answer (its SOA in authority), not the child's apex NODATA."""
    child = f"orphan.{ZONE}"
    meta = ZoneMeta(child, f"ns1.{child}.", "hostmaster.example.", minimum=30, soa_ttl=300)
    index.put_zone(meta, 1, [RRsetValue(f"{child}.", "NS", 3600, (f"ns1.{child}.",))])
    r = ask(Responder(index), f"{child}.", "DS")
    assert r.answer == []
    assert [rrset.name.to_text() for rrset in r.authority] == [n("")]
    # the parent's wildcard owns the name there; it has no DS
    assert r.rcode() == Rcode.NOERROR
