"""Cross-node freshness: from `good` on one node to the new answer on another node's DNS.

    python bench/cross_node.py --rounds 200 [--postgres URL]

Two `homing serve` nodes on one PostgreSQL (a schema of the run's own, dropped after),
each pinned to a core, their poll set to a minute so that what is measured is the
LISTEN/NOTIFY path. One host is updated `--rounds` times through node A's /nic/update;
after each `good` node B's DNS is asked every `--poll` seconds until it answers the new
address. Side by side, the same on SQLite between the two processes of
`serve --workers 2` (woken by a datagram on a Unix socket): a question from a fresh
socket reaches either worker, so that figure mixes the worker that committed (0 ms)
with the other one. Results go to bench/results/cross_node.jsonl.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    cli,
    free_port,
    homing_env,
    load_average,
    record,
    start_server,
)

ZONE = "nodes.example.net"
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def summary(values: list[float], prefix: str) -> dict[str, float]:
    if not values:
        return {f"{prefix}_samples": 0}
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        f"{prefix}_samples": len(ordered),
        f"{prefix}_p50_ms": round(q[49] * 1000, 2),
        f"{prefix}_p90_ms": round(q[89] * 1000, 2),
        f"{prefix}_p99_ms": round(q[98] * 1000, 2),
        f"{prefix}_max_ms": round(ordered[-1] * 1000, 2),
    }


def answers(port: int, name: str) -> list[str]:
    query = dns.message.make_query(name, "A")
    query.flags = 0
    try:
        reply = dns.query.udp(query, "127.0.0.1", timeout=0.5, port=port)
    except (dns.exception.Timeout, OSError):
        return []
    if reply.rcode() != dns.rcode.NOERROR:
        return []
    return sorted(r.to_text() for rrset in reply.answer for r in rrset)


def measure(writer_http: int, reader_dns: int, rounds: int, poll: float, timeout: float,
            env: dict[str, str]) -> list[float]:  # fmt: skip
    """Seconds from each acknowledged update on the writer until the reader answers it."""
    cli(env, "zone", "add", ZONE, "--ns", f"ns1.{ZONE}")
    cli(env, "user", "add", "bench", "--email", "bench@example.net", "--password-stdin",
        stdin="correct horse battery staple\n")  # fmt: skip
    fqdn = f"fresh.{ZONE}"
    secret = cli(env, "host", "add", fqdn, "--owner", "bench").strip().splitlines()[-1]
    samples = []
    with httpx.Client(auth=(fqdn, secret), timeout=10) as http:
        for i in range(rounds):
            address = f"192.0.2.{i % 250 + 1}"
            reply = http.get(
                f"http://127.0.0.1:{writer_http}/nic/update",
                params={"hostname": fqdn, "myip": address},
            )
            started = time.perf_counter()
            if reply.text.split()[0] not in ("good", "nochg"):
                raise RuntimeError(reply.text)
            while answers(reader_dns, fqdn) != [address]:
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"{address} not answered within {timeout}s")
                time.sleep(poll)  # polling: a node says nothing when it applies a change
            samples.append(time.perf_counter() - started)
    return samples


def postgres_nodes(url: str, rounds: int, poll: float, timeout: float, work: Path) -> list[float]:
    schema = f"bench_nodes_{secrets.token_hex(4)}"
    servers = []
    envs = []
    try:
        for n in range(2):
            env = homing_env(
                work / f"node{n}", free_port(), free_port(),
                HOMING_DATABASE_URL=url, HOMING_DATABASE_SCHEMA=schema,
                HOMING_FOLLOW_INTERVAL="60", HOMING_ALLOW_LOCAL_ADDRESSES="true",
            )  # fmt: skip
            envs.append(env)
            servers.append(start_server(env, cpu=n))
        return measure(servers[0].http_port, servers[1].dns_port, rounds, poll, timeout, envs[0])
    finally:
        for server in servers:
            server.stop()
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-c",
             f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'],
            check=False, capture_output=True, timeout=60,
        )  # fmt: skip


def sqlite_workers(rounds: int, poll: float, timeout: float, work: Path) -> list[float]:
    env = homing_env(
        work / "sqlite", free_port(), free_port(),
        HOMING_FOLLOW_INTERVAL="60", HOMING_ALLOW_LOCAL_ADDRESSES="true",
    )  # fmt: skip
    server = start_server(env, cpu=None, extra_args=["--workers", "2"])
    try:
        return measure(server.http_port, server.dns_port, rounds, poll, timeout, env)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--poll", type=float, default=0.0005)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--postgres", default=POSTGRES, help="SQLAlchemy URL of the store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="homing-cross-node-") as tmp:
        work = Path(tmp)
        load = load_average()
        nodes = postgres_nodes(args.postgres, args.rounds, args.poll, args.timeout, work)
        workers = sqlite_workers(args.rounds, args.poll, args.timeout, work)
    record(
        "cross_node",
        {
            "load_average": load,
            "poll_ms": args.poll * 1000,
            **summary(nodes, "postgresql_nodes"),
            **summary(workers, "sqlite_workers"),
        },
    )


if __name__ == "__main__":
    main()
