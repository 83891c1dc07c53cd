"""The client's RFC 2136 messages and answers, without sockets."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdatatype
import dns.tsig
import pytest

from homing.client.protocol import Verdict
from homing.client.rfc2136 import KeyError_, TsigKey, build_update, parse_rcode, server_address
from homing.domain.addresses import AddressSet

KEY = "hmac-sha256:cam-key:" + "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="


def test_update_replaces_only_the_given_family_and_is_signed() -> None:
    key = TsigKey.parse(KEY)
    message = build_update("cam.dyn.example.net", None, key, AddressSet.parse(["192.0.2.7"]))
    assert message.zone[0].name.to_text() == "dyn.example.net."
    updates = [(r.name.to_text(), r.rdtype, r.rdclass) for r in message.update]
    # delete the A RRset (class ANY), then add the new A record; AAAA untouched
    assert [(n, dns.rdatatype.to_text(t)) for n, t, _ in updates] == [
        ("cam.dyn.example.net.", "A"),
        ("cam.dyn.example.net.", "A"),
    ]
    wire = message.to_wire()
    keyring = {key.name: key.dnspython_key()}
    assert dns.message.from_wire(wire, keyring=keyring).had_tsig
    wrong = {key.name: dns.tsig.Key(key.name, b"another secret", key.algorithm)}
    with pytest.raises(dns.tsig.BadSignature):
        dns.message.from_wire(wire, keyring=wrong)


def test_zone_can_be_given() -> None:
    key = TsigKey.parse(KEY)
    message = build_update("a.b.example.net", "example.net", key, AddressSet.parse(["2001:db8::1"]))
    assert message.zone[0].name.to_text() == "example.net."


@pytest.mark.parametrize(
    ("rcode", "verdict"),
    [
        (dns.rcode.Rcode.NOERROR, Verdict.OK),
        (dns.rcode.Rcode.NOTAUTH, Verdict.FATAL),
        (dns.rcode.Rcode.REFUSED, Verdict.FATAL),
        (dns.rcode.Rcode.NOTZONE, Verdict.FATAL),
        (dns.rcode.Rcode.SERVFAIL, Verdict.FAILOVER),
    ],
)
def test_answers(rcode: dns.rcode.Rcode, verdict: Verdict) -> None:
    result = parse_rcode(rcode, AddressSet.parse(["192.0.2.1"]))
    assert result.verdict is verdict
    assert (result.status == "ACT") == (verdict is Verdict.OK)


def test_key_and_server_forms() -> None:
    assert TsigKey.parse("k:c2VjcmV0").algorithm == dns.tsig.HMAC_SHA256
    with pytest.raises(KeyError_):
        TsigKey.parse("just-a-password")
    assert server_address("dns://127.0.0.1:8053") == ("127.0.0.1", 8053)
    assert server_address("dns://[::1]") == ("::1", 53)
    with pytest.raises(ValueError):
        server_address("http://127.0.0.1")
