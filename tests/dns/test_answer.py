"""answer() over bytes: every rule of the authoritative server, without sockets."""

from __future__ import annotations

import logging
import random
import struct

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsigkeyring
import pytest

import homing.dns.answer
from homing.dns.answer import OUR_UDP_PAYLOAD, Responder, answer
from homing.dns.index import ZoneIndex
from homing.domain.records import RRsetValue
from tests.dns.zone import FORTY, MANY, NEGATIVE_TTL, SERIAL, SOA_TTL, ZONE, host_moved, name

A = dns.rdatatype.RdataType.A
Rcode = dns.rcode.Rcode


def query(
    qname: str,
    rdtype: str | int = "A",
    *,
    edns: int | None = None,
    payload: int = 1232,
    rdclass: str | int = "IN",
) -> dns.message.QueryMessage:
    q = dns.message.make_query(
        qname, rdtype, rdclass, use_edns=edns if edns is not None else False, payload=payload
    )
    assert isinstance(q, dns.message.QueryMessage)
    return q


def respond(index: ZoneIndex, wire: bytes, *, tcp: bool = False) -> dns.message.Message:
    reply = answer(wire, index, tcp=tcp)
    assert reply is not None
    return dns.message.from_wire(reply)


def ask(index: ZoneIndex, q: dns.message.Message, *, tcp: bool = False) -> dns.message.Message:
    response = respond(index, q.to_wire(), tcp=tcp)
    assert response.id == q.id
    assert response.flags & dns.flags.QR
    assert not response.flags & dns.flags.RA, "never a resolver"
    assert not response.flags & dns.flags.AD
    return response


def texts(response: dns.message.Message, section: str = "answer") -> list[str]:
    """One line per record of a section, sorted (RRsets have no order)."""
    return sorted(
        line for rrset in getattr(response, section) for line in rrset.to_text().split("\n")
    )


def is_aa(response: dns.message.Message) -> bool:
    return bool(response.flags & dns.flags.AA)


# --- positive answers -------------------------------------------------------------------


def test_a_answer_is_authoritative(index: ZoneIndex) -> None:
    r = ask(index, query(name("host")))
    assert r.rcode() == Rcode.NOERROR
    assert is_aa(r)
    assert texts(r) == [f"{name('host')}. 60 IN A 192.0.2.1"]
    assert r.authority == [] and r.additional == []


@pytest.mark.parametrize("rd", [True, False])
def test_rd_and_cd_are_copied(index: ZoneIndex, rd: bool) -> None:
    q = query(name("host"))
    q.flags = (dns.flags.RD if rd else 0) | dns.flags.CD
    r = ask(index, q)
    assert bool(r.flags & dns.flags.RD) is rd
    assert r.flags & dns.flags.CD


def test_soa_and_ns_at_the_apex(index: ZoneIndex) -> None:
    soa = ask(index, query(ZONE, "SOA"))
    assert is_aa(soa)
    assert texts(soa) == [
        f"{ZONE}. {SOA_TTL} IN SOA ns1.example.net. hostmaster.example.net. "
        f"{SERIAL} 3600 600 1209600 {NEGATIVE_TTL}"
    ]
    ns = ask(index, query(ZONE, "NS"))
    assert is_aa(ns)
    assert texts(ns) == [
        f"{ZONE}. 3600 IN NS ns1.example.net.",
        f"{ZONE}. 3600 IN NS ns2.example.net.",
    ]


def test_qclass_any_is_answered_from_in(index: ZoneIndex) -> None:
    r = ask(index, query(name("host"), rdclass="ANY"))
    assert r.question[0].rdclass == dns.rdataclass.ANY
    assert texts(r) == [f"{name('host')}. 60 IN A 192.0.2.1"]


# --- letter case -----------------------------------------------------------------------


def question_bytes(wire: bytes) -> bytes:
    """The question section's bytes (name, type, class) of a one-question message."""
    end = wire.index(b"\x00", 12) + 5
    return wire[12:end]


@pytest.mark.parametrize("edns", [None, 0])
def test_question_case_is_echoed_exactly_even_from_the_cache(
    index: ZoneIndex, edns: int | None
) -> None:
    # The first query fills the cache in another case; the second must still get its own.
    for spelling in (name("host"), "HoSt.DYN.example.NeT", "HOST.DYN.EXAMPLE.NET"):
        q = query(spelling, edns=edns)
        wire = q.to_wire()
        reply = answer(wire, index, tcp=False)
        assert reply is not None
        assert question_bytes(reply) == question_bytes(wire)
        r = dns.message.from_wire(reply)
        assert r.answer[0].name.labels == dns.name.from_text(spelling).labels


def test_wildcard_owner_echoes_the_question_case(index: ZoneIndex) -> None:
    r = ask(index, query("Some.WILD.dyn.example.net"))
    assert r.answer[0].name.to_text() == "Some.WILD.dyn.example.net."


# --- negative answers ------------------------------------------------------------------


def negative_soa_text() -> str:
    return (
        f"{ZONE}. {NEGATIVE_TTL} IN SOA ns1.example.net. hostmaster.example.net. "
        f"{SERIAL} 3600 600 1209600 {NEGATIVE_TTL}"
    )


def test_nxdomain_carries_the_soa_with_the_negative_ttl(index: ZoneIndex) -> None:
    r = ask(index, query(name("nobody")))
    assert r.rcode() == Rcode.NXDOMAIN
    assert is_aa(r)
    assert r.answer == []
    assert texts(r, "authority") == [negative_soa_text()]


def test_nodata_carries_the_soa(index: ZoneIndex) -> None:
    r = ask(index, query(name("mail"), "A"))
    assert r.rcode() == Rcode.NOERROR
    assert is_aa(r)
    assert r.answer == []
    assert texts(r, "authority") == [negative_soa_text()]


@pytest.mark.parametrize("label", ["c", "b.c", "x.wild"])
def test_empty_non_terminal_is_nodata_not_nxdomain(index: ZoneIndex, label: str) -> None:
    r = ask(index, query(name(label)))
    assert r.rcode() == Rcode.NOERROR
    assert r.answer == []
    assert texts(r, "authority") == [negative_soa_text()]


def test_below_a_real_name_without_children_is_nxdomain(index: ZoneIndex) -> None:
    assert ask(index, query(name("x.host"))).rcode() == Rcode.NXDOMAIN


# --- not ours ---------------------------------------------------------------------------


@pytest.mark.parametrize("qname", ["www.example.org", "example.net", ".", "net"])
def test_names_outside_our_zones_are_refused_without_aa(index: ZoneIndex, qname: str) -> None:
    r = ask(index, query(qname))
    assert r.rcode() == Rcode.REFUSED
    assert not is_aa(r)
    assert r.answer == [] and r.authority == []


@pytest.mark.parametrize("rdclass", ["CH", "HS", 254])
def test_other_classes_are_refused(index: ZoneIndex, rdclass: str | int) -> None:
    r = ask(index, query(name("host"), rdclass=rdclass))
    assert r.rcode() == Rcode.REFUSED
    assert not is_aa(r)


@pytest.mark.parametrize("rdtype", ["AXFR", "IXFR"])
def test_zone_transfers_are_refused_for_now(index: ZoneIndex, rdtype: str) -> None:
    r = ask(index, query(ZONE, rdtype), tcp=True)
    assert r.rcode() == Rcode.REFUSED
    assert r.answer == []


# --- ANY (RFC 8482) ----------------------------------------------------------------------


@pytest.mark.parametrize("label", ["", "host"])
def test_any_gets_one_rrset(index: ZoneIndex, label: str) -> None:
    for tcp in (False, True):
        r = ask(index, query(name(label), "ANY"), tcp=tcp)
        assert r.rcode() == Rcode.NOERROR
        assert is_aa(r)
        assert len(r.answer) == 1
    # The lowest type number: A at host, NS at the apex (which has no A).
    assert r.answer[0].rdtype == (A if label else dns.rdatatype.NS)


def test_any_at_an_empty_non_terminal_is_nodata(index: ZoneIndex) -> None:
    r = ask(index, query(name("c"), "ANY"))
    assert r.rcode() == Rcode.NOERROR and r.answer == []
    assert texts(r, "authority") == [negative_soa_text()]


# --- CNAME and wildcards -----------------------------------------------------------------


def test_cname_is_followed_inside_the_zone(index: ZoneIndex) -> None:
    r = ask(index, query(name("chain")))
    assert r.rcode() == Rcode.NOERROR and is_aa(r)
    assert [(rrset.name.to_text(), rrset.rdtype) for rrset in r.answer] == [
        (f"{name('chain')}.", dns.rdatatype.CNAME),
        (f"{name('alias')}.", dns.rdatatype.CNAME),
        (f"{name('host')}.", A),
    ]


def test_cname_query_gets_the_cname_alone(index: ZoneIndex) -> None:
    r = ask(index, query(name("chain"), "CNAME"))
    assert texts(r) == [f"{name('chain')}. 60 IN CNAME {name('alias')}."]


def test_cname_out_of_the_zone_is_not_followed(index: ZoneIndex) -> None:
    r = ask(index, query(name("out")))
    assert r.rcode() == Rcode.NOERROR
    assert texts(r) == [f"{name('out')}. 60 IN CNAME www.example.org."]


def test_cname_to_a_missing_name_is_nxdomain_with_the_cname(index: ZoneIndex) -> None:
    r = ask(index, query(name("dangling")))
    assert r.rcode() == Rcode.NXDOMAIN
    assert texts(r) == [f"{name('dangling')}. 60 IN CNAME {name('gone')}."]
    assert texts(r, "authority") == [negative_soa_text()]


def test_cname_to_a_name_without_the_type_is_nodata(index: ZoneIndex) -> None:
    r = ask(index, query(name("alias"), "MX"))
    assert r.rcode() == Rcode.NOERROR
    assert texts(r) == [f"{name('alias')}. 60 IN CNAME {name('host')}."]
    assert texts(r, "authority") == [negative_soa_text()]


def test_cname_loop_ends(index: ZoneIndex) -> None:
    r = ask(index, query(name("loop1")))
    assert r.rcode() == Rcode.NOERROR
    assert [rrset.name.to_text() for rrset in r.answer] == [
        f"{name('loop1')}.",
        f"{name('loop2')}.",
    ]


@pytest.mark.parametrize("label", ["one.wild", "two.levels.wild"])
def test_wildcard_answers_for_missing_names(index: ZoneIndex, label: str) -> None:
    r = ask(index, query(name(label)))
    assert r.rcode() == Rcode.NOERROR and is_aa(r)
    assert texts(r) == [f"{name(label)}. 60 IN A 192.0.2.99"]


def test_wildcard_does_not_answer_below_an_existing_name(index: ZoneIndex) -> None:
    # x.wild exists (an empty non-terminal), so it is the closest encloser and has no *.
    assert ask(index, query(name("y.x.wild"))).rcode() == Rcode.NXDOMAIN
    # A missing type at a wildcard is NODATA like anywhere else.
    r = ask(index, query(name("one.wild"), "AAAA"))
    assert r.rcode() == Rcode.NOERROR and r.answer == []


# --- EDNS and sizes -----------------------------------------------------------------------


def test_edns_is_echoed_with_our_payload(index: ZoneIndex) -> None:
    r = ask(index, query(name("host"), edns=0, payload=4096))
    assert r.edns == 0
    assert r.payload == OUR_UDP_PAYLOAD
    assert ask(index, query(name("host"))).edns == -1, "no OPT for a query without one"


def test_badvers_for_edns_version_1(index: ZoneIndex) -> None:
    r = ask(index, query(name("host"), edns=1))
    assert r.rcode() == Rcode.BADVERS
    assert r.edns == 0
    assert r.answer == []


def test_edns_options_are_ignored(index: ZoneIndex) -> None:
    q = query(name("host"), edns=0)
    q.use_edns(0, options=[dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"12345678")])
    r = ask(index, q)
    assert texts(r) == [f"{name('host')}. 60 IN A 192.0.2.1"]
    assert r.options == ()


def assert_truncated(r: dns.message.Message, qname: str) -> None:
    assert r.flags & dns.flags.TC
    assert r.answer == [] and r.authority == []
    assert r.question[0].name == dns.name.from_text(qname)
    assert is_aa(r)


@pytest.mark.parametrize(
    ("label", "edns", "payload", "fits"),
    [
        ("forty", None, 0, False),  # 512 without EDNS
        ("forty", 0, 1232, True),
        ("forty", 0, 100, False),  # a payload under 512 counts as 512
        ("many", 0, 1232, False),
        ("many", 0, 4096, False),  # never more than our 1232 over UDP
    ],
)
def test_udp_size_limits(
    index: ZoneIndex, label: str, edns: int | None, payload: int, fits: bool
) -> None:
    q = query(name(label), edns=edns, payload=payload)
    reply = answer(q.to_wire(), index, tcp=False)
    assert reply is not None
    r = dns.message.from_wire(reply)
    if fits:
        assert not r.flags & dns.flags.TC
        assert len(r.answer[0]) == FORTY
    else:
        assert_truncated(r, name(label))
        assert r.edns == (edns if edns is not None else -1)
        assert len(reply) <= 512


def test_truncated_over_udp_complete_over_tcp(index: ZoneIndex) -> None:
    q = query(name("many"), edns=0)
    assert_truncated(ask(index, q), name("many"))
    r = ask(index, q, tcp=True)
    assert not r.flags & dns.flags.TC
    assert r.rcode() == Rcode.NOERROR and is_aa(r)
    assert len(r.answer) == 1 and len(r.answer[0]) == MANY


# --- the error ladder ----------------------------------------------------------------------


def test_short_messages_are_dropped(index: ZoneIndex) -> None:
    for length in range(12):
        assert (
            answer(b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"[:length], index, tcp=False)
            is None
        )


def test_responses_are_dropped(index: ZoneIndex) -> None:
    r = dns.message.make_response(query(name("host")))
    assert answer(r.to_wire(), index, tcp=False) is None


def test_garbage_gets_formerr_with_the_id(index: ZoneIndex) -> None:
    wire = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05hello"  # name never ends
    r = respond(index, wire)
    assert r.id == 0xABCD
    assert r.rcode() == Rcode.FORMERR
    assert r.flags & dns.flags.RD


def test_trailing_junk_is_formerr(index: ZoneIndex) -> None:
    assert respond(index, query(name("host")).to_wire() + b"junk").rcode() == Rcode.FORMERR


@pytest.mark.parametrize("qdcount", [0, 2])
def test_not_exactly_one_question_is_formerr(index: ZoneIndex, qdcount: int) -> None:
    q = query(name("host"))
    if qdcount == 0:
        q.question = []
    else:
        q.question.append(dns.rrset.RRset(dns.name.from_text(name("mail")), dns.rdataclass.IN, A))
    r = respond(index, q.to_wire())
    assert r.rcode() == Rcode.FORMERR
    assert r.id == q.id
    assert r.answer == []


@pytest.mark.parametrize(
    ("opcode", "rcode"),
    [
        (dns.opcode.Opcode.NOTIFY, Rcode.NOTIMP),
        (dns.opcode.Opcode.STATUS, Rcode.NOTIMP),
        (dns.opcode.Opcode.IQUERY, Rcode.NOTIMP),
        (3, Rcode.NOTIMP),  # unassigned
        (15, Rcode.NOTIMP),
        (dns.opcode.Opcode.UPDATE, Rcode.REFUSED),  # until RFC 2136 lands
    ],
)
def test_other_opcodes(index: ZoneIndex, opcode: int, rcode: Rcode) -> None:
    q = query(ZONE, "SOA")
    wire = bytearray(q.to_wire())
    wire[2] = (wire[2] & 0x87) | (opcode << 3)
    reply = answer(bytes(wire), index, tcp=False)
    assert reply is not None
    assert reply[:2] == wire[:2]
    assert (reply[2] >> 3) & 0xF == opcode, "the opcode is echoed"
    assert reply[3] & 0xF == rcode
    assert not reply[2] & 0x04, "no AA"


def test_signed_queries_are_refused_until_tsig_lands(index: ZoneIndex) -> None:
    q = query(name("host"))
    q.use_tsig(dns.tsigkeyring.from_text({"key.": "c2VjcmV0c2VjcmV0"}), "key.")
    r = respond(index, q.to_wire())
    assert r.rcode() == Rcode.REFUSED
    assert r.answer == []


def test_an_internal_error_is_servfail_and_logged(
    index: ZoneIndex, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(homing.dns.answer, "resolve", broken)  # the slow path
    monkeypatch.setattr(homing.dns.answer, "respond", broken)  # the hot path
    q = query(name("host"))
    with caplog.at_level(logging.ERROR, logger="homing.dns.answer"):
        r = respond(index, q.to_wire())
    assert r.rcode() == Rcode.SERVFAIL
    assert r.id == q.id
    assert any(record.exc_info for record in caplog.records), "logged with the traceback"


def test_random_bytes_never_raise_and_never_servfail(
    index: ZoneIndex, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(8482)
    valid = query(name("host"), edns=0).to_wire()
    with caplog.at_level(logging.ERROR):
        for _ in range(3000):
            if rng.random() < 0.5:
                wire = rng.randbytes(rng.randrange(0, 80))
            else:  # valid queries with a few bytes flipped reach deeper into the parsers
                mutated = bytearray(valid)
                for _ in range(rng.randrange(1, 4)):
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
                wire = bytes(mutated[: rng.randrange(len(mutated) + 1)])
            reply = answer(wire, index, tcp=rng.random() < 0.5)
            if reply is None:
                assert len(wire) < 12 or wire[2] & 0x80
            else:
                assert reply[:2] == wire[:2]
                assert reply[2] & 0x80
                assert reply[3] & 0xF != Rcode.SERVFAIL
    assert caplog.records == []


# --- the fast path and the dnspython path agree ----------------------------------------


@pytest.mark.parametrize(
    "q",
    [
        query(name("host")),
        query("HOST.dyn.example.NET", edns=0),
        query(name("nobody"), edns=0),
        query(name("many"), edns=0, payload=4096),
        query(name("one.wild"), "ANY"),
        query("www.example.org"),
        query(name("host"), rdclass="CH"),
    ],
    ids=lambda q: q.question[0].to_text(),
)
def test_fast_and_slow_paths_give_the_same_bytes(index: ZoneIndex, q: dns.message.Message) -> None:
    wire = q.to_wire()
    for tcp in (False, True):
        fast = Responder(index).answer(wire, tcp=tcp)
        slow = Responder(index)._answer_unusual(wire, tcp=tcp)
        assert fast is not None and slow is not None
        # Byte for byte but for the order of records within an RRset, which dnspython shuffles.
        assert len(fast) == len(slow)
        assert question_bytes(fast) == question_bytes(slow) == question_bytes(wire)
        assert dns.message.from_wire(fast) == dns.message.from_wire(slow)


def test_a_query_the_fast_path_declines_is_still_answered(index: ZoneIndex) -> None:
    # An answer record in a query (as some clients send for NOTIFY-like probes) is legal.
    q = query("Host.dyn.example.net", edns=0)
    q.answer.append(dns.rrset.from_text(name("host") + ".", 1, "IN", "A", "203.0.113.1"))
    r = ask(index, q)
    assert texts(r) == ["Host.dyn.example.net. 60 IN A 192.0.2.1"]
    assert r.question[0].name.to_text() == "Host.dyn.example.net."


def test_a_forward_pointer_in_the_question_is_formerr(index: ZoneIndex) -> None:
    # The question is the first name, so its only possible pointer points forward.
    header = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0)
    wire = header + b"\xc0\x12\x00\x01\x00\x01" + dns.name.from_text(name("host")).to_wire()
    r = respond(index, wire)
    assert r.rcode() == Rcode.FORMERR  # the pointer is past the question: not parseable


# --- the cache follows the index -------------------------------------------------------------


def test_answers_follow_index_changes(index: ZoneIndex) -> None:
    q = query(name("host"))
    assert texts(ask(index, q)) == [f"{name('host')}. 60 IN A 192.0.2.1"]
    assert index.apply(host_moved("192.0.2.2"))
    assert texts(ask(index, q)) == [f"{name('host')}. 60 IN A 192.0.2.2"]
    nx = ask(index, query(name("nobody")))
    assert nx.authority[0][0].serial == SERIAL + 1


def test_a_new_name_ends_nxdomain_and_empty_non_terminals(index: ZoneIndex) -> None:
    assert ask(index, query(name("new.c"))).rcode() == Rcode.NXDOMAIN
    zone = index.zone(ZONE)
    assert zone is not None
    zone.set_rrset(RRsetValue(name("new.c"), "A", 60, ("192.0.2.7",)))
    index.generation += 1
    assert texts(ask(index, query(name("new.c")))) == [f"{name('new.c')}. 60 IN A 192.0.2.7"]


def test_responder_rejects_a_useless_cache_size(index: ZoneIndex) -> None:
    with pytest.raises(ValueError, match="cache_size"):
        Responder(index, cache_size=0)


def test_a_full_cache_keeps_answering(index: ZoneIndex) -> None:
    responder = Responder(index, cache_size=2)
    for label in ("host", "mail", "many", "host", "nobody", "host"):
        reply = responder.answer(query(name(label)).to_wire(), tcp=True)
        assert reply is not None
        assert dns.message.from_wire(reply).question[0].name == dns.name.from_text(name(label))


def test_an_answer_too_big_even_for_tcp_is_truncated(index: ZoneIndex) -> None:
    zone = index.zone(ZONE)
    assert zone is not None
    texts_ = tuple(f'"{i:03d}{"x" * 250}"' for i in range(300))  # about 76 kB
    zone.set_rrset(RRsetValue(name("huge"), "TXT", 60, texts_))
    index.generation += 1
    assert_truncated(ask(index, query(name("huge"), "TXT"), tcp=True), name("huge"))


# --- whole replies kept for UDP --------------------------------------------------------


def kept_reply(responder: Responder, q: dns.message.Message) -> bytes | None:
    """The reply the responder keeps for `q`'s bytes, without its ID, or None."""
    wire = q.to_wire()
    kept = responder.udp_replies().get(wire[2:])
    if kept is None:
        return None
    header, length, tail = kept
    return header + wire[12 : 12 + length] + tail


@pytest.mark.parametrize("edns", [None, 0])
def test_a_kept_reply_is_the_computed_one_with_the_new_id(
    index: ZoneIndex, edns: int | None
) -> None:
    responder = Responder(index)
    first = query(name("host"), edns=edns)
    computed = responder.answer(first.to_wire(), tcp=False)
    assert computed is not None and kept_reply(responder, first) == computed[2:]
    again = query(name("host"), edns=edns)
    again.id = (first.id + 1) % 65536
    reply = responder.answer(again.to_wire(), tcp=False)
    assert reply == again.to_wire()[:2] + computed[2:]
    assert dns.message.from_wire(reply).id == again.id
    # Other bytes are another key: EDNS or not, RD or not, the case of the name.
    other = query(name("host"), edns=None if edns == 0 else 0)
    other.flags &= ~dns.flags.RD
    parsed = ask(index, other)
    assert (parsed.edns, parsed.flags & dns.flags.RD) == (-1 if edns == 0 else 0, 0)


def test_only_positive_udp_answers_are_kept(index: ZoneIndex) -> None:
    responder = Responder(index)
    questions = [
        query(name("nobody")),  # NXDOMAIN: carries the zone's serial
        query(name("mail")),  # NODATA: the same
        query(name("alias")),  # a CNAME followed: depends on its target too
        query(name("other.wild")),  # a wildcard: depends on the wildcard's owner
        query(ZONE, "SOA"),  # the apex: the serial
        query(name("many")),  # truncated over UDP: kept all the same, as it is
    ]
    for q in questions:
        assert responder.answer(q.to_wire(), tcp=False) is not None
    assert [kept_reply(responder, q) is not None for q in questions] == [
        False, False, False, False, False, True
    ]  # fmt: skip
    tcp = query(name("host"))
    assert responder.answer(tcp.to_wire(), tcp=True) is not None
    assert kept_reply(responder, tcp) is None  # TCP answers are never kept


def test_a_change_forgets_the_replies_of_its_owner_only(index: ZoneIndex) -> None:
    responder = Responder(index)
    host, forty = query(name("host")), query(name("forty"))
    for q in (host, forty):
        responder.answer(q.to_wire(), tcp=False)
    assert index.apply(host_moved("192.0.2.55"))
    assert kept_reply(responder, host) is None
    assert kept_reply(responder, forty) is not None  # another owner: still current
    reply = responder.answer(host.to_wire(), tcp=False)
    assert reply is not None
    assert texts(dns.message.from_wire(reply)) == [f"{name('host')}. 60 IN A 192.0.2.55"]
    assert kept_reply(responder, host) == reply[2:]  # kept again, as it is now


def test_replies_are_forgotten_when_their_zone_goes(index: ZoneIndex) -> None:
    responder = Responder(index)
    host = query(name("host"))
    responder.answer(host.to_wire(), tcp=False)
    index.drop_zone(ZONE)
    assert responder.udp_replies() == {}
    assert ask(index, host).rcode() == Rcode.REFUSED


def test_a_change_behind_the_logs_back_forgets_every_reply(index: ZoneIndex) -> None:
    responder = Responder(index)
    host = query(name("host"))
    responder.answer(host.to_wire(), tcp=False)
    zone = index.zone(ZONE)
    assert zone is not None
    zone.set_rrset(RRsetValue(name("host"), "A", 60, ("192.0.2.66",)))
    index.generation += 1  # no record of what changed
    reply = responder.answer(host.to_wire(), tcp=False)
    assert reply is not None
    assert texts(dns.message.from_wire(reply)) == [f"{name('host')}. 60 IN A 192.0.2.66"]


def test_the_replies_kept_stay_bounded(index: ZoneIndex) -> None:
    responder = Responder(index, reply_cache_size=4)
    for i in range(40):
        index.replace(ZONE, SERIAL + 1 + i, [RRsetValue(name(f"h{i}"), "A", 60, (f"10.0.0.{i}",))])
    for i in range(40):
        r = ask(index, query(name(f"h{i}")))  # the module's responder: a default-sized one
        mine = responder.answer(query(name(f"h{i}")).to_wire(), tcp=False)
        assert mine is not None
        assert (
            texts(dns.message.from_wire(mine))
            == texts(r)
            == [f"{name(f'h{i}')}. 60 IN A 10.0.0.{i}"]
        )
        assert len(responder.udp_replies()) <= 4
    with pytest.raises(ValueError, match="reply_cache_size"):
        Responder(index, reply_cache_size=0)


def test_an_unusual_query_rewritten_as_plain_is_not_kept(index: ZoneIndex) -> None:
    """A query dnspython reads (here, one with an answer record and EDNS) is answered as
    the plain query it amounts to; its reply has an OPT record that the plain bytes lack,
    so it must not be kept as their reply."""
    responder = Responder(index)
    unusual = query(name("host"), edns=0)
    unusual.answer.append(dns.rrset.from_text(name("host") + ".", 60, "IN", "A", "192.0.2.200"))
    reply = responder.answer(unusual.to_wire(), tcp=False)
    assert reply is not None and dns.message.from_wire(reply).edns == 0
    assert responder.udp_replies() == {}
    plain = responder.answer(query(name("host")).to_wire(), tcp=False)
    assert plain is not None and dns.message.from_wire(plain).edns == -1


# --- DO (RFC 3225) and the flags error answers carry ------------------------------------


DO = dns.flags.EDNSFlag.DO


@pytest.mark.parametrize(
    ("qname", "rdtype", "rcode"),
    [
        (name("host"), "A", Rcode.NOERROR),  # the hot path, then its kept reply
        (ZONE, "SOA", Rcode.NOERROR),  # the slow path, cached
        (name("nothing"), "A", Rcode.NXDOMAIN),
        (name("host"), "MX", Rcode.NOERROR),  # NODATA
        ("example.org", "A", Rcode.REFUSED),
        (name("many"), "A", Rcode.NOERROR),  # truncated
    ],
)
def test_do_is_echoed_and_only_when_set(
    index: ZoneIndex, qname: str, rdtype: str, rcode: Rcode
) -> None:
    responder = Responder(index)
    for want_dnssec in (True, False, True, False):  # the kept replies must not mix them up
        q = query(qname, rdtype, edns=0)
        q.want_dnssec(want_dnssec)
        reply = responder.answer(q.to_wire(), tcp=False)
        assert reply is not None
        r = dns.message.from_wire(reply)
        assert r.rcode() == rcode
        assert r.edns == 0
        assert bool(r.ednsflags & DO) == want_dnssec


def test_do_is_echoed_in_error_answers(index: ZoneIndex) -> None:
    q = query(name("host"), edns=0)
    q.want_dnssec(True)
    q.question.append(q.question[0])  # two questions: FORMERR from dnspython's parse
    r = respond(index, q.to_wire())
    assert r.rcode() == Rcode.FORMERR and r.ednsflags & DO


@pytest.mark.parametrize("opcode", [dns.opcode.Opcode.STATUS, 3, 15, dns.opcode.Opcode.UPDATE])
def test_error_answers_to_other_opcodes_copy_no_flags(index: ZoneIndex, opcode: int) -> None:
    q = query(ZONE, "SOA")
    q.flags |= dns.flags.Flag.CD | dns.flags.Flag.RD
    wire = bytearray(q.to_wire())
    wire[2] = (wire[2] & 0x87) | (opcode << 3)
    reply = answer(bytes(wire), index, tcp=False)
    assert reply is not None
    flags = struct.unpack_from("!H", reply, 2)[0]
    assert (flags >> 11) & 0xF == opcode
    assert not flags & dns.flags.Flag.CD, "CD means nothing to this opcode"
    assert not flags & dns.flags.Flag.RD


def test_a_header_alone_answer_copies_rd_not_cd(index: ZoneIndex) -> None:
    wire = b"\x12\x34\x01\x10\x00\x01" + b"\xff" * 20  # RD and CD, then garbage
    reply = answer(wire, index, tcp=False)
    assert reply is not None and reply[3] & 0xF == Rcode.FORMERR
    flags = struct.unpack_from("!H", reply, 2)[0]
    assert flags & dns.flags.Flag.RD
    assert not flags & dns.flags.Flag.CD


def test_cd_is_copied_into_answers_to_queries(index: ZoneIndex) -> None:
    for qname in (name("host"), ZONE, "example.org"):
        q = query(qname, edns=0)
        q.flags |= dns.flags.Flag.CD
        assert ask(index, q).flags & dns.flags.Flag.CD
