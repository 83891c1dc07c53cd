"""The signer builds the signed data itself (RFC 4034 3.1.8.1) and signs it with
`cryptography`: its RRSIGs validate with dnspython, and with ECDSA's deterministic
signatures (RFC 6979) and Ed25519's they are the very records dns.dnssec.sign makes."""

from __future__ import annotations

from datetime import UTC, datetime

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from homing.dnssec.keys import ACTIVE, generate, parsed_key
from homing.dnssec.signer import Signer
from homing.domain.records import RRsetValue

ZONE = "signed.example"
ORIGIN = dns.name.from_text(ZONE)
NOW = 1_800_000_000

VALUES = [
    RRsetValue(f"h1.{ZONE}", "A", 60, ("192.0.2.2", "192.0.2.1", "192.0.2.1")),
    RRsetValue(f"H1.{ZONE}", "AAAA", 60, ("2001:db8::1",)),
    RRsetValue(f"*.w.{ZONE}", "A", 300, ("192.0.2.7",)),
    RRsetValue(f"t.{ZONE}", "TXT", 60, ('"one"', '"a longer text"')),
    RRsetValue(f"m.{ZONE}", "MX", 60, ("10 MAIL.Other.example.", f"5 mx.{ZONE}.")),
    RRsetValue(ZONE, "SOA", 60, (f"ns.{ZONE}. host.{ZONE}. 7 3600 600 86400 60",)),
]


@pytest.mark.parametrize(("algorithm", "role"), [(13, "csk"), (15, "csk"), (13, "zsk")])
@pytest.mark.parametrize("value", VALUES, ids=lambda v: f"{v.name}/{v.rtype}")
def test_signatures_validate_and_equal_dnspythons(
    algorithm: int, role: str, value: RRsetValue
) -> None:
    key = parsed_key(1, role, algorithm, ACTIVE, generate(algorithm), datetime.now(UTC))
    (text,) = Signer(ZONE, [key], NOW).signatures(value)
    owner = dns.name.from_text(value.name)
    rrset = dns.rrset.from_text_list(
        owner, value.ttl, dns.rdataclass.IN, value.rtype, list(value.rdatas)
    )
    ours = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RRSIG, text)
    sigs = dns.rrset.from_rdata_list(owner, value.ttl, [ours])
    dns.dnssec.validate(
        rrset, sigs, {ORIGIN: dns.rrset.from_rdata(ORIGIN, 3600, key.dnskey)}, now=NOW
    )
    made = dns.dnssec.sign(
        rrset,
        key.private,
        ORIGIN,
        key.dnskey,
        inception=ours.inception,
        expiration=ours.expiration,
    )
    assert text == made.to_text()  # Ed25519 signatures are deterministic too (RFC 8032 5.1.6)


def test_a_zone_signing_key_leaves_the_key_rrsets_to_the_entry_key() -> None:
    key = parsed_key(1, "zsk", 13, ACTIVE, generate(13), datetime.now(UTC))
    dnskey = RRsetValue(ZONE, "DNSKEY", 3600, (key.dnskey.to_text(),))
    assert Signer(ZONE, [key], NOW).signatures(dnskey) == []
