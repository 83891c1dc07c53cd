"""A signed zone's wildcard answers and denials to DO queries, made from the index's wire
without dnspython (homing.dns.denial), hold what the dnspython path gives, in any letter
case; the denials kept per question follow every change in the zone and stay bounded."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from homing.dns import denial
from homing.dns.answer import Responder
from homing.dns.resolution import resolve
from homing.dns.signed import secure
from homing.domain.records import RRsetValue
from homing.store.db import Database
from tests.dnssec.test_answers import (
    ORIGIN,
    ask,
    follow,
    keys,
    responder,
    signed_responder,
    validated,
)
from tests.dnssec.test_signing import ZONE, put

__all__ = ["responder"]  # the fixture, shared with test_answers


def seen(rrsets: list[dns.rrset.RRset]) -> set[tuple[object, ...]]:
    """RRsets as comparable values; owner names compare without regard to case."""
    return {(r.name, r.rdtype, r.covers, r.ttl, frozenset(r)) for r in rrsets}


def slow_path(responder: Responder, name: str, rdtype: str) -> tuple[int, list, list]:
    """(rcode, answer, authority) as the dnspython path makes them."""
    qname = dns.name.from_text(name)
    resolution = resolve(responder.index, qname, dns.rdatatype.from_text(rdtype), 1)
    secure(responder.index.zones[ORIGIN], resolution, qname)
    return resolution.rcode, resolution.answer, resolution.authority


def counting_slow_path(responder: Responder) -> list[int]:
    """Count the answers the Responder works out with dnspython from now on."""
    calls = [0]
    prepare = responder._prepare

    def counted(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return prepare(*args, **kwargs)  # type: ignore[arg-type]

    responder._prepare = counted  # type: ignore[assignment,method-assign]
    return calls


@pytest.mark.parametrize(
    ("name", "rdtype", "rcode", "answers"),
    [
        (f"x.w.{ZONE}", "A", dns.rcode.NOERROR, 2),  # the wildcard's A and its RRSIG
        ("X.w.SIGNED.example", "A", dns.rcode.NOERROR, 2),  # another letter case
        (f"a.b.c.w.{ZONE}", "A", dns.rcode.NOERROR, 2),  # next closer name c.w
        (f"x.W.{ZONE}", "TXT", dns.rcode.NOERROR, 0),  # wildcard NODATA (RFC 5155 7.2.5)
        (f"NoThInG.{ZONE}", "A", dns.rcode.NXDOMAIN, 0),
        (f"no.SUCH.b.{ZONE}", "AAAA", dns.rcode.NXDOMAIN, 0),
        (f"H1.{ZONE}", "TXT", dns.rcode.NOERROR, 0),
        (f"B.{ZONE}", "A", dns.rcode.NOERROR, 0),  # an empty non-terminal
    ],
)
async def test_direct_answers_equal_the_slow_paths_and_validate(
    responder: Responder, name: str, rdtype: str, rcode: int, answers: int
) -> None:
    key = keys(responder)
    want_rcode, want_answer, want_authority = slow_path(responder, name, rdtype)
    slow = counting_slow_path(responder)
    for tcp in (True, False, True):  # the second TCP answer is the one kept
        query = dns.message.make_query(name, rdtype, want_dnssec=True)
        wire = responder.answer(query.to_wire(), tcp=tcp)
        assert wire is not None
        reply = dns.message.from_wire(wire)
        assert reply.rcode() == want_rcode == rcode
        assert reply.flags & dns.flags.AA
        assert str(reply.question[0].name) == str(query.question[0].name)  # case echoed
        assert seen(reply.answer) == seen(want_answer)
        assert seen(reply.authority) == seen(want_authority)
        assert len(reply.answer) == answers
        proven = validated(reply, reply.answer + reply.authority, key)
        nsec3 = [r for r in reply.authority if r.rdtype == dns.rdatatype.NSEC3]
        assert nsec3 and all((r.name.to_text(), "NSEC3") in proven for r in nsec3)
        if answers:
            assert (dns.name.from_text(name).to_text().lower(), rdtype) in {
                (n.lower(), t) for n, t in proven
            }
    assert slow == [0], "answered by dnspython"


async def test_a_wildcard_answer_carries_the_wildcards_label_count(
    responder: Responder,
) -> None:
    """RFC 4035 3.1.3.3: the RRSIG is the wildcard's, fewer labels than the name asked."""
    reply = ask(responder, f"a.b.c.w.{ZONE}", "A", do=True)
    (sigs,) = [r for r in reply.answer if r.rdtype == dns.rdatatype.RRSIG]
    assert {s.labels for s in sigs} == {
        len(dns.name.from_text(f"w.{ZONE}").labels) - 1
    }  # root not counted


async def test_a_kept_denial_follows_a_change_in_the_zone(
    responder: Responder, db: Database
) -> None:
    """The NXDOMAIN kept for a name turns into its answer once the name is added."""
    name = f"late.{ZONE}"
    assert ask(responder, name, "A", do=True).rcode() == dns.rcode.NXDOMAIN
    assert ask(responder, name, "A", do=True).rcode() == dns.rcode.NXDOMAIN
    zone = responder.index.zones[ORIGIN]
    before = zone.serial
    await put(db, RRsetValue(name, "TXT", 60, ('"here"',)))
    await follow(db, responder, before)
    assert zone.serial > before
    key = keys(responder)
    reply = ask(responder, name, "A", do=True)
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    proven = validated(reply, reply.authority, key)
    assert any(t == "NSEC3" for _, t in proven)
    (soa,) = [r for r in reply.authority if r.rdtype == dns.rdatatype.SOA]
    assert next(iter(soa)).serial == zone.serial


async def test_kept_denials_stay_within_their_bounds(
    responder: Responder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of random names cycles the denials kept, in count and in bytes."""
    kept = denial._kept
    kept.clear()
    monkeypatch.setattr(denial, "KEPT_ANSWERS", 64)
    for n in range(300):
        ask(responder, f"random{n}.{ZONE}", "A", do=True)
        assert len(kept.entries) <= 64
    one = kept.size / len(kept.entries)
    monkeypatch.setattr(denial, "KEPT_BYTES", int(one * 10))
    for n in range(300, 400):
        ask(responder, f"random{n}.{ZONE}", "A", do=True)
        assert 0 < kept.size <= denial.KEPT_BYTES
    assert sum(len(k) + (len(v[3][3]) if v[3] else 0) for k, v in kept.entries.items()) == kept.size
    reply = ask(responder, f"random399.{ZONE}", "A", do=True)
    assert reply.rcode() == dns.rcode.NXDOMAIN


@pytest.fixture
async def mail_responder(db: Database) -> Responder:
    return await signed_responder(
        db,
        RRsetValue(f"mail.{ZONE}", "MX", 60, (f"10 mx.{ZONE}.", f"20 mx.child.{ZONE}.")),
        RRsetValue(f"mx.{ZONE}", "A", 60, ("192.0.2.25",)),
        RRsetValue(f"mx.{ZONE}", "AAAA", 60, ("2001:db8::25",)),
        RRsetValue(f"child.{ZONE}", "NS", 3600, (f"mx.child.{ZONE}.",)),
        RRsetValue(f"mx.child.{ZONE}", "A", 3600, ("192.0.2.9",)),
    )


async def test_addresses_in_additional_come_with_their_rrsigs(
    mail_responder: Responder,
) -> None:
    """RFC 4035 3.1.1: an in-zone target's A and AAAA carry their RRSIGs with DO; glue below
    a cut has none; without DO there are none; over a small UDP size they go, without TC."""
    key = keys(mail_responder)
    reply = ask(mail_responder, f"mail.{ZONE}", "MX", do=True)
    additional = {(r.name.to_text(), r.rdtype, r.covers) for r in reply.additional}
    mx = f"mx.{ZONE}."
    assert {(mx, dns.rdatatype.RRSIG, t) for t in (dns.rdatatype.A, dns.rdatatype.AAAA)} <= (
        additional
    )
    assert (f"mx.child.{ZONE}.", dns.rdatatype.A, dns.rdatatype.NONE) in additional
    assert not [
        r
        for r in reply.additional
        if r.rdtype == dns.rdatatype.RRSIG and r.name.labels[1] == b"child"
    ]
    assert {(mx, "A"), (mx, "AAAA"), (f"mail.{ZONE}.", "MX")} <= validated(
        reply, reply.answer + reply.additional, key
    )
    plain = ask(mail_responder, f"mail.{ZONE}", "MX", do=False)
    assert plain.additional and not [r for r in plain.additional if r.rdtype == dns.rdatatype.RRSIG]
    query = dns.message.make_query(f"mail.{ZONE}", "MX", want_dnssec=True, payload=512)
    wire = mail_responder.answer(query.to_wire(), tcp=False)
    assert wire is not None and len(wire) <= 512
    small = dns.message.from_wire(wire)
    assert not small.flags & dns.flags.TC and small.answer
