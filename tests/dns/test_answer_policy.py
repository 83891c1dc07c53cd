"""The answer policy beyond the records themselves, over bytes: additional-section data
for NS, MX and SRV targets (kept with the prepared answer, and following a change of a
target's address), Extended DNS Errors on REFUSED, NSID, and CHAOS identity queries."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from homing.dns.answer import Responder
from homing.dns.chaos import ServerIdentity
from homing.dns.cookies import ServerCookies
from homing.dns.index import ZoneIndex
from homing.domain.records import RRsetValue
from tests.dns.zone import ZONE, host_moved, name

Rcode = dns.rcode.Rcode
NSID_ASKED = dns.edns.GenericOption(dns.edns.OptionType.NSID, b"")
CLIENT = bytes((192, 0, 2, 7))


def ask(
    responder: Responder,
    qname: str,
    rdtype: str,
    *,
    rdclass: str = "IN",
    edns: bool = True,
    payload: int = 1232,
    options: list[dns.edns.Option] | None = None,
    tcp: bool = False,
) -> dns.message.Message:
    q = dns.message.make_query(
        qname, rdtype, rdclass, use_edns=0 if edns else False, payload=payload, options=options
    )
    reply = responder.answer(q.to_wire(), tcp=tcp, client=CLIENT)
    assert reply is not None
    response = dns.message.from_wire(reply)
    assert response.id == q.id
    return response


def additional(response: dns.message.Message) -> list[str]:
    return sorted(line for rrset in response.additional for line in rrset.to_text().split("\n"))


def options(response: dns.message.Message, otype: dns.edns.OptionType) -> list[dns.edns.Option]:
    return [o for o in response.options if o.otype == otype]


# --- additional-section data ------------------------------------------------------------


def test_mx_answer_carries_its_targets_addresses_and_follows_their_change(
    index: ZoneIndex,
) -> None:
    responder = Responder(index)
    host = name("host")
    before = [f"{host}. 60 IN A 192.0.2.1", f"{host}. 60 IN AAAA 2001:db8::1"]
    for _ in range(2):  # the second from what was kept
        response = ask(responder, name("mail"), "MX")
        assert response.flags & dns.flags.AA and len(response.answer) == 1
        assert additional(response) == before
    assert index.apply(host_moved("192.0.2.77"))
    after = ask(responder, name("mail"), "MX")
    assert additional(after) == [f"{host}. 60 IN A 192.0.2.77", f"{host}. 60 IN AAAA 2001:db8::1"]


def zone_with(index: ZoneIndex, *values: RRsetValue) -> None:
    zone = index.zone(ZONE)
    assert zone is not None
    index.replace(ZONE, zone.serial + 1, values)


def test_srv_ns_and_wildcard_targets(index: ZoneIndex) -> None:
    zone_with(
        index,
        RRsetValue(name("_sip._udp"), "SRV", 60, (f"0 0 5060 {name('y.wild')}.", "0 0 1 .")),
        RRsetValue(name("sub"), "MX", 60, ("1 www.example.org.", f"2 {name('alias')}.")),
    )
    responder = Responder(index)
    srv = ask(responder, name("_sip._udp"), "SRV")
    assert additional(srv) == [f"{name('y.wild')}. 60 IN A 192.0.2.99"]  # the wildcard's
    # out of the zone, and a CNAME: nothing to add
    assert additional(ask(responder, name("sub"), "MX")) == []


def test_optional_additional_records_go_before_the_answer_is_truncated(index: ZoneIndex) -> None:
    targets = [name(f"m{i}") for i in range(12)]
    zone_with(
        index,
        RRsetValue(name("mx"), "MX", 60, tuple(f"{i} {t}." for i, t in enumerate(targets))),
        *(RRsetValue(t, "AAAA", 60, (f"2001:db8::{i + 1:x}",)) for i, t in enumerate(targets)),
    )
    responder = Responder(index)
    full = ask(responder, name("mx"), "MX", tcp=True)
    assert len(additional(full)) == 12
    for edns in (False, True):
        small = ask(responder, name("mx"), "MX", edns=edns, payload=512)
        assert not small.flags & dns.flags.TC, "the answer fits; only additional data went"
        assert small.answer == full.answer
        kept = additional(small)
        assert 0 < len(kept) < 12 and set(kept) < set(additional(full))
        assert len(small.to_wire()) <= 512


# --- EDE, NSID --------------------------------------------------------------------------


def test_refused_outside_our_zones_says_not_authoritative(index: ZoneIndex) -> None:
    responder = Responder(index)
    for rdtype in ("A", "ANY"):  # the hot path and the slow one
        response = ask(responder, "www.example.org", rdtype)
        assert response.rcode() == Rcode.REFUSED
        [ede] = options(response, dns.edns.OptionType.EDE)
        assert (
            isinstance(ede, dns.edns.EDEOption) and ede.code == dns.edns.EDECode.NOT_AUTHORITATIVE
        )
    assert ask(responder, "www.example.org", "A", edns=False).edns < 0
    chaos = ask(responder, "version.bind", "TXT", rdclass="CH")
    assert chaos.rcode() == Rcode.REFUSED and not chaos.options


def test_nsid_only_when_set_and_asked(index: ZoneIndex) -> None:
    plain = Responder(index)
    assert not options(
        ask(plain, name("host"), "A", options=[NSID_ASKED]), dns.edns.OptionType.NSID
    )
    responder = Responder(
        index,
        identity=ServerIdentity(nsid="ns-7"),
        cookies=ServerCookies(b"k" * 16),
    )
    assert not ask(responder, name("host"), "A").options
    cookie = dns.edns.CookieOption(b"c" * 8, b"")
    for qname, rdtype in ((name("host"), "A"), ("www.example.org", "A"), (name("mail"), "MX")):
        for extra in ([], [cookie]):
            response = ask(responder, qname, rdtype, options=[NSID_ASKED, *extra])
            [nsid] = options(response, dns.edns.OptionType.NSID)
            assert nsid.to_wire() == b"ns-7"
            assert len(options(response, dns.edns.OptionType.COOKIE)) == len(extra)


# --- CHAOS ------------------------------------------------------------------------------


@pytest.mark.parametrize("qname", ["id.server", "hostname.bind", "version.bind", "version.server"])
def test_chaos_is_refused_unless_the_operator_set_the_text(index: ZoneIndex, qname: str) -> None:
    assert ask(Responder(index), qname, "TXT", rdclass="CH").rcode() == Rcode.REFUSED
    told = Responder(index, identity=ServerIdentity(identity="ns-a.example", version="v 1"))
    response = ask(told, qname.upper(), "TXT", rdclass="CH")
    assert response.rcode() == Rcode.NOERROR and not response.flags & dns.flags.AA
    [rrset] = response.answer
    text = "ns-a.example" if qname in ("id.server", "hostname.bind") else "v 1"
    assert rrset.ttl == 0 and rrset.to_text() == f'{qname.upper()}. 0 CH TXT "{text}"'
    assert ask(told, qname, "A", rdclass="CH").rcode() == Rcode.REFUSED
    assert ask(told, "authors.bind", "TXT", rdclass="CH").rcode() == Rcode.REFUSED
