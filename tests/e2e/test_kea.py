"""DHCP-driven updates end to end with the real programs from Debian: ISC Kea's DHCPv4 server
and its DHCP-DDNS server (D2) update homing with TSIG (one key for the forward and the reverse
zone, under an update policy), for ISC dhclient in a network namespace of its own, joined to
Kea's interface by a veth pair.

A lease creates A, DHCID and PTR; a renewal keeps them; a release removes them; a second
client asking for the same host name does not take the first one's name (RFC 4703's conflict
resolution, done by D2 with prerequisites and the DHCID).

The namespace, its veth pair (and the macvlan of the second client inside it) are made here
and always deleted; Kea and dhclient are our own processes, stopped by their PIDs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import peers
from tests.e2e.conftest import (
    LOOPBACK,
    Server,
    free_dns_port,
    module_server,
)

FORWARD = "lan.example.net"
REVERSE = "77.99.10.in-addr.arpa"
SUBNET = "10.99.77"  # a /24 no one else here uses; Kea's side is .1
KEY = "kea-d2"
READY_TIMEOUT = 30.0
DNS_TIMEOUT = 30.0  # a lease's update goes dhcp4 -> D2 -> homing after the ACK: no event reaches us
POLL = 0.1

pytestmark = pytest.mark.timeout(300)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=check)


def wait_until(what: str, done: Callable[[], bool], timeout: float, log: Callable[[], str]) -> None:
    """Poll `done()` (bounded): Kea, D2 and dhclient announce nothing we could wait on."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s\n{log()[-6000:]}")
        time.sleep(POLL)  # polling interval: no event exists (see docstring)


@dataclass
class Process:
    """A peer we started, its log, stopped by PID."""

    name: str
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, args: list[str], env: dict[str, str] | None = None) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            peers.stop(self.process, 10)


@dataclass
class Lab:
    """homing, Kea (dhcp4 + D2) on the host side of the veth, the client namespace."""

    homing: Server
    directory: Path
    netns: str
    host_if: str
    client_if: str
    kea: Process
    d2: Process
    clients: list[Process] = field(default_factory=list)

    def logs(self) -> str:
        parts = [self.homing.stderr_text()[-3000:], self.kea.text()[-3000:], self.d2.text()]
        parts += [c.text() for c in self.clients]
        return "\n-----\n".join(parts)

    def dhclient(self, label: str, interface: str) -> tuple[Process, list[str]]:
        """Start dhclient for host name `label` on `interface` (in the namespace); the
        process and the arguments that release its lease."""
        d = self.directory
        conf, script = d / f"{label}-{interface}.conf", d / "dhclient-script"
        conf.write_text(f'send host-name "{label}";\nrequest subnet-mask, routers;\n')
        files = [
            "-sf", str(script), "-cf", str(conf),
            "-lf", str(d / f"{interface}.leases"), "-pf", str(d / f"{interface}.pid"),
        ]  # fmt: skip
        client = Process(f"dhclient-{interface}", d / f"dhclient-{interface}.log")
        dhclient = peers.program("dhclient")
        client.start(
            ["ip", "netns", "exec", self.netns, dhclient, "-4", "-d", "-v", *files, interface]
        )
        self.clients.append(client)
        release = ["ip", "netns", "exec", self.netns, dhclient, "-4", "-r", "-v", *files, interface]
        return client, release

    def dig(self, name: str, rdtype: str) -> list[str]:
        return sorted(self.homing.dig(name, rdtype).values(rdtype))

    def dig_x(self, address: str) -> list[str]:
        out = run(
            self.homing.dig_path, f"@{LOOPBACK}", "-p", str(self.homing.dns_port),
            "+norec", "+short", "-x", address,
        ).stdout  # fmt: skip
        return out.split()


DHCLIENT_SCRIPT = """#!/bin/sh
# Only the lease's address on the namespace's interface: no routes, no resolv.conf.
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    if [ -n "$old_ip_address" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
      ip addr del "$old_ip_address/24" dev "$interface" 2>/dev/null
    fi
    ip addr replace "$new_ip_address/24" dev "$interface" ;;
  RELEASE|EXPIRE|FAIL|STOP)
    [ -n "$old_ip_address" ] && ip addr del "$old_ip_address/24" dev "$interface" 2>/dev/null ;;
esac
exit 0
"""


def kea_configs(directory: Path, interface: str, d2_port: int, dns_port: int, secret: str) -> None:
    log = str(directory / "kea-dhcp4.log")
    dhcp4 = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": [interface], "dhcp-socket-type": "raw"},
            "lease-database": {"type": "memfile", "persist": False},
            "valid-lifetime": 600,
            "renew-timer": 2,
            "rebind-timer": 4,
            "subnet4": [
                {
                    "id": 1,
                    "subnet": f"{SUBNET}.0/24",
                    "pools": [{"pool": f"{SUBNET}.100 - {SUBNET}.150"}],
                }
            ],
            "dhcp-ddns": {
                "enable-updates": True,
                "server-ip": LOOPBACK,
                "server-port": d2_port,
                "sender-ip": LOOPBACK,
                "sender-port": 0,
            },
            "ddns-send-updates": True,
            "ddns-override-no-update": True,
            "ddns-override-client-update": True,
            "ddns-replace-client-name": "never",
            "ddns-qualifying-suffix": f"{FORWARD}.",
            "ddns-use-conflict-resolution": True,
            "loggers": [
                {
                    "name": "kea-dhcp4",
                    "output_options": [{"output": log}],
                    "severity": "INFO",
                }
            ],
        }
    }
    server = [{"ip-address": LOOPBACK, "port": dns_port}]
    d2 = {
        "DhcpDdns": {
            "ip-address": LOOPBACK,
            "port": d2_port,
            "tsig-keys": [{"name": KEY, "algorithm": "HMAC-SHA256", "secret": secret}],
            "forward-ddns": {
                "ddns-domains": [{"name": f"{FORWARD}.", "key-name": KEY, "dns-servers": server}]
            },
            "reverse-ddns": {
                "ddns-domains": [{"name": f"{REVERSE}.", "key-name": KEY, "dns-servers": server}]
            },
            "loggers": [
                {
                    "name": "kea-dhcp-ddns",
                    "output_options": [{"output": str(directory / "kea-d2.log")}],
                    "severity": "DEBUG",
                    "debuglevel": 40,
                }
            ],
        }
    }
    (directory / "kea-dhcp4.json").write_text(json.dumps(dhcp4, indent=1))
    (directory / "kea-d2.json").write_text(json.dumps(d2, indent=1))


@pytest.fixture(scope="module")
def homing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with module_server(tmp_path_factory.mktemp("homing")) as server:
        yield server


@pytest.fixture(scope="module")
def lab(homing: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    for program in ("kea-dhcp4", "kea-dhcp-ddns", "dhclient", "ip"):
        peers.program(program)
    if os.geteuid() != 0:
        peers.missing("root (network namespaces and a raw DHCP socket)")
    directory = tmp_path_factory.mktemp("kea")
    tag = secrets.token_hex(3)
    netns, host_if, client_if = f"homing-dhcp-{tag}", f"hkea{tag}", f"hcli{tag}"
    for zone in (FORWARD, REVERSE):
        homing.cli("zone", "add", zone, "--ns", f"ns1.{FORWARD}")
    key = homing.cli(
        "key", "add", KEY, "--zone", FORWARD, "--zone", REVERSE,
        "--grant", f"subdomain {FORWARD} A AAAA DHCID",
        "--grant", f"subdomain {REVERSE} PTR DHCID",
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    secret = key.split(":")[2]
    for zone in (FORWARD, REVERSE):
        homing.wait_dns(zone, "SOA", lambda a: a.status == "NOERROR", timeout=READY_TIMEOUT)
    (directory / "dhclient-script").write_text(DHCLIENT_SCRIPT)
    (directory / "dhclient-script").chmod(0o755)
    kea_configs(directory, host_if, _free_udp_port(), homing.dns_port, secret)
    env = dict(
        os.environ, KEA_PIDFILE_DIR=str(directory), KEA_LOCKFILE_DIR=str(directory),
        KEA_LOGGER_DESTINATION=str(directory / "kea-early.log"),
    )  # fmt: skip
    kea = Process("kea-dhcp4", directory / "kea-dhcp4.out")
    d2 = Process("kea-dhcp-ddns", directory / "kea-d2.out")
    made = Lab(homing, directory, netns, host_if, client_if, kea, d2)
    run("ip", "netns", "add", netns)
    try:
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", client_if)
        run("ip", "link", "set", client_if, "netns", netns)
        run("ip", "addr", "add", f"{SUBNET}.1/24", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        run("ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up")
        run("ip", "netns", "exec", netns, "ip", "link", "set", client_if, "up")
        d2.start([peers.program("kea-dhcp-ddns"), "-c", str(directory / "kea-d2.json")], env)
        kea.start([peers.program("kea-dhcp4"), "-c", str(directory / "kea-dhcp4.json")], env)
        wait_until(
            "Kea started",
            lambda: (
                "DHCP4_STARTED" in read(directory / "kea-dhcp4.log")
                and "DHCP_DDNS_STARTED" in read(directory / "kea-d2.log")
            ),
            READY_TIMEOUT,
            lambda: made.kea.text() + made.d2.text() + read(directory / "kea-dhcp4.log"),
        )
        yield made
    finally:
        for client in made.clients:
            client.stop()
        kea.stop()
        d2.stop()
        with contextlib.suppress(subprocess.SubprocessError):
            run("ip", "link", "del", host_if, check=False)  # the pair's other end goes too
        run("ip", "netns", "del", netns, check=False)


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _free_udp_port() -> int:
    return free_dns_port()  # a free UDP (and TCP) port on loopback


def acks(client: Process) -> int:
    return client.text().count("DHCPACK")


def bound_address(client: Process) -> str | None:
    for line in reversed(client.text().splitlines()):
        if line.startswith("bound to "):
            return line.split()[2]
    return None


def test_lease_renewal_release_and_a_second_client(lab: Lab) -> None:
    fqdn = f"pc1.{FORWARD}"
    first, release_first = lab.dhclient("pc1", lab.client_if)
    wait_until("a lease", lambda: bound_address(first) is not None, READY_TIMEOUT, lab.logs)
    address = bound_address(first)
    assert address is not None and address.startswith(f"{SUBNET}.")

    # The lease: A, DHCID and PTR (+ the PTR name's DHCID), all through homing's journal.
    wait_until(
        "A, DHCID and PTR", lambda: lab.dig_x(address) == [f"{fqdn}."], DNS_TIMEOUT, lab.logs
    )
    assert lab.dig(fqdn, "A") == [address]
    dhcid = lab.dig(fqdn, "DHCID")
    assert len(dhcid) == 1, lab.logs()
    reverse_name = f"{address.split('.')[-1]}.{REVERSE}"
    assert lab.dig(reverse_name, "DHCID") == dhcid

    # Renewals (T1 is 2 s): the records stay as they are.
    renewed = acks(first) + 2
    wait_until("two renewals", lambda: acks(first) >= renewed, DNS_TIMEOUT, lab.logs)
    assert lab.dig(fqdn, "A") == [address]
    assert lab.dig(fqdn, "DHCID") == dhcid
    assert lab.dig_x(address) == [f"{fqdn}."]

    # A second client (another MAC) asks for the same name: D2's add (name must not
    # exist) is refused with YXDOMAIN, its replace (the DHCID must be its own) with
    # NXRRSET; the name stays the first client's.
    second_if = f"hmv{lab.host_if[4:]}"
    run(
        "ip", "netns", "exec", lab.netns, "ip", "link", "add", "link", lab.client_if,
        "name", second_if, "type", "macvlan", "mode", "bridge",
    )  # fmt: skip
    run("ip", "netns", "exec", lab.netns, "ip", "link", "set", second_if, "up")
    before = lab.homing.stderr_text().count("refused (NXRRSET)")
    second, release_second = lab.dhclient("pc1", second_if)
    wait_until("a second lease", lambda: bound_address(second) is not None, READY_TIMEOUT, lab.logs)
    other = bound_address(second)
    assert other is not None and other != address
    wait_until(
        "D2's conflict resolution",
        lambda: lab.homing.stderr_text().count("refused (NXRRSET)") > before,
        DNS_TIMEOUT,
        lab.logs,
    )
    assert lab.dig(fqdn, "A") == [address]
    assert lab.dig(fqdn, "DHCID") == dhcid
    assert lab.dig_x(address) == [f"{fqdn}."]
    assert lab.dig_x(other) == []
    run(*release_second)
    second.stop()

    # The release: A, DHCID and PTR go.
    run(*release_first)
    first.stop()
    wait_until(
        "the release's removals",
        lambda: lab.dig(fqdn, "A") == [] and lab.dig_x(address) == [],
        DNS_TIMEOUT,
        lab.logs,
    )
    assert lab.dig(fqdn, "DHCID") == []
    assert lab.dig(reverse_name, "DHCID") == []
