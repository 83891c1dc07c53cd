"""`homing zone set` and `zone delete` against a running `homing serve`: the server answers
the new NS, glue and SOA within its follow interval (dig), and REFUSED for a deleted zone,
whose secondary-zone transfers stop."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import ZONE, Server

pytestmark = pytest.mark.timeout(300)

CONVERGE = 30.0  # the follower polls every 0.5 s; generous on a loaded machine


def soa_fields(server: Server) -> list[str]:
    """The SOA's rdata as dig shows it: mname rname serial refresh retry expire minimum."""
    return server.dig(ZONE, "SOA").values("SOA")[0].split()


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_zone_set_reaches_the_running_server(server: Server) -> None:
    server.ensure_zone()
    serial = int(soa_fields(server)[2])
    server.cli(
        "zone", "set", ZONE, "--ns", f"a.{ZONE}=192.0.2.53", "--ns", "b.example.org",
        "--rname", "ops.example.org", "--ttl", "300", "--negative-ttl", "30",
        "--refresh", "7200", "--retry", "900", "--expire", "86400",
    )  # fmt: skip
    answer = server.wait_dns(
        ZONE, "SOA", lambda a: a.values("SOA")[0].split()[1] == "ops.example.org.", CONVERGE
    )
    mname, rname, new_serial, *timers = answer.values("SOA")[0].split()
    assert (mname, rname) == (f"a.{ZONE}.", "ops.example.org.")
    assert int(new_serial) > serial
    assert timers == ["7200", "900", "86400", "30"]
    assert [r.ttl for r in answer.answer] == [300]
    assert server.dig(ZONE, "NS").values("NS") == [f"a.{ZONE}.", "b.example.org."]
    assert server.dig(f"a.{ZONE}", "A").values("A") == ["192.0.2.53"]
    # A negative answer carries the new negative TTL (RFC 2308: min of SOA TTL and minimum).
    missing = server.dig(f"nothing.{ZONE}", "A")
    assert missing.status == "NXDOMAIN"
    assert [(r.rdtype, r.ttl) for r in missing.authority] == [("SOA", 30)]
    # The glue alone changes: the server answers the new address.
    server.cli("zone", "set", ZONE, "--glue", f"a.{ZONE}=192.0.2.54")
    server.wait_dns(f"a.{ZONE}", "A", lambda a: a.values("A") == ["192.0.2.54"], CONVERGE)


def test_zone_delete_reaches_the_running_server(server: Server) -> None:
    server.ensure_zone()
    server.ensure_zone("other.example.net")
    server.cli("zone", "add", "copy.example.net", "--primary", "127.0.0.1:9")
    server.wait_dns("copy.example.net", "SOA", lambda a: a.status == "SERVFAIL", CONVERGE)
    refused = server.cli("zone", "delete", ZONE, check=False)
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert server.dig(ZONE, "SOA").status == "NOERROR"
    server.cli("zone", "delete", ZONE, "--force")
    server.wait_dns(ZONE, "SOA", lambda a: a.status == "REFUSED", CONVERGE)
    assert server.dig(f"host.{ZONE}", "A").status == "REFUSED"
    assert server.dig("other.example.net", "SOA").status == "NOERROR"
    # A secondary zone deleted: no longer answered, and its transfers stop.
    server.cli("zone", "delete", "copy.example.net", "--force")
    server.wait_dns("copy.example.net", "SOA", lambda a: a.status == "REFUSED", CONVERGE)
    stopped = "secondary zone copy.example.net deleted from the store: no longer transferred"
    deadline = time.monotonic() + CONVERGE
    while stopped not in server.stderr_text():
        assert time.monotonic() < deadline, f"not in the log: {stopped}\n{server.stderr_text()}"
        time.sleep(0.1)  # the server's log is the only sign: no event to wait on
    assert server.dig("copy.example.net", "SOA").status == "REFUSED"
