"""Real NSD, Knot, BIND and PowerDNS as secondaries of `homing serve`: NOTIFY + IXFR,
and surviving its loss.

NSD transfers by address (the zone's allow-transfer list), Knot, BIND and PowerDNS
with the zone's TSIG key. How long each secondary takes to answer a new address after `/nic/update`
acknowledged it is printed and appended to bench/results/freshness.jsonl.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LOOPBACK, Server
from tests.e2e.secondaries import POLL_INTERVAL, Bind, Knot, Nsd, PowerDns, Secondary

ZONE = "sec.example.org"
SYNC_TIMEOUT = 30.0  # a first AXFR, started by the secondary itself
FRESH_TIMEOUT = 10.0  # NOTIFY, SOA check, IXFR and reload after an update
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "freshness.jsonl"


@pytest.fixture(params=["nsd+knot", "bind+powerdns"])
def secondaries(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Secondary]]:
    """Two secondaries, not yet started; stopped by PID at teardown."""
    kinds: dict[str, type[Secondary]] = {
        "nsd": Nsd, "knot": Knot, "bind": Bind, "powerdns": PowerDns
    }  # fmt: skip
    made: list[Secondary] = []
    for kind in request.param.split("+"):
        (tmp_path / kind).mkdir()
        made.append(kinds[kind](directory=tmp_path / kind))
    for secondary in made:
        secondary.version()  # a missing peer skips (or fails under HOMING_REQUIRE_PEERS=1) up front
    try:
        yield made
    finally:
        for secondary in made:
            secondary.stop()


def homing_serial(server: Server) -> int:
    return int(server.dig(ZONE, "SOA").values("SOA")[0].split()[2])


def nic_update(server: Server, fqdn: str, secret: str, address: str) -> None:
    response = httpx.get(
        f"{server.http_url}/nic/update",
        params={"hostname": fqdn, "myip": address},
        auth=(fqdn, secret),
        timeout=10,
    )
    assert response.text.strip() == f"good {address}", response.text


def record(secondary: Secondary, phase: str, seconds: float) -> None:
    record_freshness(
        secondary.kind, secondary.version(), "tests/e2e/test_secondaries.py", phase, seconds
    )


def record_freshness(kind: str, version: str, test: str, phase: str, seconds: float) -> None:
    """Print one freshness figure and append it to bench/results/freshness.jsonl."""
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "command": f"pytest {test}",
        "secondary": version,
        "phase": phase,
        "seconds": round(seconds, 4),
    }
    print(f"freshness {kind} {phase}: {seconds * 1000:.1f} ms")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(result) + "\n")


def fresh(
    secondaries: tuple[Secondary, ...], fqdn: str, address: str, phase: str, since: float
) -> dict[str, float]:
    """Seconds from `since` (the update's acknowledgement) until each secondary answers
    `address`; recorded. Secondaries announce nothing, so this polls every 10 ms, bounded."""
    pending = list(secondaries)
    took: dict[str, float] = {}
    deadline = since + FRESH_TIMEOUT
    while pending:
        for secondary in list(pending):
            if secondary.addresses(fqdn) == [address]:
                took[secondary.kind] = time.monotonic() - since
                pending.remove(secondary)
        if pending:
            for secondary in pending:
                secondary.assert_running()
            if time.monotonic() > deadline:
                logs = "\n".join(s.log_text()[-3000:] for s in pending)
                raise AssertionError(f"{fqdn} A {address} not within {FRESH_TIMEOUT}s:\n{logs}")
            time.sleep(POLL_INTERVAL)  # polling interval: no event exists (see docstring)
    for secondary in secondaries:
        record(secondary, phase, took[secondary.kind])
    return took


def ixfr_count(server: Server) -> int:
    return len(re.findall(rf"IXFR of {re.escape(ZONE)} from \d+ to \d+", server.stderr_text()))


def test_secondaries_follow_by_notify_and_ixfr(
    server: Server, secondaries: list[Secondary]
) -> None:
    notify = [arg for s in secondaries for arg in ("--notify", f"{LOOPBACK}:{s.port}")]
    server.cli(
        "zone", "add", ZONE, "--ns", "ns1.example.org", *notify,
        "--allow-transfer", f"{LOOPBACK}/32",
    )  # fmt: skip
    key = server.cli("key", "add", "xfr-key", "--zone", ZONE).stdout.strip().splitlines()[-1]
    server.ensure_user()
    fqdn = f"cam.{ZONE}"
    secret = server.cli("host", "add", fqdn, "--owner", "alice").stdout.strip().splitlines()[-1]
    # The server picks the new zone up through its journal follower; no event reaches us.
    server.wait_dns(ZONE, "SOA", lambda a: a.status == "NOERROR", timeout=10)
    nic_update(server, fqdn, secret, "192.0.2.1")

    for secondary in secondaries:
        if isinstance(secondary, Nsd):
            secondary.configure(ZONE, server.dns_port)
        else:
            assert isinstance(secondary, Knot | Bind | PowerDns)
            secondary.configure(ZONE, server.dns_port, key)
        secondary.start()
    for secondary in secondaries:
        secondary.wait_for(
            "the first transfer",
            lambda s=secondary: s.addresses(fqdn) == ["192.0.2.1"],
            SYNC_TIMEOUT,
        )

    # An update: both answer the new address after NOTIFY and IXFR.
    before = ixfr_count(server)
    nic_update(server, fqdn, secret, "192.0.2.2")
    fresh(tuple(secondaries), fqdn, "192.0.2.2", "notify+ixfr", time.monotonic())
    assert {s.serial(ZONE) for s in secondaries} == {homing_serial(server)}
    assert ixfr_count(server) >= before + 2, server.stderr_text()[-3000:]

    # homing stops: the secondaries keep answering.
    server.stop()
    for secondary in secondaries:
        secondary.assert_running()
        assert secondary.addresses(fqdn) == ["192.0.2.2"]
        assert secondary.serial(ZONE) is not None

    # homing comes back and takes more updates: the secondaries catch up by IXFR.
    server.start()
    nic_update(server, fqdn, secret, "192.0.2.3")
    nic_update(server, fqdn, secret, "192.0.2.4")
    fresh(tuple(secondaries), fqdn, "192.0.2.4", "after-restart", time.monotonic())
    serial = homing_serial(server)
    for secondary in secondaries:
        secondary.wait_for(
            f"serial {serial}", lambda s=secondary: s.serial(ZONE) == serial, FRESH_TIMEOUT
        )
    restarted_log = server.stderr_path.read_text(errors="replace")
    assert len(re.findall(rf"IXFR of {re.escape(ZONE)} from \d+", restarted_log)) >= 2, (
        restarted_log[-3000:]
    )
    assert "AXFR of" not in restarted_log, restarted_log[-3000:]
