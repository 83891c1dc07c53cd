"""Knot and BIND as secondaries of a signed homing zone: fed by NOTIFY and IXFR through a
batch of updates, a ZSK roll and a KSK roll, each serves answers a validating resolver
(unbound, trusting the zone's DS) accepts, and the zone each holds passes kzonecheck,
named-checkzone and ldns-verify-zone on its AXFR from that secondary.

One `homing serve` (SQLite) and one Knot and one BIND run for the whole module.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import peers
from tests.dnssec.test_validation import serial, signed_axfr, update
from tests.dnssec.unbound import Resolver, unbound
from tests.e2e.conftest import LOOPBACK, ZONE, Server, module_server
from tests.e2e.secondaries import Bind, Knot, Secondary

SYNC_TIMEOUT = 30.0  # a first AXFR, started by the secondary itself
FOLLOW_TIMEOUT = 20.0  # NOTIFY, SOA check, IXFR and load of a difference as large as a key switch
UPDATES = 300  # dyndns2 updates in the batch, spread over the devices
DEVICES = 100  # enough names that a key switch's IXFR takes several messages
CLIENTS = 10  # devices updating at once
CHECK_TIMEOUT = 120.0


@dataclass
class TransferringKnot(Knot):
    """Knot as tests/e2e/secondaries.py sets it up, also giving the zone to an AXFR from
    loopback (the checks below read its copy that way)."""

    def configure(self, zone: str, primary_port: int, key: str) -> None:
        super().configure(zone, primary_port, key)
        path = self.directory / "knot.conf"
        text = path.read_text()
        allow = "  - id: transfer-to-tests\n    address: 127.0.0.1\n    action: transfer\n"
        text = text.replace("acl:\n", "acl:\n" + allow, 1)
        text = text.replace(
            "acl: notify-from-homing", "acl: [notify-from-homing, transfer-to-tests]"
        )
        assert text.count("transfer-to-tests") == 2, text
        path.write_text(text)


@dataclass
class Signed:
    """The running primary, its secondaries by kind, the hosts and what the parent holds."""

    server: Server
    secondaries: dict[str, Secondary]
    key: str
    hosts: dict[str, tuple[str, str]]  # label: (fqdn, update secret)
    anchors: list[str]  # the DS lines the parent publishes, as `homing zone ds` prints them
    ixfrs: dict[str, int] = field(default_factory=dict)  # by kind, as last counted


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    """A signed zone on `homing serve`, followed by a Knot and a BIND secondary (by TSIG);
    every process stopped by its PID afterwards."""
    base = tmp_path_factory.mktemp("signed-secondaries")
    secondaries: dict[str, Secondary] = {}
    for kind in (TransferringKnot, Bind):
        (base / kind.kind).mkdir()
        secondary = kind(directory=base / kind.kind)
        secondary.version()  # a missing peer skips (or fails under HOMING_REQUIRE_PEERS=1)
        secondaries[kind.kind] = secondary
    (base / "homing").mkdir()
    with module_server(base / "homing") as server:
        try:
            yield start(server, secondaries)
        finally:
            for secondary in secondaries.values():
                secondary.stop()


def start(server: Server, secondaries: dict[str, Secondary]) -> Signed:
    labels = ["cam", "nas", "cam.office", *(f"dev{n}" for n in range(DEVICES))]
    hosts = dict(zip(labels, server.new_hosts(labels), strict=True))
    for n, label in enumerate(labels[:3]):  # the devices' first addresses come by IXFR
        fqdn, secret = hosts[label]
        assert update(server, fqdn, secret, f"192.0.2.{n + 1}").startswith("good")
    notify = [arg for s in secondaries.values() for arg in ("--notify", f"{LOOPBACK}:{s.port}")]
    key = server.cli("key", "add", "xfr-key", "--zone", ZONE).stdout.strip().splitlines()[-1]
    server.cli(
        "zone", "set", ZONE, *notify, "--allow-transfer", f"{LOOPBACK}/32",
        "--glue", f"ns1.{ZONE}=192.0.2.53",  # the checkers want the in-zone name server's address
        "--dnssec", "on", "--split-keys",
    )  # fmt: skip
    (anchor,) = server.cli("zone", "ds", ZONE).stdout.strip().splitlines()
    server.wait_dns(ZONE, "DNSKEY", lambda a: bool(a.values("DNSKEY")))
    signed_axfr(server)  # the first transfer must find it allowed (else a secondary waits to retry)
    target = serial(server)
    for secondary in secondaries.values():
        assert isinstance(secondary, Knot | Bind)
        secondary.configure(ZONE, server.dns_port, key)
        secondary.start()
    for secondary in secondaries.values():
        secondary.wait_for(
            "the first transfer", lambda s=secondary: s.serial(ZONE) == target, SYNC_TIMEOUT
        )
    return Signed(server, secondaries, key, hosts, [anchor])


def follow(signed: Signed, what: str) -> None:
    """Every secondary reaches the primary's serial, having taken at least one more IXFR
    and no AXFR since the first (its own log says so).

    A secondary may answer with the new serial a moment before it logs the transfer that
    brought it (BIND writes "Transfer completed" after the zone is loaded), so each is
    awaited until both hold."""
    target = serial(signed.server)
    for kind, secondary in signed.secondaries.items():
        secondary.wait_for(
            f"serial {target} after {what}, served and logged",
            lambda s=secondary: s.serial(ZONE) == target and logged(s, target),
            FOLLOW_TIMEOUT,
        )
        ixfrs, axfrs = transfers(secondary)
        assert ixfrs > signed.ixfrs.get(kind, 0), (what, secondary.log_text()[-4000:])
        assert axfrs == 1, (what, secondary.log_text()[-4000:])
        signed.ixfrs[kind] = ixfrs
    assert "journal does not reach back" not in signed.server.stderr_text()


def logged(secondary: Secondary, target: int) -> bool:
    """The secondary's log tells a transfer that ended at the serial `target`."""
    if isinstance(secondary, Knot):
        pattern = rf"zone updated, .*, serial \d+ -> {target},"
    else:
        pattern = rf"Transfer completed: .* \(serial {target}\)"
    return re.search(pattern, secondary.log_text()) is not None


def transfers(secondary: Secondary) -> tuple[int, int]:
    """The incremental and the whole-zone transfers the secondary took, as it tells them.

    Knot logs each with its kind. BIND (at its default log level) logs only that a
    transfer completed; it writes each IXFR into its journal as one transaction, and an
    AXFR replaces the journal, so the transactions, chained from the first transfer's
    serial, are the IXFRs and the other completed transfers the AXFRs."""
    text = secondary.log_text()
    if isinstance(secondary, Knot):
        return (
            len(re.findall(r"IXFR, incoming, remote .*, finished", text)),
            len(re.findall(r"AXFR, incoming, remote .*, finished", text)),
        )
    completed = len(re.findall(r"Transfer completed:", text))
    journal = secondary.directory / f"{ZONE}.db.jnl"
    if not journal.exists():
        return 0, completed
    printed = subprocess.run(
        [peers.program("named-journalprint"), "-x", str(journal)],
        capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=True,
    ).stdout  # fmt: skip
    steps = [
        (int(a), int(b))
        for a, b in re.findall(r"^Transaction: .* start (\d+) end (\d+)$", printed, re.M)
    ]
    first = int(re.findall(r"transferred serial (\d+)", text)[0])
    chain = [first] + [end for _, end in steps[:-1]]
    assert [start for start, _ in steps] == chain, printed
    return len(steps), completed - len(steps)


def validates(signed: Signed, resolver: Resolver, what: str) -> None:
    """A host's A with AD, NXDOMAIN and NODATA proven, through the resolver."""
    fqdn, secret = signed.hosts["cam"]
    found = resolver.dig(fqdn, "A")
    assert found.status == "NOERROR" and "ad" in found.flags, (what, found)
    missing = resolver.dig(f"nothing-here.{ZONE}", "A")
    assert missing.status == "NXDOMAIN" and "ad" in missing.flags, (what, missing)
    nodata = resolver.dig(signed.hosts["nas"][0], "TXT")
    assert nodata.status == "NOERROR" and not nodata.answer and "ad" in nodata.flags, (what, nodata)
    between = resolver.dig(f"office.{ZONE}", "A")  # an empty non-terminal
    assert between.status == "NOERROR" and not between.answer, (what, between)
    assert "ad" in between.flags, (what, between)


@pytest.mark.parametrize("kind", ["knot", "bind"])
def test_answers_from_each_secondary_validate(signed: Signed, kind: str, tmp_path: Path) -> None:
    secondary = signed.secondaries[kind]
    server = signed.server
    with unbound(tmp_path, ZONE, signed.anchors, secondary.port, server.dig_path) as resolver:
        validates(signed, resolver, kind)
        deep = resolver.dig(signed.hosts["cam.office"][0], "A")
        assert deep.values("A") and "ad" in deep.flags, deep


def transferred(secondary: Secondary, server: Server, path: Path) -> Path:
    """The zone as an AXFR from the secondary carries it, in a file."""
    args = [
        server.dig_path, f"@{LOOPBACK}", "-p", str(secondary.port), "+onesoa",
        "+nocmd", "+nostats", "+nocomments", "+time=5", "+tries=1", ZONE, "AXFR",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "NSEC3PARAM" in done.stdout, done.stdout + done.stderr
    path.write_text(done.stdout)
    return path


def zone_checks(path: Path) -> None:
    """kzonecheck (DNSSEC too), named-checkzone and ldns-verify-zone accept the zone file,
    and each RRSIG has the TTL of the RRset it covers (RFC 4034 3), which none of them
    checks (a secondary keeps the TTLs it was sent)."""
    ttls: dict[tuple[str, str], set[int]] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        owner, ttl, _, rtype, data = line.split(None, 4)
        kind = f"RRSIG {data.split()[0]}" if rtype == "RRSIG" else rtype
        ttls.setdefault((owner.lower(), kind), set()).add(int(ttl))
    signed = [(o, k) for o, k in ttls if k.startswith("RRSIG ")]
    assert signed and all(ttls[o, k] == ttls[o, k[6:]] for o, k in signed), ttls
    for command in (
        [peers.program("kzonecheck"), "-o", ZONE, "-d", "on", str(path)],
        [peers.program("named-checkzone"), "-i", "full", ZONE, str(path)],
        [peers.program("ldns-verify-zone"), "-V", "2", str(path)],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=CHECK_TIMEOUT)
        assert done.returncode == 0, (command[0], done.stdout + done.stderr)


@pytest.mark.parametrize("kind", ["knot", "bind"])
def test_the_zone_each_secondary_holds_checks(signed: Signed, kind: str, tmp_path: Path) -> None:
    secondary = signed.secondaries[kind]
    zone_checks(transferred(secondary, signed.server, tmp_path / f"{kind}.zone"))


def moved(signed: Signed, *roll: str) -> list[str]:
    """`homing zone roll ZONE ROLL...`; then the server serves the change."""
    server = signed.server
    before = serial(server)
    printed = server.cli("zone", "roll", ZONE, *roll).stdout.splitlines()
    server.wait_dns(ZONE, "SOA", lambda a: int(a.values("SOA")[0].split()[2]) > before)
    return [line for line in printed if " IN DS " in line]


def test_updates_and_key_rolls_reach_each_secondary_by_ixfr(signed: Signed, tmp_path: Path) -> None:
    server = signed.server
    devices = [signed.hosts[f"dev{n}"] for n in range(DEVICES)]

    def address(n: int) -> str:
        return f"10.{n // 250}.{n % 250}.{n % 7 + 1}"

    def client(first: int) -> None:  # one client per device, as devices are: in order
        for n in range(first, UPDATES, DEVICES):
            fqdn, secret = devices[n % DEVICES]
            assert update(server, fqdn, secret, address(n)).startswith("good")

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        for done in [pool.submit(client, first) for first in range(DEVICES)]:
            done.result()  # an update that failed fails the test here
    follow(signed, f"{UPDATES} updates")
    for n in range(UPDATES - DEVICES, UPDATES):
        fqdn = devices[n % DEVICES][0]
        for secondary in signed.secondaries.values():
            assert secondary.addresses(fqdn) == [address(n)], (secondary.kind, fqdn)

    addresses = iter(f"198.51.100.{n}" for n in range(1, 100))

    def step(resolvers: dict[str, Resolver], *roll: str) -> list[str]:
        """An update and a roll's step, followed by every secondary; then each answers the
        update in a way the resolver trusts."""
        cam, secret = signed.hosts["cam"]
        now = next(addresses)
        assert update(server, cam, secret, now).startswith("good")
        printed = moved(signed, *roll) if roll else []
        follow(signed, " ".join(roll) or "an update")
        for kind, resolver in resolvers.items():
            resolver.flush(ZONE)
            found = resolver.dig(cam, "A")
            assert found.values("A") == [now] and "ad" in found.flags, (kind, roll, found)
            validates(signed, resolver, f"{kind} after {roll}")
        return printed

    (old,) = signed.anchors
    with resolving(signed, tmp_path / "old") as resolvers:
        step(resolvers)
        door, door_secret = server.new_host("door.lab")  # and lab, an empty non-terminal
        assert update(server, door, door_secret, "192.0.2.80").startswith("good")
        follow(signed, "a new name below a new empty non-terminal")
        for kind, resolver in resolvers.items():
            resolver.flush(ZONE)
            found = resolver.dig(door, "A")
            assert found.values("A") == ["192.0.2.80"] and "ad" in found.flags, (kind, found)
            between = resolver.dig(f"lab.{ZONE}", "A")
            assert between.status == "NOERROR" and not between.answer, (kind, between)
            assert "ad" in between.flags, (kind, between)
        for roll in (
            ("--zsk",),
            ("--zsk", "--step"),
            ("--zsk", "--step"),
        ):  # publish, switch, remove
            step(resolvers, *roll)
        both = step(resolvers, "--ksk")  # the new KSK published, with CDS: the parent's turn
        assert old in both and len(both) == 2, both
    signed.anchors = both  # the parent publishes the new DS beside the old one
    with resolving(signed, tmp_path / "both") as resolvers:
        step(resolvers, "--ksk", "--step")  # the new KSK signs
    signed.anchors = [line for line in both if line != old]
    with resolving(signed, tmp_path / "new") as resolvers:  # the parent dropped the old DS
        step(resolvers, "--ksk", "--step")  # the old KSK goes
    for kind, secondary in signed.secondaries.items():
        # The ZSK switch's IXFR (every signature replaced) came in several messages, each
        # with its TSIG.
        assert most_messages(secondary) > 1, secondary.log_text()[-4000:]
        zone_checks(transferred(secondary, server, tmp_path / f"{kind}.zone"))


def most_messages(secondary: Secondary) -> int:
    """The most messages one transfer to the secondary took, as its log says."""
    if isinstance(secondary, Knot):
        pattern = r"XFR, incoming, remote .*, finished, .* (\d+) messages"
    else:
        pattern = r"Transfer completed: (\d+) messages"
    return max(int(n) for n in re.findall(pattern, secondary.log_text()))


@contextlib.contextmanager
def resolving(signed: Signed, work: Path) -> Iterator[dict[str, Resolver]]:
    """One unbound per secondary, trusting the anchors the parent holds now."""
    work.mkdir()
    with contextlib.ExitStack() as stack:
        resolvers = {}
        for kind, secondary in signed.secondaries.items():
            resolvers[kind] = stack.enter_context(
                unbound(work / kind, ZONE, signed.anchors, secondary.port, signed.server.dig_path)
            )
        yield resolvers
