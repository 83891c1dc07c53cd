"""Cross-node freshness: from `good` on one node to the new answer on another node's DNS.

    python bench/cross_node.py --rounds 200 [--postgres URL] [--background 60]

Two `homing serve` nodes on one PostgreSQL (a schema of the run's own, dropped after),
each pinned to a core, their poll set to a minute so that what is measured is the
LISTEN/NOTIFY path. One host is updated `--rounds` times through node A's /nic/update;
after each `good` node B's DNS is asked every `--poll` seconds until it answers the new
address. Side by side, the same on SQLite between the two processes of
`serve --workers 2` (woken by a datagram on a Unix socket): a question from a fresh
socket reaches either worker, so that figure mixes the worker that committed (0 ms)
with the other one. With `--background N`, N more hosts of the zone are updated in a
closed loop meanwhile (wrk on core 1, half of the connections on each node or worker):
both nodes write to the zone while one follows the other. Results go to
bench/results/cross_node.jsonl.
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
import updates  # noqa: E402
from harness import (  # noqa: E402
    cli,
    free_port,
    homing_env,
    load_average,
    record,
    start_server,
    stop_process,
)
from updates import Host, add_hosts  # noqa: E402

ZONE = "bench.example.net"  # add_hosts' zone
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


def background_load(ports: list[int], hosts: list[Host], work: Path) -> list[subprocess.Popen[str]]:
    """wrk updating `hosts` in a closed loop, their share on each port, until stopped."""
    return [
        updates.background_load(port, hosts[i :: len(ports)], 3600, work, f"wrk-hosts-{i}.txt")
        for i, port in enumerate(ports)
        if hosts[i :: len(ports)]
    ]


def measure(
    writer_http: int, reader_dns: int, args: argparse.Namespace, hosts: list[Host],
    load_ports: list[int], work: Path, rates: list[float],
) -> list[float]:  # fmt: skip
    """Seconds from each acknowledged update of hosts[0] on the writer until the reader
    answers it; the other hosts under load on `load_ports` meanwhile. The zone's changes
    per second over the run go to `rates`."""
    target = hosts[0]
    load = background_load(load_ports, hosts[1:], work)
    samples = []
    first_serial, started_all = soa_serial(reader_dns), time.perf_counter()
    try:
        with httpx.Client(auth=(target.name, target.secret), timeout=10) as http:
            for i in range(args.rounds):
                address = f"192.0.2.{i % 250 + 1}"
                reply = http.get(
                    f"http://127.0.0.1:{writer_http}/nic/update",
                    params={"hostname": target.name, "myip": address},
                )
                started = time.perf_counter()
                if reply.text.split()[0] not in ("good", "nochg"):
                    raise RuntimeError(reply.text)
                while answers(reader_dns, target.name) != [address]:
                    if time.perf_counter() - started > args.timeout:
                        raise RuntimeError(f"{address} not answered within {args.timeout}s")
                    time.sleep(args.poll)  # polling: a node says nothing when it applies a change
                samples.append(time.perf_counter() - started)
        changes = soa_serial(reader_dns) - first_serial  # the zone's serial: one a change
        rates.append(changes / (time.perf_counter() - started_all))
    finally:
        for process in load:
            stop_process(process)
    return samples


def soa_serial(port: int) -> int:
    query = dns.message.make_query(ZONE, "SOA")
    reply = dns.query.udp(query, "127.0.0.1", timeout=2, port=port)
    return int(reply.answer[0][0].serial)


def setup(env: dict[str, str], work: Path, background: int) -> list[Host]:
    work.mkdir(parents=True, exist_ok=True)
    cli(env, "zone", "add", ZONE, "--ns", f"ns1.{ZONE}")
    return add_hosts(env, work, 1 + background)


def postgres_nodes(args: argparse.Namespace, work: Path, rates: list[float]) -> list[float]:
    schema = f"bench_nodes_{secrets.token_hex(4)}"
    servers = []
    envs = []
    try:
        for n in range(2):
            env = homing_env(
                work / f"node{n}", free_port(), free_port(),
                HOMING_DATABASE_URL=args.postgres, HOMING_DATABASE_SCHEMA=schema,
                HOMING_FOLLOW_INTERVAL="60", HOMING_ALLOW_LOCAL_ADDRESSES="true",
                HOMING_ABUSE_NOCHG_LIMIT="1000000",
            )  # fmt: skip
            envs.append(env)
        hosts = setup(envs[0], work, args.background)
        for env in envs:
            servers.append(start_server(env, cpu=len(servers)))
        ports = [server.http_port for server in servers]
        return measure(ports[0], servers[1].dns_port, args, hosts, ports, work, rates)
    finally:
        for server in servers:
            server.stop()
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-q", "-c",
             f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'],
            check=False, capture_output=True, timeout=60,
        )  # fmt: skip


def sqlite_workers(args: argparse.Namespace, work: Path, rates: list[float]) -> list[float]:
    env = homing_env(
        work / "sqlite", free_port(), free_port(),
        HOMING_FOLLOW_INTERVAL="60", HOMING_ALLOW_LOCAL_ADDRESSES="true",
        HOMING_ABUSE_NOCHG_LIMIT="1000000",
    )  # fmt: skip
    hosts = setup(env, work, args.background)
    server = start_server(env, cpu=None, extra_args=["--workers", "2"])
    try:
        port = server.http_port
        return measure(port, server.dns_port, args, hosts, [port, port], work, rates)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--poll", type=float, default=0.0005)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--postgres", default=POSTGRES, help="SQLAlchemy URL of the store")
    parser.add_argument("--background", type=int, default=0, help="hosts updated meanwhile")
    args = parser.parse_args()
    if not (1 <= args.rounds <= 10_000 and 0 <= args.background <= 2000):
        parser.error("--rounds in 1..10000, --background in 0..2000")
    with tempfile.TemporaryDirectory(prefix="homing-cross-node-") as tmp:
        work = Path(tmp)
        load = load_average()
        rates: list[float] = []
        nodes = postgres_nodes(args, work / "pg", rates)
        workers = sqlite_workers(args, work / "sqlite", rates)
    record(
        "cross_node",
        {
            "load_average": load,
            "poll_ms": args.poll * 1000,
            "background_clients": args.background,
            "postgresql_nodes_changes_per_second": round(rates[0]),
            "sqlite_workers_changes_per_second": round(rates[1]),
            **summary(nodes, "postgresql_nodes"),
            **summary(workers, "sqlite_workers"),
        },
    )


if __name__ == "__main__":
    main()
