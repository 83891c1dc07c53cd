"""Where an update's time goes: the store path of `/nic/update`, in one process, no HTTP.

    python bench/updates_breakdown.py --postgres --clients 100 --seconds 10
    python bench/updates_breakdown.py --clients 100 --seconds 10          # SQLite
    python bench/updates_breakdown.py --postgres --rate 3000 --seconds 10  # open loop

`--clients` asyncio tasks each call `service.updates.update()` for a host of their own,
a new address every time, the next as soon as the last is acknowledged (closed loop);
with `--rate`, calls are scheduled at that rate instead, each counted from its scheduled
time (open loop). What the store path costs, per acknowledged update:

- homing's CPU: this process's user+sys time (every thread: SQLite's writer too);
- PostgreSQL's CPU: the backends serving this process's connections (their client port
  in the process title), from /proc/PID/stat before and after;
- per batch (the writer's DEBUG line, `homing.store.db`): its updates, the time of its
  statements (connection check-out and BEGIN included) and of its COMMIT (the WAL flush);
- round trips to PostgreSQL per batch: asyncpg's calls counted (each one round trip:
  a BEGIN, unless the COMMIT before began the transaction, each statement, COMMIT);
- the time an update waits before its batch starts (its latency less its batch's
  statements and commit), and the collector's pauses (gc.callbacks).

CPU and round trips per update hold on a loaded machine; the rates do not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from updates import (  # noqa: E402
    PostgresCpu,
    add_hosts,
    address,
    bench_env,
    cli,
    drop_schema,
    percentiles,
)


class Batches(logging.Handler):
    """The writer's per-batch DEBUG lines: (updates, statements ms, commit ms)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[int, float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.endswith("statements %.1f ms, commit %.1f ms") and record.args:
            _store, count, statements, commit = record.args  # type: ignore[misc]
            self.seen.append((int(count), float(statements), float(commit)))


def count_round_trips() -> Counter[str]:
    """Count asyncpg's calls that each make one round trip (patched on the classes)."""
    import asyncpg
    from asyncpg.prepared_stmt import PreparedStatement

    counts: Counter[str] = Counter()

    def counted(cls: Any, name: str) -> None:
        original = getattr(cls, name)

        async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[f"{cls.__name__}.{name}"] += 1
            return await original(self, *args, **kwargs)

        setattr(cls, name, call)

    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval", "prepare"):
        counted(asyncpg.Connection, name)
    for name in ("fetch", "fetchrow", "executemany"):
        counted(PreparedStatement, name)
    return counts


class GcPauses:
    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._start)


async def run(env: dict[str, str], hosts: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    from homing.config import Settings
    from homing.domain.addresses import AddressSet, parse_address
    from homing.domain.outcomes import Outcome
    from homing.service.context import Homing
    from homing.service.updates import UpdatePolicy, UpdateRequest, update

    settings = Settings(
        data_dir=Path(env["HOMING_DATA_DIR"]),
        database_url=env.get("HOMING_DATABASE_URL"),
        database_schema=env.get("HOMING_DATABASE_SCHEMA"),
    )
    homing = Homing.from_settings(settings)
    db = homing.db
    policy = UpdatePolicy(abuse_nochg_limit=1_000_000)
    latencies: list[float] = []
    failed = 0

    async def one(index: int, round_: int, at: float) -> None:
        nonlocal failed
        host = hosts[index]
        request = UpdateRequest(
            host.name,
            host.secret,
            [host.name],
            AddressSet.of(parse_address(address(index, round_))),
            "dyndns2",
            "127.0.0.1",
        )
        results = await update(db, request, policy)
        if results[0].outcome is Outcome.GOOD:
            latencies.append(time.perf_counter() - at)
        else:
            failed += 1

    # Warm-up: connections opened, statements prepared and compiled.
    await asyncio.gather(*(one(i, 0, time.perf_counter()) for i in range(len(hosts))))
    latencies.clear()
    # As `homing serve` does once its zones are loaded: what exists now is never collected.
    gc.collect()
    gc.freeze()
    batches = Batches()
    writer_log = logging.getLogger("homing.store.db")
    writer_log.addHandler(batches)
    writer_log.setLevel(logging.DEBUG)
    postgres = PostgresCpu(os.getpid(), poll=False) if args.postgres else None
    trips = count_round_trips() if args.postgres else Counter()
    pauses = GcPauses()
    cpu = time.process_time()
    start = time.perf_counter()
    end = start + args.seconds
    if args.rate:
        pending: set[asyncio.Task[None]] = set()
        for n in range(int(args.rate * args.seconds)):
            at = start + n / args.rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(n % len(hosts), 1 + n // len(hosts), at))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=30)
    else:

        async def client(index: int) -> None:
            round_ = 1
            while time.perf_counter() < end:
                await one(index, round_, time.perf_counter())
                round_ += 1

        await asyncio.gather(*(client(i) for i in range(len(hosts))))
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    gc.callbacks.remove(pauses._callback)
    writer_log.removeHandler(batches)
    figures: dict[str, Any] = {}
    if postgres is not None:
        figures.update(postgres.stop())
    await db.close()
    done = len(latencies)
    sizes = [count for count, _, _ in batches.seen]
    jobs = sum(sizes)
    figures.update(
        {
            "backend": "postgresql" if args.postgres else "sqlite",
            "mode": f"open {args.rate:g}/s" if args.rate else f"closed {len(hosts)} clients",
            "acknowledged": done,
            "failed": failed,
            "updates_per_second": round(done / wall, 1),
            "homing_cpu_us_per_update": round(1e6 * cpu / max(1, done)),
            "batches": len(sizes),
            "batch_mean": round(jobs / max(1, len(sizes)), 1),
            "batch_p50": statistics.median(sizes) if sizes else None,
            "batch_max": max(sizes, default=None),
            # Per update, as its batch spent them (each update bears its whole batch's time).
            "statements_ms_per_update": round(
                sum(n * s for n, s, _ in batches.seen) / max(1, jobs), 2
            ),
            "commit_ms_per_update": round(sum(n * c for n, _, c in batches.seen) / max(1, jobs), 2),
            "mean_latency_ms": round(1e3 * statistics.fmean(latencies), 2) if latencies else None,
            "gc_pauses": len(pauses.pauses),
            "gc_pause_ms_total": round(1e3 * sum(pauses.pauses), 1),
            "gc_pause_ms_max": round(1e3 * max(pauses.pauses, default=0), 2),
            **percentiles(latencies),
        }
    )
    if figures["mean_latency_ms"] is not None:
        figures["queued_ms_per_update"] = round(
            figures["mean_latency_ms"]
            - figures["statements_ms_per_update"]
            - figures["commit_ms_per_update"],
            2,
        )
    if postgres is not None:
        figures["postgres_backend_cpu_us_per_update"] = round(
            1e6 * figures["postgres_backend_cpu_s"] / max(1, done)
        )
        figures["round_trips_per_batch"] = round(sum(trips.values()) / max(1, len(sizes)), 2)
        figures["round_trips"] = dict(trips)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="hosts, one task each")
    parser.add_argument("--rate", type=float, help="open loop: updates per second scheduled")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL on 127.0.0.1")
    args = parser.parse_args()
    if not (0 < args.seconds <= 600 and 1 <= args.clients <= 10_000):
        parser.error("--seconds in (0, 600], --clients in [1, 10000]")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env, schema = bench_env(tmp, args.postgres)
        try:
            cli(env, "zone", "add", "bench.example.net")
            hosts = add_hosts(env, tmp, args.clients)
            figures = asyncio.run(run(env, hosts, args))
        finally:
            if schema:
                drop_schema(schema)
    print(json.dumps({"command": " ".join(sys.argv), **figures}, indent=1))


if __name__ == "__main__":
    main()
