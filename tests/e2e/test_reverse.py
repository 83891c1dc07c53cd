"""Reverse zones and RFC 2136 as DHCP servers use it, with the real peers: every prerequisite
kind through `nsupdate` (and its rcode), DHCID records, a key with an update policy over a
forward and a reverse zone, and auto-ptr PTRs answered by `dig -x` from homing and from an
NSD secondary right after a dyndns2 update."""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests import peers
from tests.e2e.conftest import (
    LOOPBACK,
    ZONE,
    Server,
    module_server,
)
from tests.e2e.secondaries import Nsd
from tests.e2e.test_rfc2136 import NSUPDATE_TIMEOUT

REV = "2.0.192.in-addr.arpa"
DHCID = "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="  # RFC 4701 3.6's first example
SECONDARY_TIMEOUT = 10.0
ZONE_TIMEOUT = 30.0  # the journal follower picks a CLI's zone up; slower on a loaded machine

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def homing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `homing serve` for the module, with the forward zone and a zone key."""
    with module_server(tmp_path_factory.mktemp("homing")) as server:
        add_zone(server, ZONE, "--ns", f"ns1.{ZONE}")
        yield server


def add_zone(server: Server, zone: str, *args: str) -> None:
    """`homing zone add`, then wait (bounded) until the server's journal follower has it."""
    server.cli("zone", "add", zone, *args)
    server._zones.add(zone)
    server.wait_dns(zone, "SOA", lambda a: a.status == "NOERROR", timeout=ZONE_TIMEOUT)


@pytest.fixture(scope="module")
def zone_key(homing: Server) -> str:
    out = homing.cli("key", "add", "ops", "--zone", ZONE).stdout
    return out.strip().splitlines()[-1]


def nsupdate(
    server: Server, key: str, commands: list[str], zone: str = ZONE
) -> subprocess.CompletedProcess[str]:
    script = "\n".join(
        [f"server {LOOPBACK} {server.dns_port}", f"zone {zone}", *commands, "send", ""]
    )
    return subprocess.run(
        [peers.program("nsupdate"), "-t", "5", "-y", key],
        input=script,
        capture_output=True,
        text=True,
        timeout=NSUPDATE_TIMEOUT,
    )


def refused_with(done: subprocess.CompletedProcess[str], rcode: str) -> None:
    assert done.returncode != 0, done
    assert f"update failed: {rcode}" in done.stderr, done.stderr


def values(server: Server, name: str, rdtype: str) -> list[str]:
    answer = server.dig(name, rdtype)
    return sorted(answer.values(rdtype))


# -- prerequisites: one test per kind (RFC 2136 2.4), each with the rcode of its failure ---------


def test_name_in_use(homing: Server, zone_key: str) -> None:
    name, absent = f"inuse.{ZONE}", f"nobody.{ZONE}"
    assert nsupdate(homing, zone_key, [f"update add {name} 60 TXT here"]).returncode == 0
    refused_with(
        nsupdate(
            homing, zone_key, [f"prereq yxdomain {absent}", f"update add {name} 60 A 192.0.2.1"]
        ),
        "NXDOMAIN",
    )
    assert values(homing, name, "A") == []
    done = nsupdate(
        homing, zone_key, [f"prereq yxdomain {name}", f"update add {name} 60 A 192.0.2.1"]
    )
    assert done.returncode == 0, done.stderr
    assert values(homing, name, "A") == ["192.0.2.1"]


def test_name_not_in_use(homing: Server, zone_key: str) -> None:
    name = f"fresh.{ZONE}"
    done = nsupdate(
        homing, zone_key, [f"prereq nxdomain {name}", f"update add {name} 60 A 192.0.2.2"]
    )
    assert done.returncode == 0, done.stderr
    refused_with(
        nsupdate(
            homing, zone_key, [f"prereq nxdomain {name}", f"update add {name} 60 A 192.0.2.3"]
        ),
        "YXDOMAIN",
    )
    assert values(homing, name, "A") == ["192.0.2.2"]


def test_rrset_exists_value_independent(homing: Server, zone_key: str) -> None:
    name = f"vi.{ZONE}"
    assert nsupdate(homing, zone_key, [f"update add {name} 60 TXT one"]).returncode == 0
    refused_with(
        nsupdate(
            homing, zone_key, [f"prereq yxrrset {name} A", f"update add {name} 60 A 192.0.2.4"]
        ),
        "NXRRSET",
    )
    assert values(homing, name, "A") == []
    done = nsupdate(
        homing, zone_key, [f"prereq yxrrset {name} TXT", f"update add {name} 60 A 192.0.2.4"]
    )
    assert done.returncode == 0, done.stderr
    assert values(homing, name, "A") == ["192.0.2.4"]


def test_rrset_exists_value_dependent(homing: Server, zone_key: str) -> None:
    name = f"vd.{ZONE}"
    assert nsupdate(homing, zone_key, [f"update add {name} 60 A 192.0.2.5"]).returncode == 0
    refused_with(
        nsupdate(
            homing,
            zone_key,
            [f"prereq yxrrset {name} A 192.0.2.99", f"update delete {name} A"],
        ),
        "NXRRSET",
    )
    assert values(homing, name, "A") == ["192.0.2.5"]
    done = nsupdate(
        homing, zone_key, [f"prereq yxrrset {name} A 192.0.2.5", f"update delete {name} A"]
    )
    assert done.returncode == 0, done.stderr
    assert values(homing, name, "A") == []


def test_rrset_does_not_exist(homing: Server, zone_key: str) -> None:
    name = f"nx.{ZONE}"
    done = nsupdate(
        homing, zone_key, [f"prereq nxrrset {name} A", f"update add {name} 60 A 192.0.2.6"]
    )
    assert done.returncode == 0, done.stderr
    refused_with(
        nsupdate(
            homing, zone_key, [f"prereq nxrrset {name} A", f"update add {name} 60 A 192.0.2.7"]
        ),
        "YXRRSET",
    )
    assert values(homing, name, "A") == ["192.0.2.6"]


def test_dhcid_stored_and_served(homing: Server, zone_key: str) -> None:
    name = f"laptop.{ZONE}"
    done = nsupdate(homing, zone_key, [f"update add {name} 60 DHCID {DHCID}"])
    assert done.returncode == 0, done.stderr
    assert values(homing, name, "DHCID") == [DHCID]
    assert homing.kdig(name, "DHCID").values("DHCID") == [DHCID]


# -- a DHCP server's key: forward and reverse zone, only what its grants allow ----------------


def test_policy_key_changes_only_what_it_is_granted(homing: Server) -> None:
    add_zone(homing, "100.51.198.in-addr.arpa")
    out = homing.cli(
        "key", "add", "dhcp", "--zone", ZONE, "--zone", "100.51.198.in-addr.arpa",
        "--grant", f"subdomain lan.{ZONE} A DHCID",
        "--grant", "subdomain 100.51.198.in-addr.arpa PTR DHCID",
    ).stdout  # fmt: skip
    key = out.strip().splitlines()[-1]
    # Granted: a lease's forward and reverse records, with the one key.
    done = nsupdate(
        homing,
        key,
        [
            f"update add pc.lan.{ZONE} 60 A 198.51.100.9",
            f"update add pc.lan.{ZONE} 60 DHCID {DHCID}",
        ],
    )
    assert done.returncode == 0, done.stderr
    done = nsupdate(
        homing,
        key,
        [f"update add 9.100.51.198.in-addr.arpa 60 PTR pc.lan.{ZONE}."],
        zone="100.51.198.in-addr.arpa",
    )
    assert done.returncode == 0, done.stderr
    assert values(homing, "9.100.51.198.in-addr.arpa", "PTR") == [f"pc.lan.{ZONE}."]
    # Not granted: another name, another type; refused, nothing changed.
    refused_with(nsupdate(homing, key, [f"update add www.{ZONE} 60 A 198.51.100.10"]), "REFUSED")
    refused_with(nsupdate(homing, key, [f"update add pc.lan.{ZONE} 60 TXT x"]), "REFUSED")
    refused_with(
        nsupdate(
            homing,
            key,
            [
                f"update add pc.lan.{ZONE} 60 A 198.51.100.11",
                f"update add x.{ZONE} 60 A 198.51.100.12",
            ],
        ),
        "REFUSED",
    )
    assert values(homing, f"www.{ZONE}", "A") == []
    assert values(homing, f"pc.lan.{ZONE}", "A") == ["198.51.100.9"]
    assert values(homing, f"pc.lan.{ZONE}", "TXT") == []
    # A policy key updates only: it transfers nothing.
    algorithm, name, secret = key.split(":")
    axfr = subprocess.run(
        [homing.dig_path, f"@{LOOPBACK}", "-p", str(homing.dns_port), "-y", key, ZONE, "AXFR"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "Transfer failed" in axfr.stdout, axfr.stdout


def test_policy_refused_outside_the_keys_zones(homing: Server) -> None:
    done = homing.cli(
        "key", "add", "stray", "--zone", ZONE, "--grant", "subdomain example.org A", check=False
    )
    assert done.returncode == 1 and "in none of the key's zones" in done.stderr, done.stderr
    done = homing.cli("key", "add", "stray", "--zone", ZONE, "--grant", "anything", check=False)
    assert done.returncode == 1 and "subdomain, name, self" in done.stderr, done.stderr


# -- auto-ptr: dig -x right after the update, from homing and from an NSD secondary -----------


def dig_x(port: int, address: str) -> list[str]:
    out = subprocess.run(
        [peers.program("dig"), f"@{LOOPBACK}", "-p", str(port), "+norec", "+time=2", "+tries=1",
         "+short", "-x", address],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    return out.split()


def test_dig_x_right_after_an_update(homing: Server, tmp_path: pytest.TempPathFactory) -> None:
    nsd = Nsd(directory=tmp_path / "nsd")  # type: ignore[operator]
    nsd.version()
    add_zone(
        homing, REV, "--auto-ptr", "--ns", "ns1.example.org",
        "--notify", f"{LOOPBACK}:{nsd.port}", "--allow-transfer", f"{LOOPBACK}/32",
    )  # fmt: skip
    nsd.configure(REV, homing.dns_port)
    nsd.start()
    try:
        fqdn, secret = homing.new_host("cam")
        response = httpx.get(
            f"{homing.http_url}/nic/update",
            params={"hostname": fqdn, "myip": "192.0.2.44"},
            auth=(fqdn, secret),
            timeout=10,
        )
        assert response.text.strip() == "good 192.0.2.44"
        assert dig_x(homing.dns_port, "192.0.2.44") == [f"{fqdn}."]
        nsd.wait_for(
            "the PTR", lambda: dig_x(nsd.port, "192.0.2.44") == [f"{fqdn}."], SECONDARY_TIMEOUT
        )
        # The address moves: the PTR moves with it, at homing and at the secondary.
        response = httpx.get(
            f"{homing.http_url}/nic/update",
            params={"hostname": fqdn, "myip": "192.0.2.45"},
            auth=(fqdn, secret),
            timeout=10,
        )
        assert response.text.strip() == "good 192.0.2.45"
        assert dig_x(homing.dns_port, "192.0.2.44") == []
        assert dig_x(homing.dns_port, "192.0.2.45") == [f"{fqdn}."]
        nsd.wait_for(
            "the moved PTR",
            lambda: (
                dig_x(nsd.port, "192.0.2.45") == [f"{fqdn}."]
                and dig_x(nsd.port, "192.0.2.44") == []
            ),
            SECONDARY_TIMEOUT,
        )
        assert str(ipaddress.ip_address("192.0.2.45").reverse_pointer).endswith(REV)
    finally:
        nsd.stop()
