"""Durable updates per second with 1, 2, 3 `homing serve` nodes writing to one PostgreSQL.

    python bench/updates_nodes.py --nodes 1,2,3 --clients 100 --seconds 10

For each node count: a fresh PostgreSQL schema, `--clients` hosts, N nodes on it, and
N wrk processes started together, node i updating its own share of the hosts (a new
address every time, as bench/updates.py) with its share of the connections. The rate is
every node's acknowledged updates over the longest wrk's wall time; the percentiles
come from the wrk processes' latency distributions merged (each wrk's 1,000 quantiles
weighted by its answers: to within 0.1% of rank, not an average of percentiles). Side
by side, in the same run, the same clients against one node on
SQLite (`--no-sqlite` leaves it out). Nodes run unpinned unless `--pin` (node i on
core i modulo the cores); wrk runs on core 1 as in bench/updates.py. Results are
appended to bench/results/updates_nodes.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    cli,
    cpu_seconds,
    free_port,
    homing_env,
    load_average,
    record,
    start_server,
)
from updates import LOAD_CPU, LUA, POSTGRES_URL, Host, add_hosts, drop_schema  # noqa: E402

MAX_NODES = 8
MAX_CLIENTS = 2000


def node_env(work: Path, index: int, extra: dict[str, str]) -> dict[str, str]:
    return homing_env(
        work / f"node{index}", free_port(), free_port(), HOMING_ABUSE_NOCHG_LIMIT="1000000",
        **extra,
    )  # fmt: skip


def drive(
    ports: list[int], hosts: list[Host], clients: int, seconds: float, work: Path
) -> dict[str, object]:
    """One wrk per node, all at once, each on its share of hosts and connections."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    runs = []
    for i, port in enumerate(ports):
        share = hosts[i :: len(ports)]
        connections = max(1, len(range(i, clients, len(ports))))
        hosts_file = work / f"wrk-hosts-{i}.txt"
        hosts_file.write_text("".join(f"{h.name},{h.auth}\n" for h in share))
        histogram = work / f"wrk-quantiles-{i}.txt"
        argv = [
            "taskset", "-c", str(LOAD_CPU % (os.cpu_count() or 1)), wrk, "-t1",
            f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(LUA),
            f"http://127.0.0.1:{port}", "--", str(hosts_file),
        ]  # fmt: skip
        env = {**os.environ, "WRK_HISTOGRAM": str(histogram)}
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
        runs.append((process, histogram, argv))
    raws = []
    try:
        for process, _, _ in runs:
            out, _ = process.communicate(timeout=seconds + 60)
            line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
            if line is None:
                raise RuntimeError(f"wrk failed: {out[-2000:]}")
            raws.append(json.loads(line.removeprefix("WRKJSON ")))
    finally:
        for process, _, _ in runs:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    latencies: Counter[float] = Counter()  # microseconds: weight (answers it stands for)
    for (_, quantiles, _), raw in zip(runs, raws, strict=True):
        values = [float(v) for v in quantiles.read_text().split()]
        for value in values:
            latencies[value] += raw["requests"] / len(values)
    wall = max(raw["duration_us"] for raw in raws) / 1e6
    acknowledged = sum(raw["requests"] - raw["bad"] for raw in raws)
    return {
        "wrk_commands": [" ".join(argv[3:]) for _, _, argv in runs],
        "acknowledged": acknowledged,
        "errors": sum(raw["bad"] + raw["socket_errors"] for raw in raws),
        "seconds": round(wall, 2),
        "updates_per_second": round(acknowledged / wall, 1),
        "per_node_updates_per_second": [
            round((raw["requests"] - raw["bad"]) / (raw["duration_us"] / 1e6), 1) for raw in raws
        ],
        **merged_percentiles(latencies),
        "max_ms": round(max(raw["max_us"] for raw in raws) / 1000, 2),
    }


def merged_percentiles(latencies: Counter[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9 in ms of a distribution {microseconds: weight}."""
    total = sum(latencies.values())
    if total == 0:
        return {"samples": 0}
    wanted = {"p50_ms": 0.50, "p90_ms": 0.90, "p99_ms": 0.99, "p999_ms": 0.999}
    found: dict[str, float] = {}
    seen = 0
    for microseconds in sorted(latencies):
        seen += latencies[microseconds]
        for key, share in wanted.items():
            if key not in found and seen >= share * total:
                found[key] = round(microseconds / 1000, 2)
    found["samples"] = round(total)
    return found


def follower_passes(port: int) -> int:
    """The node's journal follow passes so far, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "homing_follower_passes":
            return int(family.samples[0].value)
    raise RuntimeError("no homing_follower_passes in /metrics")


def run(
    nodes: int, clients: int, seconds: float, work: Path, url: str | None, pin: bool
) -> dict[str, object]:
    """`nodes` nodes on a fresh PostgreSQL schema (url None: one node on SQLite)."""
    schema = f"homing_nodes_{secrets.token_hex(4)}" if url else ""
    extra = {"HOMING_DATABASE_URL": url, "HOMING_DATABASE_SCHEMA": schema} if url else {}
    envs = [node_env(work, i, extra) for i in range(nodes)]
    servers = []
    try:
        cli(envs[0], "zone", "add", "bench.example.net")
        hosts = add_hosts(envs[0], work, clients)
        cores = os.cpu_count() or 1
        for i, env in enumerate(envs):
            servers.append(start_server(env, cpu=i % cores if pin else None))
        load_before = load_average()
        cpu_before = [cpu_seconds(s.process.pid) for s in servers]
        figures = drive([s.http_port for s in servers], hosts, clients, seconds, work)
        # The nodes' CPU per acknowledged update: what the machine's load distorts least.
        cpu = sum(cpu_seconds(s.process.pid) for s in servers) - sum(cpu_before)
        figures["nodes_cpu_us_per_update"] = round(1e6 * cpu / max(1, figures["acknowledged"]))
        figures["follower_passes"] = [follower_passes(s.http_port) for s in servers]
        return {
            "backend": "postgresql" if url else "sqlite",
            "nodes": nodes,
            "clients": clients,
            "pinned": pin,
            "load_before": load_before,
            "load_after": load_average(),
            **figures,
        }
    finally:
        for server in servers:
            server.stop()
        if schema:
            drop_schema(schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", default="1,2,3", help="node counts to run, in order")
    parser.add_argument("--clients", type=int, default=100, help="connections over all nodes")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--postgres", default=POSTGRES_URL, help="SQLAlchemy URL of the store")
    parser.add_argument("--no-sqlite", action="store_true", help="no SQLite run beside")
    parser.add_argument("--pin", action="store_true", help="node i on core i modulo the cores")
    args = parser.parse_args()
    counts = [int(n) for n in args.nodes.split(",")]
    if not all(1 <= n <= MAX_NODES for n in counts) or not 1 <= args.clients <= MAX_CLIENTS:
        parser.error(f"--nodes each in [1, {MAX_NODES}], --clients in [1, {MAX_CLIENTS}]")
    if not 0 < args.seconds <= 600:
        parser.error("--seconds must be in (0, 600]")
    if args.clients < max(counts):
        parser.error("--clients must be at least the largest node count")
    plan: list[tuple[int, str | None]] = [(n, args.postgres) for n in counts]
    if not args.no_sqlite:
        plan.insert(0, (1, None))
    for nodes, url in plan:
        with tempfile.TemporaryDirectory(prefix="homing-nodes-") as tmp:
            started = time.time()
            result = run(nodes, args.clients, args.seconds, Path(tmp), url, args.pin)
        result["command"] = " ".join(sys.argv)
        result["elapsed_s"] = round(time.time() - started, 1)
        record("updates_nodes", result)
        keys = (
            "backend", "nodes", "updates_per_second", "p50_ms", "p99_ms", "errors",
            "nodes_cpu_us_per_update", "follower_passes",
        )  # fmt: skip
        print(json.dumps({key: result.get(key) for key in keys}), flush=True)


if __name__ == "__main__":
    main()
