"""A real validating resolver (unbound) trusts homing's signed answers: hosts with the AD
bit, NXDOMAIN and NODATA proven, and still after dyndns2 updates; ldns-verify-zone accepts
the zone as AXFR carries it."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from base64 import b64encode
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import peers
from tests.dnssec.unbound import Resolver, unbound
from tests.e2e.conftest import LOOPBACK, ZONE, Server
from tests.e2e.secondaries import Nsd


def update(server: Server, fqdn: str, secret: str, address: str) -> str:
    """A dyndns2 update; the server's answer line."""
    request = urllib.request.Request(
        f"{server.http_url}/nic/update?hostname={fqdn}&myip={address}",
        headers={
            "Authorization": "Basic " + b64encode(f"{fqdn}:{secret}".encode()).decode(),
            "User-Agent": "homing-tests/1.0",
        },
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return str(response.read().decode().strip())


def sign(server: Server, *options: str) -> str:
    """Sign the zone with the CLI; its DS line, as `homing zone ds` prints it."""
    server.cli("zone", "set", ZONE, "--dnssec", "on", *options)
    lines = server.cli("zone", "ds", ZONE).stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{ZONE}. IN DS "), lines
    server.wait_dns(ZONE, "DNSKEY", lambda a: bool(a.values("DNSKEY")))
    return lines[0]


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_unbound_validates_hosts_denials_and_updates(server: Server, tmp_path: Path) -> None:
    (cam, cam_secret), (nas, nas_secret) = server.new_hosts(["cam", "nas"])
    assert update(server, cam, cam_secret, "192.0.2.10").startswith("good")
    assert update(server, nas, nas_secret, "192.0.2.11").startswith("good")
    anchor = sign(server)
    work = tmp_path / "unbound"
    with unbound(work, ZONE, [anchor], server.dns_port, server.dig_path) as resolver:
        found = resolver.dig(cam, "A")
        assert found.status == "NOERROR" and "ad" in found.flags, found
        assert found.values("A") == ["192.0.2.10"]
        missing = resolver.dig(f"nothing-here.{ZONE}", "A")
        assert missing.status == "NXDOMAIN" and "ad" in missing.flags, missing
        nodata = resolver.dig(nas, "TXT")
        assert nodata.status == "NOERROR" and not nodata.values("TXT"), nodata
        assert "ad" in nodata.flags, nodata
        deeper = resolver.dig(f"a.b.{ZONE}", "A")  # below a name that does not exist
        assert deeper.status == "NXDOMAIN" and "ad" in deeper.flags, deeper
        for n, address in enumerate(["198.51.100.1", "198.51.100.2", "203.0.113.3"]):
            assert update(server, cam, cam_secret, address).startswith("good")
            server.wait_dns(cam, "A", lambda a, address=address: a.values("A") == [address])
            resolver.flush(ZONE)
            found = resolver.dig(cam, "A")
            assert found.values("A") == [address] and "ad" in found.flags, (n, found)
        new, new_secret = server.new_host("late")
        assert update(server, new, new_secret, "192.0.2.99").startswith("good")
        server.wait_dns(new, "A", lambda a: a.values("A") == ["192.0.2.99"])
        resolver.flush(ZONE)
        found = resolver.dig(new, "A")
        assert found.values("A") == ["192.0.2.99"] and "ad" in found.flags, found


def signed_axfr(server: Server) -> str:
    """The signed zone as homing's AXFR carries it, once the running server allows it.

    A transfer list changed by the CLI reaches the running server when it next reads the
    zones' settings (every few seconds): another process changed it, so there is no event
    to await from here; ask again, bounded in time."""
    args = [
        server.dig_path, f"@{LOOPBACK}", "-p", str(server.dns_port), "+onesoa", "+nocmd",
        "+nostats", "+nocomments", "+time=5", "+tries=1", ZONE, "AXFR",
    ]  # fmt: skip
    deadline = time.monotonic() + 60
    text = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    while "NSEC3PARAM" not in text or "Transfer failed" in text:
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
        text = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    assert "NSEC3PARAM" in text and "RRSIG" in text, text
    return text


def ldns_check(server: Server, tmp_path: Path) -> None:
    """ldns-verify-zone accepts the zone as homing's AXFR carries it."""
    server.cli("zone", "set", ZONE, "--allow-transfer", f"{LOOPBACK}/32")
    text = signed_axfr(server)
    path = tmp_path / "axfr.zone"
    path.write_text(text)
    verify = peers.program("ldns-verify-zone")
    done = subprocess.run(
        [verify, "-V", "2", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ldns_verify_zone_accepts_the_transferred_zone(server: Server, tmp_path: Path) -> None:
    for (fqdn, secret), address in zip(
        server.new_hosts(["h1", "h2", "h3"]), ["192.0.2.1", "192.0.2.2", "192.0.2.3"], strict=True
    ):
        assert update(server, fqdn, secret, address).startswith("good")
    sign(server)
    ldns_check(server, tmp_path)


def serial(server: Server) -> int:
    (soa,) = server.dig(ZONE, "SOA").values("SOA")
    return int(soa.split()[2])


def roll(server: Server, *args: str) -> list[str]:
    """`homing zone roll ZONE ARGS`, then wait until the server serves the change; the
    DS lines it printed."""
    before = serial(server)
    out = server.cli("zone", "roll", ZONE, *args).stdout.splitlines()
    server.wait_dns(ZONE, "SOA", lambda a: int(a.values("SOA")[0].split()[2]) > before)
    return [line for line in out if " IN DS " in line]


def test_unbound_validates_through_zsk_and_ksk_rolls(server: Server, tmp_path: Path) -> None:
    ((cam, secret),) = server.new_hosts(["cam"])
    assert update(server, cam, secret, "192.0.2.10").startswith("good")
    anchor = sign(server, "--split-keys")
    addresses = iter(f"198.51.100.{n}" for n in range(1, 50))

    def still_valid(resolver: Resolver) -> None:
        address = next(addresses)
        assert update(server, cam, secret, address).startswith("good")
        server.wait_dns(cam, "A", lambda a: a.values("A") == [address])
        resolver.flush(ZONE)
        found = resolver.dig(cam, "A")
        assert found.values("A") == [address] and "ad" in found.flags, found
        missing = resolver.dig(f"nothing.{ZONE}", "A")
        assert missing.status == "NXDOMAIN" and "ad" in missing.flags, missing

    work = tmp_path / "unbound"
    with unbound(work, ZONE, [anchor], server.dns_port, server.dig_path) as resolver:
        still_valid(resolver)
        for step in ((), ("--step",), ("--step",)):  # publish, switch, remove
            roll(server, "--zsk", *step)
            still_valid(resolver)
        both = roll(server, "--ksk")  # the new KSK published, with CDS: the parent's turn
        assert anchor in both and len(both) == 2
        still_valid(resolver)
    # The parent publishes the new DS beside the old one: a resolver that knows both.
    with unbound(tmp_path / "unbound2", ZONE, both, server.dns_port, server.dig_path) as resolver:
        still_valid(resolver)
        roll(server, "--ksk", "--step")  # the new KSK signs
        still_valid(resolver)
    new = [line for line in both if line != anchor]
    # The parent drops the old DS; the old key goes.
    with unbound(tmp_path / "unbound3", ZONE, new, server.dns_port, server.dig_path) as resolver:
        still_valid(resolver)
        roll(server, "--ksk", "--step")
        still_valid(resolver)


def test_an_nsd_secondary_fed_by_ixfr_serves_answers_that_validate(
    server: Server, tmp_path: Path
) -> None:
    directory = tmp_path / "nsd"
    directory.mkdir()
    nsd = Nsd(directory)
    ((cam, secret),) = server.new_hosts(["cam"])
    assert update(server, cam, secret, "192.0.2.10").startswith("good")
    server.cli("zone", "set", ZONE, "--notify", f"{LOOPBACK}:{nsd.port}",
               "--allow-transfer", f"{LOOPBACK}/32")  # fmt: skip
    anchor = sign(server)
    signed_axfr(server)  # NSD's first transfer must find it allowed (else it waits to retry)
    nsd.configure(ZONE, server.dns_port)
    nsd.start()
    try:
        nsd.wait_for("the first transfer", lambda: nsd.serial(ZONE) == serial(server), 30.0)
        with unbound(tmp_path / "unbound", ZONE, [anchor], nsd.port, server.dig_path) as resolver:
            for n, address in enumerate(["198.51.100.1", "198.51.100.2"]):
                if n:
                    assert update(server, cam, secret, address).startswith("good")
                    server.wait_dns(cam, "A", lambda a, address=address: a.values("A") == [address])
                    target = serial(server)
                    nsd.wait_for(f"serial {target}", lambda t=target: nsd.serial(ZONE) == t, 10.0)
                    resolver.flush(ZONE)
                found = resolver.dig(cam, "A")
                assert "ad" in found.flags, found
            assert found.values("A") == ["198.51.100.2"]
            late, late_secret = server.new_host("late")  # a new name: the NSEC3 chain moves
            assert update(server, late, late_secret, "192.0.2.99").startswith("good")
            server.wait_dns(late, "A", lambda a: a.values("A") == ["192.0.2.99"])
            target = serial(server)
            nsd.wait_for(f"serial {target}", lambda: nsd.serial(ZONE) == target, 10.0)
            resolver.flush(ZONE)
            found = resolver.dig(late, "A")
            assert found.values("A") == ["192.0.2.99"] and "ad" in found.flags, found
            for name, rdtype, status in (
                (f"nothing.{ZONE}", "A", "NXDOMAIN"),
                (late, "TXT", "NOERROR"),
            ):
                denied = resolver.dig(name, rdtype)
                assert denied.status == status and not denied.answer, denied
                assert "ad" in denied.flags, denied
        assert "IXFR of" in server.stderr_text()
    finally:
        nsd.stop()


def test_unbound_still_validates_after_a_thousand_updates(server: Server, tmp_path: Path) -> None:
    hosts = server.new_hosts([f"dev{n}" for n in range(10)])
    anchor = sign(server)
    last: dict[str, str] = {}

    def one(n: int) -> None:
        fqdn, secret = hosts[n % len(hosts)]
        address = f"10.{n // 250}.{n % 250}.{n % 7 + 1}"
        assert update(server, fqdn, secret, address).startswith("good")

    # One client per host, as devices are: each host's updates in order.
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        clients = [
            pool.submit(lambda w=worker: [one(n) for n in range(w, 1000, len(hosts))])
            for worker in range(len(hosts))
        ]
        for client in clients:
            client.result()  # an update that failed fails the test here
    for n in range(1000 - len(hosts), 1000):
        last[hosts[n % len(hosts)][0]] = f"10.{n // 250}.{n % 250}.{n % 7 + 1}"
    for fqdn, address in last.items():
        server.wait_dns(fqdn, "A", lambda a, address=address: a.values("A") == [address])
    with unbound(
        tmp_path / "unbound", ZONE, [anchor], server.dns_port, server.dig_path
    ) as resolver:
        for fqdn, address in last.items():
            found = resolver.dig(fqdn, "A")
            assert found.values("A") == [address] and "ad" in found.flags, found
        missing = resolver.dig(f"nothing.{ZONE}", "A")
        assert missing.status == "NXDOMAIN" and "ad" in missing.flags, missing
    ldns_check(server, tmp_path)
