"""`homing serve --workers 2`: both processes answer, and every change reaches both at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import dns.asyncquery
import dns.message
import httpx
import pytest

from homing.dns.server import query_count
from homing.workers import queries_answered
from tests.e2e.conftest import LOOPBACK, Server

ROUNDS = 5
QUERIES = 12  # each from a fresh socket, so the kernel spreads them over the workers
# Far longer than any wake-up takes: a worker that only polled the journal (every
# HOMING_FOLLOW_INTERVAL, set to 60 s here) would miss it and fail the test.
DEADLINE = 10.0


def worker_pids(server: Server) -> set[int]:
    run = server.data_dir / "run"
    return {int(p.stem.split("-")[1]) for p in run.glob("worker-*.sock")} if run.exists() else set()


async def answers(server: Server, name: str) -> list[str]:
    query = dns.message.make_query(name, "A")
    replies = await asyncio.gather(
        *(
            dns.asyncquery.udp(query, LOOPBACK, port=server.dns_port, timeout=2)
            for _ in range(QUERIES)
        )
    )
    return [rrset[0].to_text() if (rrset := next(iter(r.answer), None)) else "" for r in replies]


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
async def test_two_workers_share_the_ports_and_see_each_others_changes(server: Server) -> None:
    fqdn, secret = server.new_host("multi")
    server.stop()
    server.env["HOMING_FOLLOW_INTERVAL"] = "60"
    server.args = ("--workers", "2")
    server.start()
    pids = worker_pids(server)
    assert len(pids) == 2, pids
    lags: list[float] = []
    for round_ in range(ROUNDS):
        address = f"192.0.2.{100 + round_}"
        # A new connection per request: the kernel may hand it to either worker.
        async with httpx.AsyncClient(auth=(fqdn, secret), timeout=10) as client:
            response = await client.get(
                f"{server.http_url}/nic/update", params={"hostname": fqdn, "myip": address}
            )
        assert response.text.strip() == f"good {address}"
        acknowledged = time.monotonic()
        while True:  # the other worker's answer has no event to await: poll, bounded
            seen = await answers(server, fqdn)
            if set(seen) == {address}:
                lags.append(time.monotonic() - acknowledged)
                break
            assert time.monotonic() - acknowledged < DEADLINE, f"stale answers {seen}"
    print(f"worker catch-up after good: max {max(lags) * 1000:.1f} ms")
    assert server.stop() == 0
    for pid in pids:
        assert not (Path("/proc") / str(pid)).exists(), f"worker {pid} outlived the parent"


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
async def test_every_workers_query_count_adds_up(server: Server) -> None:
    fqdn, _ = server.new_host("counted")
    server.stop()
    server.args = ("--workers", "2")
    server.start()  # answers nothing before our queries: both counts start at zero
    run = server.data_dir / "run"
    sent = 0
    for _ in range(3):
        assert await answers(server, fqdn) == [""] * QUERIES  # no address yet: NODATA
        sent += QUERIES
    deadline = time.monotonic() + DEADLINE
    # Each worker writes its count about once a second: poll the files, bounded.
    while (total := queries_answered(run) - query_count()) != sent:
        assert total < sent, f"{total} answers counted for {sent} queries"
        assert time.monotonic() < deadline, f"{total} answers counted for {sent} queries"
        await asyncio.sleep(0.2)
    assert len(list(run.glob("queries-*"))) == 2
    assert server.stop() == 0
    assert list(run.glob("queries-*")) == []  # each worker removed its file on the way out
