"""/metrics and /readyz of a running `homing serve`, read with curl and parsed by
prometheus_client's own text parser."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import peers
from tests.e2e.conftest import Server


def curl(server: Server, path: str, *headers: str) -> tuple[int, str]:
    args = [peers.program("curl"), "-s", "-w", "\n%{http_code}", "--max-time", "10"]
    for header in headers:
        args += ["-H", header]
    result = subprocess.run(
        [*args, f"{server.http_url}{path}"], capture_output=True, text=True, timeout=20
    )
    body, _, code = result.stdout.rpartition("\n")
    return int(code), body


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> sorted labels -> value."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
async def test_metrics_parse_and_count_updates(server: Server) -> None:
    fqdn, secret = server.new_host("metered")
    async with httpx.AsyncClient(auth=(fqdn, secret), timeout=10) as client:
        good = await client.get(
            f"{server.http_url}/nic/update", params={"hostname": fqdn, "myip": "192.0.2.7"}
        )
        bad = await client.get(
            f"{server.http_url}/nic/update",
            params={"hostname": fqdn, "myip": "192.0.2.8"},
            auth=(fqdn, "wrong"),
        )
    assert good.text.strip() == "good 192.0.2.7"
    assert bad.text.strip() == "badauth"
    assert server.dig(fqdn).values("A") == ["192.0.2.7"]

    code, text = curl(server, "/metrics")
    assert code == 200, text
    found = samples(text)
    updates = found["homing_updates_total"]
    assert updates[(("answer", "good"), ("protocol", "dyndns2"))] == 1
    assert updates[(("answer", "badauth"), ("protocol", "dyndns2"))] == 1
    assert found["homing_update_duration_seconds_count"][(("protocol", "dyndns2"),)] == 2
    assert found["homing_dns_queries_total"][()] >= 1
    assert found["homing_store_up"][()] == 1
    zone = fqdn.split(".", 1)[1]
    assert found["homing_zone_serial"][(("zone", zone),)] >= 1
    assert found["homing_journal_lag"][(("zone", zone),)] == 0
    assert found["homing_follower_errors_total"][()] == 0
    assert "homing_http_request_duration_seconds_bucket" in found
    if "postgresql" in server.env.get("HOMING_DATABASE_URL", ""):
        assert found["homing_journal_listener_connected"][()] == 1

    assert curl(server, "/readyz") == (200, "ready\n")


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
async def test_metrics_refused_outside_metrics_allow_unless_token(server: Server) -> None:
    server.stop()
    server.env["HOMING_METRICS_ALLOW"] = '["192.0.2.0/24"]'
    server.env["HOMING_METRICS_TOKEN"] = "s3cret-scrape-token"
    server.start()
    code, body = curl(server, "/metrics")
    assert code == 403 and "homing_" not in body
    code, body = curl(server, "/metrics", "Authorization: Bearer wrong-token")
    assert code == 403 and "homing_" not in body
    # A forwarded-for header from an untrusted peer changes nothing.
    code, body = curl(server, "/metrics", "X-Forwarded-For: 192.0.2.1")
    assert code == 403
    code, body = curl(server, "/metrics", "Authorization: Bearer s3cret-scrape-token")
    assert code == 200 and "homing_store_up 1.0" in body


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
async def test_metrics_behind_a_trusted_proxy_judge_the_forwarded_client(server: Server) -> None:
    """A proxy on loopback must not open /metrics to everyone it forwards."""
    server.stop()
    server.env["HOMING_TRUSTED_PROXIES"] = '["127.0.0.1/32"]'
    server.start()
    code, body = curl(server, "/metrics", "X-Forwarded-For: 203.0.113.5")
    assert code == 403 and "homing_" not in body
    code, body = curl(server, "/metrics", "X-Forwarded-For: 127.0.0.1")
    assert code == 200 and "homing_store_up" in body


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
async def test_metrics_count_rfc2136_updates_and_secondary_serials(server: Server) -> None:
    zone = "xfr.example.net"
    server.cli("zone", "add", zone, "--ns", f"ns1.{zone}", "--allow-transfer", "127.0.0.1/32")
    algorithm, name, secret = (
        server.cli("key", "add", "upd", "--zone", zone).stdout.strip().splitlines()[-1].split(":")
    )
    server.restart()  # the zone's transfer list as loaded at start
    keyring = dns.tsigkeyring.from_text({name: (algorithm, secret)})
    update = dns.update.UpdateMessage(zone, keyring=keyring, keyalgorithm=algorithm)
    update.replace("www", 60, "A", "192.0.2.44")
    reply = dns.query.tcp(update, "127.0.0.1", port=server.dns_port, timeout=5)
    assert reply.rcode() == dns.rcode.NOERROR
    transfer = server.dig(zone, "AXFR", tcp=True)
    assert transfer.status == "NOERROR"
    serial = int(server.dig(zone, "SOA").values("SOA")[0].split()[2])

    code, text = curl(server, "/metrics")
    assert code == 200
    found = samples(text)
    assert found["homing_updates_total"][(("answer", "noerror"), ("protocol", "rfc2136"))] == 1
    assert found["homing_secondary_serial"][(("secondary", "127.0.0.1"), ("zone", zone))] == serial


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
async def test_metrics_add_up_the_workers(server: Server) -> None:
    """With --workers 2, whichever worker a scrape reaches reports both workers' updates."""
    fqdn, secret = server.new_host("spread")
    server.stop()
    server.args = ("--workers", "2")
    server.start()
    updates = 12
    for i in range(updates):
        # A new connection each time: the kernel hands them to either worker.
        async with httpx.AsyncClient(auth=(fqdn, secret), timeout=10) as client:
            response = await client.get(
                f"{server.http_url}/nic/update",
                params={"hostname": fqdn, "myip": f"192.0.2.{i + 1}"},
            )
        assert response.text.strip() == f"good 192.0.2.{i + 1}"
    # Each worker publishes its counters once a second: no event marks it, so poll.
    deadline = time.monotonic() + 15
    while True:
        code, text = curl(server, "/metrics")
        assert code == 200
        found = samples(text)
        total = found["homing_updates_total"].get((("answer", "good"), ("protocol", "dyndns2")))
        if total == updates:
            break
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.1)
    # Both workers took some of them (all 12 to one: a chance of 1 in 2048): their own
    # files, once both were rewritten after the last update, say so.
    while True:
        published = [
            json.loads(path.read_text()) for path in (server.data_dir / "run").glob("meters-*")
        ]
        assert len(published) == 2
        shares = [sum(n for _p, a, n in one["updates"] if a == "good") for one in published]
        if sum(shares) == updates:
            break
        assert time.monotonic() < deadline, shares
        await asyncio.sleep(0.1)
    assert all(shares), shares
