"""Type 0 is reserved (RFC 6895 3.1): NOTIMP without aa for any name and class, our OPT
record (with the query's DO) when the query had one, as Knot answers it."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import pytest

from homing.dns.answer import answer
from tests.dns.zone import build_index, name


@pytest.mark.parametrize(
    ("qname", "rdclass"),
    [
        (name("host"), dns.rdataclass.IN),
        (name("nothing"), dns.rdataclass.IN),
        (name(""), dns.rdataclass.IN),
        ("elsewhere.example.", dns.rdataclass.IN),
        ("id.server.", dns.rdataclass.CH),
    ],
)
@pytest.mark.parametrize("edns", [False, True])
@pytest.mark.parametrize("tcp", [False, True])
def test_type_0_is_not_implemented(qname: str, rdclass: int, edns: bool, tcp: bool) -> None:
    index = build_index()
    query = dns.message.make_query(qname, 0, rdclass, use_edns=edns, want_dnssec=edns)
    for _ in range(2):  # the second from what was kept
        wire = answer(query.to_wire(), index, tcp=tcp)
        assert wire is not None
        reply = dns.message.from_wire(wire)
        assert reply.rcode() == dns.rcode.NOTIMP
        assert not reply.flags & dns.flags.AA
        assert not (reply.answer or reply.authority or reply.additional)
        assert reply.question == query.question
        assert reply.edns == (0 if edns else -1)
        assert bool(reply.ednsflags & dns.flags.DO) == edns
