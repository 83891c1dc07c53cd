"""A signed zone follows its parent with no bogus moment: a second `homing serve` holds the
parent zone (signed, the child delegated with its DS), unbound trusts the parent's key
alone; the child's leader asks the parent for the DS and switches a KSK roll, or ends
signing, by itself once the parent is ready."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import pytest

from tests.dnssec.test_validation import update
from tests.dnssec.unbound import Resolver, unbound
from tests.e2e.conftest import ZONE, Server, module_server

PARENT = "example.net"
CHILD = ZONE  # dyn.example.net
# The leader's passes and parent checks every half second; the parent's DS TTL and the
# child's DNSKEY TTL 2 s.
FAST = {"HOMING_DNSSEC_INTERVAL": "0.5", "HOMING_DNSSEC_PARENT_INTERVAL": "0.5"}
DS_TTL = "2"
STEP_TIMEOUT = 60.0
# Two servers, unbound and some twenty CLI runs: more than the default on a loaded machine.
pytestmark = pytest.mark.timeout(400)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """The parent's server and the child's, each a `homing serve` of its own."""
    (tmp_path / "parent").mkdir()
    (tmp_path / "child").mkdir()
    with (
        module_server(tmp_path / "parent", **FAST) as parent,
        module_server(tmp_path / "child", **FAST) as child,
    ):
        yield parent, child


def ds_lines(server: Server, zone: str) -> list[str]:
    return server.cli("zone", "ds", zone).stdout.strip().splitlines()


def delegate(parent: Server, *ds: str) -> None:
    """The parent delegates the child with exactly these DS records (none: --no-ds), and
    serves them."""
    given = [a for line in ds for a in ("--ds", line)] or ["--no-ds"]
    parent.cli("zone", "delegate", PARENT, CHILD, "--ns", f"ns1.{CHILD}=127.0.0.1", *given)
    wanted = sorted(_ds(line.split(" IN DS ")[1]) for line in ds)
    parent.wait_dns(CHILD, "DS", lambda a: sorted(_ds(v) for v in a.values("DS")) == wanted)


def _ds(text: str) -> str:
    """A DS record's data as one comparable string (dig splits the digest in words)."""
    tag, algorithm, digest_type, *digest = text.split()
    return f"{tag} {algorithm} {digest_type} {''.join(digest).upper()}"


def poll_until(what: str, done: Callable[[], bool], between: Callable[[], None]) -> None:
    """Run `between` (the resolver's checks) until `done`, bounded in time. The step is
    taken by the other server's leader on its own timer: there is no event to await."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while not done():
        assert time.monotonic() < deadline, f"{what}: not within {STEP_TIMEOUT:.0f} s"
        between()
        time.sleep(0.2)


class Child:
    """The signed child with one host, seen through unbound."""

    def __init__(self, child: Server, resolver: Resolver, cam: str, secret: str) -> None:
        self.server = child
        self.resolver = resolver
        self.cam = cam
        self.secret = secret
        self.probes = count()
        self.addresses = (f"198.51.100.{n}" for n in range(1, 200))

    def answers(self, *, secure: bool | None, flush: bool = True) -> None:
        """A fresh update is resolved, and a name never asked is denied, never SERVFAIL;
        with `secure`, both validated (AD), with False both insecure."""
        address = next(self.addresses)
        assert update(self.server, self.cam, self.secret, address).startswith("good")
        self.server.wait_dns(self.cam, "A", lambda a: a.values("A") == [address])
        if flush:
            self.resolver.flush(CHILD)
        found = self.resolver.dig(self.cam, "A")
        assert found.status == "NOERROR" and found.values("A"), found
        if flush:  # (else the resolver may answer from its cache, validated before)
            assert found.values("A") == [address], found
        missing = self.resolver.dig(f"probe{next(self.probes)}.{CHILD}", "A")
        assert missing.status == "NXDOMAIN", missing
        for answer in (found, missing):
            if secure is not None:
                assert ("ad" in answer.flags) == secure, answer

    def apex(self, rtype: str) -> list[str]:
        return self.server.dig(CHILD, rtype).values(rtype)


@pytest.fixture
def signed(servers: tuple[Server, Server], tmp_path: Path) -> Iterator[tuple[Server, Child]]:
    """Parent and child signed, the child's DS at the parent, unbound trusting the parent."""
    parent, child = servers
    parent.cli("zone", "add", PARENT, "--ns", f"ns1.{PARENT}", "--ttl", DS_TTL, "--dnssec")
    parent.wait_dns(PARENT, "DNSKEY", lambda a: bool(a.values("DNSKEY")))
    (anchor,) = ds_lines(parent, PARENT)
    cam, secret = child.new_host("cam")
    # The SOA TTL is the DNSKEY's: resolvers may keep the child's keys 2 s.
    child.cli("zone", "set", CHILD, "--ttl", DS_TTL)
    child.cli("zone", "set", CHILD, "--dnssec", "on", "--split-keys")
    child.cli("zone", "set", CHILD, "--parent-ns", f"127.0.0.1:{parent.dns_port}")
    child.wait_dns(CHILD, "DNSKEY", lambda a: len(a.values("DNSKEY")) == 2)
    delegate(parent, *ds_lines(child, CHILD))
    work = tmp_path / "unbound"
    stubs = {CHILD: child.dns_port}
    with unbound(work, PARENT, [anchor], parent.dns_port, parent.dig_path, stubs) as resolver:
        yield parent, Child(child, resolver, cam, secret)


def test_a_ksk_roll_switches_once_the_parent_has_the_new_ds(
    signed: tuple[Server, Child],
) -> None:
    parent, child = signed
    child.answers(secure=True)
    (old,) = ds_lines(child.server, CHILD)
    out = child.server.cli("zone", "roll", CHILD, "--ksk").stdout
    both = [line for line in out.splitlines() if " IN DS " in line]
    assert old in both and len(both) == 2, out
    child.server.wait_dns(CHILD, "CDS", lambda a: len(a.values("CDS")) == 2)
    child.answers(secure=True)
    # The parent has only the old DS: the leader waits (the roll has not switched).
    assert len(child.apex("CDS")) == 2
    delegate(parent, *both)
    poll_until(
        "the switch to the new KSK",
        lambda: len(child.apex("CDS")) == 1,
        lambda: child.answers(secure=True),
    )
    (new,) = [line for line in both if line != old]
    assert [_ds(v) for v in child.apex("CDS")] == [_ds(new.split(" IN DS ")[1])]
    assert "the parent has the new DS; ksk roll switched" in child.server.stderr_text()
    child.answers(secure=True)
    delegate(parent, new)  # the parent drops the old DS
    child.answers(secure=True)
    child.server.cli("zone", "roll", CHILD, "--ksk", "--step")  # the old key goes now
    child.server.wait_dns(CHILD, "DNSKEY", lambda a: len(a.values("DNSKEY")) == 2)
    child.answers(secure=True)


def test_turning_signing_off_waits_for_the_parent_with_no_bogus_answer(
    signed: tuple[Server, Child],
) -> None:
    parent, child = signed
    child.answers(secure=True)
    out = child.server.cli("zone", "set", CHILD, "--dnssec", "off").stdout
    assert "unsigning" in out, out
    child.server.wait_dns(CHILD, "CDS", lambda a: a.values("CDS") == ["0 0 0 00"])
    assert child.server.dig(CHILD, "CDNSKEY").values("CDNSKEY") == ["0 3 0 AA=="]
    # While the parent holds the DS, the zone stays signed and validates.
    for _ in range(3):
        child.answers(secure=True)
    assert child.apex("DNSKEY")
    delegate(parent)  # the parent removes the DS
    # From here resolvers may still hold the DS for its TTL: every answer must be
    # NOERROR or NXDOMAIN (never SERVFAIL) while the leader waits and then unsigns.
    poll_until(
        "the zone unsigned",
        lambda: not child.apex("DNSKEY"),
        lambda: child.answers(secure=None, flush=False),
    )
    assert "the parent has no DS; unsigned" in child.server.stderr_text()
    assert not child.apex("CDS")
    child.answers(secure=False)  # insecure now: no AD, no SERVFAIL
