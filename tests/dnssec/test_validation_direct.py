"""A real validating resolver (unbound) trusts the answers homing makes from the index
without dnspython in a signed zone: a wildcard's answers (with the proof that the name
asked for does not exist), wildcard NODATA, NXDOMAIN, NODATA at an empty non-terminal,
and the same answers asked again (kept), in other letter case."""

from __future__ import annotations

from pathlib import Path

from tests.dnssec.test_validation import sign
from tests.dnssec.unbound import unbound
from tests.e2e.conftest import ZONE, Server

ZONE_FILE = f"""$ORIGIN {ZONE}.
$TTL 300
@        IN SOA ns1 hostmaster 1 3600 600 86400 300
@        IN NS  ns1
ns1      IN A   192.0.2.53
*.w      IN A   192.0.2.7
*.w      IN TXT "wild"
a.b.deep IN A   192.0.2.8
"""


def test_unbound_validates_wildcards_and_denials_made_from_wire(
    server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "zone"
    path.write_text(ZONE_FILE)
    server.cli("zone", "import", ZONE, str(path))
    server.wait_dns(f"x.w.{ZONE}", "A", lambda a: a.values("A") == ["192.0.2.7"])
    anchor = sign(server)
    with unbound(tmp_path / "unbound", ZONE, [anchor], server.dns_port, server.dig_path) as res:
        for _ in range(2):  # the second time from what the server kept
            for name in (f"x.w.{ZONE}", f"A.b.C.W.{ZONE.upper()}"):
                found = res.dig(name, "A")
                assert found.status == "NOERROR" and "ad" in found.flags, found
                assert found.values("A") == ["192.0.2.7"], found
            nodata = res.dig(f"y.w.{ZONE}", "AAAA")  # the wildcard has no AAAA
            assert nodata.status == "NOERROR" and not nodata.values("AAAA"), nodata
            assert "ad" in nodata.flags, nodata
            for name in (f"nothing.{ZONE}", f"x.y.b.deep.{ZONE}"):
                missing = res.dig(name, "A")
                assert missing.status == "NXDOMAIN" and "ad" in missing.flags, missing
            empty = res.dig(f"b.deep.{ZONE}", "A")  # an empty non-terminal
            assert empty.status == "NOERROR" and "ad" in empty.flags, empty
            res.flush(ZONE)
