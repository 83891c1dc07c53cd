"""Update benchmark: C concurrent clients, each updating its own host via /nic/update.

    python bench/updates.py --clients 100 --seconds 10 [--postgres]

Reports durable acknowledged updates per second and latency percentiles. The server
runs on core 0, this load generator on core 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import cli, free_port, homing_env, record, start_server  # noqa: E402

PASSWORD = "correct horse battery"


async def client_loop(
    base: str, host: str, secret: str, index: int, deadline: float, max_requests: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, auth=(host, secret), timeout=10) as client:
        for n in range(max_requests):
            if time.monotonic() > deadline:
                break
            # A different address every time: each request is a real change.
            address = f"10.{index // 250}.{index % 250}.{n % 250 + 1}"
            if n % 250 == 249:
                address = f"10.{100 + index // 250}.{index % 250}.{n % 250}"
            started = time.perf_counter()
            response = await client.get("/nic/update", params={"hostname": host, "myip": address})
            elapsed = time.perf_counter() - started
            if response.text.startswith("good"):
                latencies.append(elapsed)
            else:
                errors += 1
    return latencies, errors


async def run_load(base: str, hosts: list[tuple[str, str]], seconds: float) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            client_loop(base, host, secret, i, deadline, max_requests=100_000)
            for i, (host, secret) in enumerate(hosts)
        )
    )
    wall = time.perf_counter() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 100 else [0.0] * 99
    return {
        "acknowledged": len(latencies),
        "errors": errors,
        "seconds": round(wall, 2),
        "updates_per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--postgres", action="store_true", help="use PostgreSQL on 127.0.0.1")
    args = parser.parse_args()
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the load generator on core 1, the server on core 0
    with tempfile.TemporaryDirectory() as tmp:
        extra: dict[str, str] = {}
        if args.postgres:
            extra = {
                "HOMING_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
                "HOMING_DATABASE_SCHEMA": f"homing_bench_{secrets.token_hex(4)}",
            }
        env = homing_env(
            Path(tmp), free_port(), free_port(), HOMING_ABUSE_NOCHG_LIMIT="1000000", **extra
        )
        cli(env, "zone", "add", "bench.example.net")
        cli(
            env,
            "user",
            "add",
            "bench",
            "--email",
            "bench@example.org",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        # One bulk import rather than one `homing host add` per client (seconds, not minutes).
        csv_path, secrets_path = Path(tmp) / "hosts.csv", Path(tmp) / "secrets.csv"
        csv_path.write_text(
            "name,ipv4\n"
            + "".join(
                f"h{i}.bench.example.net,10.255.{i // 250}.{i % 250 + 1}\n"
                for i in range(args.clients)
            )
        )
        cli(
            env,
            "host",
            "import",
            str(csv_path),
            "--owner",
            "bench",
            "--secrets-out",
            str(secrets_path),
        )
        hosts: list[tuple[str, str]] = []
        for line in secrets_path.read_text().splitlines()[1:]:
            name, secret = line.split(",", 1)
            hosts.append((name, secret))
        hosts.sort(key=lambda pair: int(pair[0].split(".")[0][1:]))
        server = start_server(env)
        try:
            figures = asyncio.run(
                run_load(f"http://127.0.0.1:{server.http_port}", hosts, args.seconds)
            )
        finally:
            server.stop()
    record(
        "updates",
        {
            "backend": "postgresql" if args.postgres else "sqlite",
            "clients": args.clients,
            **figures,
        },
    )


if __name__ == "__main__":
    main()
