"""Hidden primary: `homing serve` pushes each change into a real Knot or BIND primary
(RFC 2136 + TSIG).

The primary runs as our own process on a loopback port with its config, zone file and
journal in the test's directory; it takes updates signed with the zone's TSIG key. An
update is answered `good` only once the primary has it; with the primary stopped it
answers `dnserr` while homing keeps the change and answers it itself; once the primary
is back, homing's background pusher brings it up to date.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import dns.query
import dns.rcode
import dns.tsig
import dns.update
import httpx
import pytest

from tests import peers
from tests.e2e.conftest import LOOPBACK, Server
from tests.e2e.secondaries import Secondary, named_options, version_line

ZONE = "push.example.org"
KEY_NAME = "push-key"
START_TIMEOUT = 15.0  # Knot loading its zone file
CATCH_UP_TIMEOUT = 30.0  # the pusher's back-off after the primary was down for a while
# The operator's zone: its own SOA and NS, which homing leaves alone.
ZONE_FILE = """$ORIGIN {zone}.
$TTL 60
@ SOA ns1.example.org. hostmaster.example.org. 1 3600 600 1209600 60
@ NS ns1.example.org.
"""


@dataclass
class ExternalPrimary(Secondary):
    """The operator's own primary: a zone file, updates allowed with one TSIG key."""

    kind: ClassVar[str] = "primary"

    def configure(self, zone: str, key: str) -> None:
        raise NotImplementedError

    def ns(self, zone: str) -> list[str]:
        answer = self.query(zone, "NS")
        if answer is None:
            return []
        return sorted(r.to_text() for rrset in answer.answer for r in rrset)


@dataclass
class KnotPrimary(ExternalPrimary):
    """Knot DNS, with its zone file, journal and database in the test's directory."""

    kind: ClassVar[str] = "knot-primary"

    def configure(self, zone: str, key: str) -> None:
        algorithm, key_name, secret = key.split(":")
        d = self.directory
        (d / "db").mkdir(parents=True, exist_ok=True)
        (d / "zones").mkdir(parents=True, exist_ok=True)
        (d / "zones" / f"{zone}.zone").write_text(ZONE_FILE.format(zone=zone))
        (d / "knot.conf").write_text(
            f"""server:
    rundir: "{d}"
    listen: {LOOPBACK}@{self.port}
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
key:
  - id: {key_name}
    algorithm: {algorithm}
    secret: {secret}
acl:
  - id: update-from-homing
    address: {LOOPBACK}
    key: {key_name}
    action: update
template:
  - id: default
    storage: "{d}/zones"
    zonefile-sync: 0
zone:
  - domain: {zone}
    file: "{d}/zones/{zone}.zone"
    dnssec-signing: off
    acl: update-from-homing
"""
        )

    def command(self) -> list[str]:
        return [peers.program("knotd"), "-c", str(self.directory / "knot.conf")]

    def version(self) -> str:
        return version_line("knotd", "--version")


@dataclass
class BindPrimary(ExternalPrimary):
    """BIND 9 as the operator's own primary, in the foreground (`named -g`)."""

    kind: ClassVar[str] = "bind-primary"

    def configure(self, zone: str, key: str) -> None:
        key_name = key.split(":")[1]
        d = self.directory
        (d / f"{zone}.zone").write_text(ZONE_FILE.format(zone=zone))
        (d / "named.conf").write_text(
            named_options(d, self.port, key)
            + f"""zone "{zone}" {{
    type primary;
    file "{d}/{zone}.zone";
    allow-update {{ key "{key_name}"; }};
}};
"""
        )

    def command(self) -> list[str]:
        return [peers.program("named"), "-g", "-c", str(self.directory / "named.conf")]

    def version(self) -> str:
        return version_line("named", "-v")


@pytest.fixture(params=["knot", "bind"])
def primary(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExternalPrimary]:
    """Knot or BIND as the external primary, not yet started; stopped by PID at teardown."""
    kind: type[ExternalPrimary] = KnotPrimary if request.param == "knot" else BindPrimary
    (tmp_path / request.param).mkdir()
    found = kind(directory=tmp_path / request.param)
    found.version()  # a missing peer skips (or fails under HOMING_REQUIRE_PEERS=1) up front
    try:
        yield found
    finally:
        found.stop()


def nic_update(server: Server, fqdn: str, secret: str, address: str) -> str:
    response = httpx.get(
        f"{server.http_url}/nic/update",
        params={"hostname": fqdn, "myip": address},
        auth=(fqdn, secret),
        timeout=10,
    )
    return response.text.strip()


def test_changes_are_pushed_and_dnserr_while_the_primary_is_down(
    server: Server, primary: ExternalPrimary
) -> None:
    server.cli(
        "zone", "add", ZONE, "--ns", "ns1.example.org",
        "--push", f"{LOOPBACK}:{primary.port}", "--push-key", KEY_NAME,
    )  # fmt: skip
    key = server.cli("key", "add", KEY_NAME, "--zone", ZONE).stdout.strip().splitlines()[-1]
    primary.configure(ZONE, key)
    primary.start()
    # The primary says nothing when its zone is loaded: poll its SOA, bounded.
    primary.wait_for("the zone loaded", lambda: primary.serial(ZONE) is not None, START_TIMEOUT)
    server.ensure_user()
    fqdn = f"cam.{ZONE}"
    secret = server.cli("host", "add", fqdn, "--owner", "alice").stdout.strip().splitlines()[-1]
    # The server picks the new zone up through its journal follower; no event reaches us.
    server.wait_dns(ZONE, "SOA", lambda a: a.status == "NOERROR", timeout=10)

    # good: the primary acknowledged the change before homing answered.
    assert nic_update(server, fqdn, secret, "192.0.2.1") == "good 192.0.2.1"
    assert primary.addresses(fqdn) == ["192.0.2.1"]
    assert server.dig(fqdn).values("A") == ["192.0.2.1"]
    # The primary keeps its own apex NS: homing's SOA and NS are never pushed.
    assert primary.ns(ZONE) == ["ns1.example.org."]

    # The primary down: the change is committed and answered by homing, the client hears dnserr.
    primary.stop()
    started = time.monotonic()
    assert nic_update(server, fqdn, secret, "192.0.2.2") == "dnserr"
    assert time.monotonic() - started < 5.0  # bounded by push_wait (3 s)
    assert server.dig(fqdn).values("A") == ["192.0.2.2"]
    # The address is stored: the same update again is nochg (it is not lost).
    assert nic_update(server, fqdn, secret, "192.0.2.2").startswith("nochg")

    # The primary back: homing's background pusher (retrying with back-off) brings it up to date.
    # It announces nothing when an update lands, so this polls its answer, bounded.
    primary.start()
    took = primary.wait_for(
        "the pushed address", lambda: primary.addresses(fqdn) == ["192.0.2.2"], CATCH_UP_TIMEOUT
    )
    print(f"{primary.kind} caught up {took:.2f}s after its restart")
    assert nic_update(server, fqdn, secret, "192.0.2.3") == "good 192.0.2.3"
    assert primary.addresses(fqdn) == ["192.0.2.3"]

    # An RFC 2136 UPDATE to homing itself is pushed on the same way. Its answer does not
    # wait for the push, and the primary announces nothing: poll its answer, bounded.
    algorithm, key_name, key_secret = key.split(":")
    update = dns.update.UpdateMessage(ZONE, keyring=dns.tsig.Key(key_name, key_secret, algorithm))
    update.replace(f"www.{ZONE}.", 60, "A", "192.0.2.80")
    answer = dns.query.tcp(update, LOOPBACK, port=server.dns_port, timeout=5)
    assert answer.rcode() == dns.rcode.Rcode.NOERROR
    primary.wait_for(
        "the RFC 2136 change", lambda: primary.addresses(f"www.{ZONE}") == ["192.0.2.80"], 10.0
    )
    log = server.stderr_text()
    assert re.search(rf"push of {re.escape(ZONE)} failed", log), log[-3000:]
