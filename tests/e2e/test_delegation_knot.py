"""Zone cuts answered as a real Knot answers them: the same zone file imported into homing
and served by a Knot primary of ours, the same questions asked of both, and rcode, flags,
answer, authority and additional compared. Then `zone delegate`/`undelegate` on the
running server, and a delegation reaching an NSD secondary by IXFR."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rrset
import pytest

from tests import peers
from tests.e2e.conftest import LOOPBACK, Server
from tests.e2e.secondaries import Nsd, Secondary, version_line

ZONE = "parent.example"
DIGEST = "ab" * 32

ZONE_FILE = f"""\
$ORIGIN {ZONE}.
$TTL 300
@          IN SOA ns1 hostmaster 1 7200 900 604800 120
@          IN NS  ns1
ns1        IN A   192.0.2.53
www        IN A   192.0.2.80
*          IN A   192.0.2.99
tochild    IN CNAME www.child
child      IN NS  ns1.child
child      IN NS  ns2.sib
child      IN NS  ns.example.org.
child      IN DS  12345 13 2 {DIGEST}
ns1.child  IN A   192.0.2.10
ns1.child  IN AAAA 2001:db8::10
sib        IN NS  ns2.sib
ns2.sib    IN A   192.0.2.20
inzone     IN NS  ns1
"""

QUESTIONS = [
    ("child", "A"),
    ("child", "NS"),
    ("child", "DS"),
    ("child", "SOA"),
    ("child", "TXT"),
    ("www.child", "A"),
    ("a.b.www.child", "TXT"),
    ("ns1.child", "A"),
    ("ns1.child", "AAAA"),
    ("www.child", "DS"),
    ("nothing.child", "A"),  # the apex wildcard does not reach below the cut
    ("WwW.ChIlD", "A"),
    ("sib", "NS"),
    ("sib", "DS"),  # no DS: NODATA from the parent
    ("x.sib", "AAAA"),
    ("ns2.sib", "A"),
    ("inzone", "A"),  # served by the parent's own server: its address is glue too
    ("x.inzone", "MX"),
    ("www", "A"),
    ("nothing", "A"),
    ("ns1", "A"),
    ("tochild", "A"),
]


@dataclass
class KnotPrimary(Secondary):
    """Knot serving the zone file itself, as the reference."""

    kind: ClassVar[str] = "knot-primary"

    def configure_file(self, zone: str, text: str) -> None:
        d = self.directory
        (d / "db").mkdir(parents=True, exist_ok=True)
        (d / "zones").mkdir(parents=True, exist_ok=True)
        (d / "zones" / f"{zone}.zone").write_text(text)
        (d / "knot.conf").write_text(
            f"""server:
    rundir: "{d}"
    listen: {LOOPBACK}@{self.port}
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
template:
  - id: default
    storage: "{d}/zones"
    zonefile-sync: -1
zone:
  - domain: {zone}
    file: "{zone}.zone"
"""
        )

    def command(self) -> list[str]:
        return [peers.program("knotd"), "-c", str(self.directory / "knot.conf")]

    def version(self) -> str:
        return version_line("knotd", "--version")


def ask(port: int, qname: str, rdtype: str) -> dns.message.Message:
    q = dns.message.make_query(qname, rdtype, use_edns=0, payload=1232)
    q.flags = 0  # no RD: the server's own data
    return dns.query.udp(q, LOOPBACK, port=port, timeout=2.0)


def _lines(section: list[dns.rrset.RRset]) -> list[str]:
    out = []
    for rrset in section:
        if rrset.rdtype == dns.rdatatype.SOA:
            for rdata in rrset:  # each server keeps its own serial
                assert isinstance(rdata, dns.rdtypes.ANY.SOA.SOA)
                out.append(f"{rrset.name} {rrset.ttl} SOA {rdata.mname} {rdata.rname}".lower())
            continue
        out.extend(rrset.to_text().lower().split("\n"))
    return sorted(out)


def shape(response: dns.message.Message) -> dict[str, object]:
    flags = dns.flags.Flag
    return {
        "rcode": response.rcode(),
        "flags": response.flags & (flags.AA | flags.TC | flags.QR | flags.RA),
        "answer": _lines(response.answer),
        "authority": _lines(response.authority),
        "additional": _lines(response.additional),
    }


@pytest.fixture
def knot(tmp_path: Path) -> Iterator[KnotPrimary]:
    directory = tmp_path / "knot"
    directory.mkdir()
    primary = KnotPrimary(directory)
    primary.configure_file(ZONE, ZONE_FILE)
    primary.start()
    try:
        primary.wait_for("the zone loaded", lambda: primary.serial(ZONE) == 1, timeout=10.0)
        yield primary
    finally:
        primary.stop()


def test_referrals_equal_knots(server: Server, knot: KnotPrimary, tmp_path: Path) -> None:
    path = tmp_path / "parent.zone"
    path.write_text(ZONE_FILE)
    out = server.cli("zone", "import", ZONE, str(path))
    assert "3 delegations" in out.stderr
    server.wait_dns(f"www.{ZONE}", "A", lambda a: a.values("A") == ["192.0.2.80"])
    differences = []
    for label, rdtype in QUESTIONS:
        qname = f"{label}.{ZONE}."
        ours, theirs = (
            shape(ask(server.dns_port, qname, rdtype)),
            shape(ask(knot.port, qname, rdtype)),
        )
        if ours != theirs:
            differences.append(f"{qname} {rdtype}:\n  homing {ours}\n  knot   {theirs}")
    assert not differences, f"{knot.version()}\n" + "\n".join(differences)


def test_delegate_and_undelegate_on_a_running_server(server: Server) -> None:
    server.ensure_zone(ZONE)
    server.cli("zone", "delegate", ZONE, f"child.{ZONE}", "--ns", f"ns1.child.{ZONE}=192.0.2.10")
    server.wait_dns(f"www.child.{ZONE}", "A", lambda a: not a.aa and a.status == "NOERROR")
    referral = ask(server.dns_port, f"www.child.{ZONE}.", "A")
    assert shape(referral) == {
        "rcode": 0,
        "flags": dns.flags.Flag.QR,
        "answer": [],
        "authority": [f"child.{ZONE}. 3600 in ns ns1.child.{ZONE}."],
        "additional": [f"ns1.child.{ZONE}. 3600 in a 192.0.2.10"],
    }
    server.cli("zone", "undelegate", ZONE, f"child.{ZONE}")
    server.wait_dns(f"www.child.{ZONE}", "A", lambda a: a.aa and a.status == "NXDOMAIN")


def test_import_refuses_data_below_a_cut_in_one_line(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "bad.zone"
    path.write_text(ZONE_FILE + "www.child IN A 192.0.2.99\n")
    out = server.cli("zone", "import", ZONE, str(path), check=False)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"www.child.{ZONE} A" in lines[0], out.stderr
    assert ZONE not in server.cli("zone", "list").stdout  # nothing created


def test_a_delegation_reaches_a_secondary_by_ixfr(server: Server, tmp_path: Path) -> None:
    directory = tmp_path / "nsd"
    directory.mkdir()
    nsd = Nsd(directory)
    nsd.version()
    server.cli("zone", "add", ZONE, "--ns", "ns1.example.org", "--notify", f"{LOOPBACK}:{nsd.port}",
               "--allow-transfer", f"{LOOPBACK}/32")  # fmt: skip
    server.wait_dns(ZONE, "SOA", lambda a: a.status == "NOERROR", timeout=10)
    nsd.configure(ZONE, server.dns_port)
    nsd.start()
    try:
        nsd.wait_for("the first transfer", lambda: nsd.serial(ZONE) is not None, 30.0)
        server.cli(
            "zone", "delegate", ZONE, f"child.{ZONE}",
            "--ns", f"ns1.child.{ZONE}=192.0.2.10", "--ns", "ns.example.org",
        )  # fmt: skip
        server.wait_dns(f"www.child.{ZONE}", "A", lambda a: not a.aa)
        serial = int(server.dig(ZONE, "SOA").values("SOA")[0].split()[2])
        nsd.wait_for(f"serial {serial}", lambda: nsd.serial(ZONE) == serial, 10.0)
        for qname, rdtype in ((f"www.child.{ZONE}.", "A"), (f"child.{ZONE}.", "NS")):
            ours = shape(ask(server.dns_port, qname, rdtype))
            assert ours["authority"] and not ours["answer"]
            assert ours == shape(ask(nsd.port, qname, rdtype)), nsd.version()
        assert "IXFR of" in server.stderr_text()
    finally:
        nsd.stop()
