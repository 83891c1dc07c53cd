"""The short way from RRSIG and NSEC3 text to wire gives dnspython's bytes, and leaves
what it does not read to dnspython."""

from __future__ import annotations

import dns.rdata
import pytest

from homing.dns.dnssecwire import nsec3_wire, rrsig_wire
from homing.domain.records import RRsetValue
from homing.service import dnssec
from homing.store.db import Database
from tests.dnssec.test_signing import ZONE, new_zone
from tests.dnssec.zonecheck import zone_text


async def test_every_record_of_a_signed_zone_reads_as_dnspython_reads_it(db: Database) -> None:
    await new_zone(
        db,
        RRsetValue(f"h1.{ZONE}", "A", 60, ("192.0.2.1",)),
        RRsetValue(f"h1.{ZONE}", "AAAA", 60, ("2001:db8::1",)),
        RRsetValue(f"h1.{ZONE}", "TXT", 60, ('"x"',)),
        RRsetValue(f"m.{ZONE}", "CAA", 60, ('0 issue "letsencrypt.org"',)),
        RRsetValue(f"c.{ZONE}", "DS", 60, ("12345 13 2 " + "ab" * 32,)),
    )
    await dnssec.enable(db, ZONE, algorithm="ed25519")
    seen = {"RRSIG": 0, "NSEC3": 0}
    for line in (await zone_text(db, ZONE)).splitlines():
        _, _, _, rtype, text = line.split(None, 4)
        if rtype in seen:
            fast = rrsig_wire(text) if rtype == "RRSIG" else nsec3_wire(text)
            assert fast == dns.rdata.from_text("IN", rtype, text).to_wire(), line
            seen[rtype] += 1
    assert seen["RRSIG"] >= 8 and seen["NSEC3"] == 5  # the apex, ns1, h1, m, c


@pytest.mark.parametrize(
    "text",
    [
        "A 13 3 60 1766000000 1765000000 1 zone.example. AAAA",  # times as numbers
        "A 13 3 60 20261221183753 20261205192343 1 Zone\\.Example. AAAA",  # an escape
        "A 13 3 60 20261221183753 20261205192343 1 zone.example. !!!",  # not base64
        "NOTATYPE 13 3 60 20261221183753 20261205192343 1 zone.example. AAAA",
    ],
)
def test_other_rrsig_forms_are_left_to_dnspython(text: str) -> None:
    assert rrsig_wire(text) is None


def test_other_nsec3_forms_are_left_to_dnspython() -> None:
    assert nsec3_wire("1 0 0 - notbase32hexatall!! A") is None
    assert nsec3_wire("1 0 0 - 2t7b4g4vsa5smi47k61mv5bv1a22bojr NOTATYPE") is None
    text = "1 1 10 aabb 2t7b4g4vsa5smi47k61mv5bv1a22bojr A"  # salt, iterations, opt-out
    assert nsec3_wire(text) == dns.rdata.from_text("IN", "NSEC3", text).to_wire()
