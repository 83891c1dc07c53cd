"""Several `homing serve` nodes on one PostgreSQL, with an NSD secondary fed by them.

Each node follows the journal woken by PostgreSQL's notifications; the poll is set to
a minute here, so an answer that follows within the test's deadlines came by LISTEN.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import dns.asyncquery
import dns.message
import dns.rcode
import httpx
import pytest

from homing.domain.records import RRsetValue
from tests import peers
from tests.e2e.conftest import (
    LOOPBACK,
    POSTGRES_URL,
    Server,
    _drop_schema,
    _free_tcp_port,
    free_dns_port,
)
from tests.e2e.secondaries import Nsd

ZONE = "nodes.example.org"
NODES = 3
CLIENTS = 6
HOSTS = 24
ROUNDS = 12  # updates per host
KILL_AFTER = 0.4  # share of all updates acknowledged before node 2 is killed
FOLLOW_DEADLINE = 10.0  # far past any wake-up; far short of the one-minute poll
SYNC_TIMEOUT = 30.0
POLL = 0.001
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "cross_node.jsonl"

pytestmark = pytest.mark.timeout(300)  # three servers, NSD and a few hundred updates


@pytest.fixture
def nodes(tmp_path: Path, dig_path: str) -> Iterator[list[Server]]:
    """Three started nodes on one PostgreSQL schema; stopped by PID, schema dropped."""
    schema = f"homing_nodes_{os.getpid()}_{secrets.token_hex(4)}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("HOMING_")}
    base.update(
        HOMING_DATABASE_URL=POSTGRES_URL,
        HOMING_DATABASE_SCHEMA=schema,
        HOMING_ALLOW_LOCAL_ADDRESSES="true",
        HOMING_RRL_RATE="0",
        HOMING_FOLLOW_INTERVAL="60",
        PYTHONUNBUFFERED="1",
    )
    made: list[Server] = []
    try:
        for n in range(NODES):
            data_dir = tmp_path / f"node{n}"
            log_dir = tmp_path / f"logs{n}"
            data_dir.mkdir()
            log_dir.mkdir()
            dns_port, http_port = free_dns_port(), _free_tcp_port()
            env = dict(
                base,
                HOMING_DATA_DIR=str(data_dir),
                HOMING_DNS_LISTEN=f"{LOOPBACK}:{dns_port}",
                HOMING_HTTP_LISTEN=f"{LOOPBACK}:{http_port}",
            )
            node = Server(data_dir, dns_port, http_port, log_dir, dig_path, env=env)
            made.append(node)
            node.start()
        yield made
    except Exception:
        for node in made:
            print(node.stderr_text()[-3000:])
        raise
    finally:
        for node in made:
            node.stop()
        try:
            _drop_schema(schema)
        except Exception:
            peers.missing("psql")


async def answer(node: Server, name: str) -> list[str]:
    query = dns.message.make_query(name, "A")
    reply = await dns.asyncquery.udp(query, LOOPBACK, port=node.dns_port, timeout=2)
    if reply.rcode() != dns.rcode.Rcode.NOERROR:
        return []
    return sorted(r.to_text() for rrset in reply.answer for r in rrset)


async def until_answers(node: Server, name: str, address: str, since: float) -> float:
    """Seconds from `since` until `node` answers `address` (polled each ms: a node says
    nothing when it applies a change), bounded by FOLLOW_DEADLINE."""
    while await answer(node, name) != [address]:
        if time.monotonic() - since > FOLLOW_DEADLINE:
            raise AssertionError(f"{node.http_url}: {name} not {address} in {FOLLOW_DEADLINE}s")
        await asyncio.sleep(POLL)  # polling interval: no event exists (see docstring)
    return time.monotonic() - since


async def journal_values(schema: str) -> set[tuple[str, str]]:
    conn = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch(f"SELECT name, new FROM \"{schema}\".journal WHERE rtype = 'A'")
    finally:
        await conn.close()
    return {(r["name"], v) for r in rows for v in RRsetValue.decode_rdatas(r["new"])}


async def test_three_nodes_a_kill_and_nsd_lose_no_acknowledged_update(
    nodes: list[Server], tmp_path: Path
) -> None:
    first = nodes[0]
    nsd = Nsd(directory=tmp_path / "nsd")
    nsd.directory.mkdir()
    nsd.version()
    notify = [arg for node in nodes for arg in ("--notify", f"{LOOPBACK}:{nsd.port}")]
    first.cli(
        "zone", "add", ZONE, "--ns", "ns1.example.org", *notify,
        "--allow-transfer", f"{LOOPBACK}/32",
    )  # fmt: skip
    first._zones.add(ZONE)  # made here, with its secondary
    hosts = first.new_hosts([f"h{i}" for i in range(HOSTS)], zone=ZONE)
    names = [fqdn for fqdn, _ in hosts]
    for node in nodes:  # the new zone reached every node (by notification)
        await until_answers_soa(node)
    nsd.configure(ZONE, first.dns_port)
    # NSD may transfer from any node: the others follow the first in its list.
    conf = nsd.directory / "nsd.conf"
    extra = "".join(f"    request-xfr: {LOOPBACK}@{n.dns_port} NOKEY\n" for n in nodes[1:])
    conf.write_text(conf.read_text() + extra)
    nsd.start()
    try:
        await run_load(nodes, nsd, hosts, names)
    finally:
        nsd.stop()


async def until_answers_soa(node: Server) -> None:
    deadline = time.monotonic() + FOLLOW_DEADLINE
    while True:
        reply = await dns.asyncquery.udp(
            dns.message.make_query(ZONE, "SOA"), LOOPBACK, port=node.dns_port, timeout=2
        )
        if reply.rcode() == dns.rcode.Rcode.NOERROR and reply.answer:
            return
        assert time.monotonic() < deadline, f"{node.http_url} never loaded {ZONE}"
        await asyncio.sleep(POLL)  # polling interval: no event exists


async def run_load(
    nodes: list[Server], nsd: Nsd, hosts: list[tuple[str, str]], names: list[str]
) -> None:
    victim = nodes[2]
    total = HOSTS * ROUNDS
    acknowledged: list[tuple[str, str]] = []  # (fqdn, address) answered good or nochg
    last: dict[str, str] = {}
    killed = asyncio.Event()

    async def client(index: int) -> None:
        mine = hosts[index::CLIENTS]
        turn = index
        async with httpx.AsyncClient(timeout=10) as http:
            for round_ in range(ROUNDS):
                address = f"192.0.2.{round_ + 1}"
                for fqdn, secret in mine:
                    # A request that got no answer is sent again to the next node: it may
                    # have been committed, and the answer is then nochg.
                    while True:
                        node = nodes[turn % NODES]
                        turn += 1
                        try:
                            response = await http.get(
                                f"{node.http_url}/nic/update",
                                params={"hostname": fqdn, "myip": address},
                                auth=(fqdn, secret),
                            )
                        except httpx.TransportError:
                            continue
                        word = response.text.split()[0]
                        assert word in ("good", "nochg"), response.text
                        acknowledged.append((fqdn, address))
                        last[fqdn] = address
                        break
                    if not killed.is_set() and len(acknowledged) >= KILL_AFTER * total:
                        killed.set()
                        victim.kill()

    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    assert killed.is_set() and not victim.running
    assert len(last) == HOSTS

    # Every acknowledged update is in the store's journal; the last of each is answered
    # by the surviving nodes and by NSD.
    schema = nodes[0].env["HOMING_DATABASE_SCHEMA"]
    stored = await journal_values(schema)
    missing = [pair for pair in acknowledged if pair not in stored]
    assert not missing, missing[:10]
    for node in nodes[:2]:
        for fqdn in names:
            await until_answers(node, fqdn, last[fqdn], time.monotonic())
    deadline = time.monotonic() + SYNC_TIMEOUT
    for fqdn in names:
        nsd.wait_for(f"{fqdn} at {last[fqdn]}", lambda f=fqdn: nsd.addresses(f) == [last[f]],
                     max(1.0, deadline - time.monotonic()))  # fmt: skip

    # The killed node comes back: it answers what it missed, then follows new changes.
    victim.start()
    for fqdn in names:
        assert await answer(victim, fqdn) == [last[fqdn]]
    fqdn, secret = hosts[0]
    async with httpx.AsyncClient(auth=(fqdn, secret), timeout=10) as http:
        response = await http.get(
            f"{nodes[0].http_url}/nic/update", params={"hostname": fqdn, "myip": "192.0.2.200"}
        )
    assert response.text.strip() == "good 192.0.2.200"
    await until_answers(victim, fqdn, "192.0.2.200", time.monotonic())


async def test_cross_node_freshness_is_measured(nodes: list[Server]) -> None:
    """An update acknowledged by node 0 until node 1's DNS answers it: the figures are
    printed and appended to bench/results/cross_node.jsonl (no timing assertion)."""
    writer, reader = nodes[0], nodes[1]
    fqdn, secret = writer.new_host("fresh", zone=ZONE)
    await until_answers_soa(reader)
    samples: list[float] = []
    async with httpx.AsyncClient(auth=(fqdn, secret), timeout=10) as http:
        for i in range(60):
            address = f"192.0.2.{i % 250 + 1}"
            response = await http.get(
                f"{writer.http_url}/nic/update", params={"hostname": fqdn, "myip": address}
            )
            assert response.text.split()[0] in ("good", "nochg"), response.text
            samples.append(await until_answers(reader, fqdn, address, time.monotonic()))
    samples.sort()
    figures = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "pytest tests/e2e/test_nodes.py",
        "samples": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1] * 1000, 2),
        "max_ms": round(samples[-1] * 1000, 2),
    }
    print("cross-node freshness", json.dumps(figures))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(figures) + "\n")
    assert len(samples) == 60
