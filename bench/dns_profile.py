"""Where homing's DNS time goes, without sockets: the Responder over the benchmark mix.

    python bench/dns_profile.py [--hosts 100000] [--queries 300000]

Loads the N-host zone the way `homing serve` does (store, then one follower sync) and
feeds the dnsperf query mix straight to `Responder.answer`, one wire at a time, timing:
cache hits alone, the mix with the default answer cache, the mix with a cache that holds
every answer, and each of those again after `gc.freeze()`. A gc callback records every
collection's pause, since the full (generation 2) collections walk every object of the
zone index. Nothing in src/ is changed: the variants only pass other arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zonegen  # noqa: E402
from harness import cli, dns_query, free_port, homing_env, homing_version, record  # noqa: E402


class GcPauses:
    """Collect (generation, seconds) for every collection while installed."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((int(info["generation"]), time.perf_counter() - self._started))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def summary(self) -> dict[str, object]:
        full = [p for g, p in self.pauses if g == 2]
        return {
            "collections": len(self.pauses),
            "gc_seconds": round(sum(p for _, p in self.pauses), 3),
            "gen2_collections": len(full),
            "gen2_max_ms": round(max(full) * 1000, 1) if full else 0.0,
        }


async def load_index(env: dict[str, str]) -> Any:
    os.environ.update(env)
    from homing.config import load
    from homing.dns.index import ZoneIndex
    from homing.service.context import Homing
    from homing.service.journal import Follower

    homing = Homing.from_settings(load())
    try:
        await homing.db.migrate()
        index = ZoneIndex()
        await Follower(homing.db, index, 3600).sync()
        return index
    finally:
        await homing.db.close()


def wires(path: Path, limit: int) -> list[bytes]:
    """The query file as wire messages (no EDNS, as dnsperf sends them), random IDs."""
    rng = random.Random(7)
    types = {"A": 1, "AAAA": 28}
    out = []
    for line in path.read_text().splitlines()[:limit]:
        name, qtype = line.split()
        out.append(dns_query(name, types[qtype], rng.randrange(65536)))
    return out


def run(index: Any, queries: list[bytes], cache_size: int | None) -> dict[str, object]:
    """Answer every query once; per-query time, misses (prepared answers) and GC pauses."""
    from homing.dns.answer import DEFAULT_CACHE_SIZE, Responder

    responder = Responder(index, cache_size=cache_size or DEFAULT_CACHE_SIZE)
    prepare = responder._prepare
    misses = 0

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal misses
        misses += 1
        return prepare(*args, **kwargs)

    responder._prepare = counting  # type: ignore[method-assign]
    answer = responder.answer
    for wire in queries:  # a first pass fills the cache as far as it goes
        answer(wire, tcp=False)
    first_misses, misses = misses, 0
    with GcPauses() as pauses:
        started = time.perf_counter()
        for wire in queries:
            answer(wire, tcp=False)
        elapsed = time.perf_counter() - started
    return {
        "cache_size": cache_size or DEFAULT_CACHE_SIZE,
        "queries": len(queries),
        "first_pass_miss_rate": round(first_misses / len(queries), 3),
        "miss_rate": round(misses / len(queries), 3),
        "us_per_query": round(elapsed / len(queries) * 1e6, 2),
        "queries_per_second_cpu": round(len(queries) / elapsed),
        **pauses.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="homing-bench-dnsprof-") as tmp:
        work = Path(tmp)
        env = homing_env(work, free_port(), free_port())
        zone = zonegen.write_zone(work / "zone.db", args.hosts)
        queries_path = work / "queries.txt"
        zonegen.write_queries(queries_path, args.hosts, args.queries)
        cli(env, "zone", "import", zonegen.ZONE, str(zone))
        index = asyncio.run(load_index(env))
        queries = wires(queries_path, args.queries)
    gc.collect()
    tracked = len(gc.get_objects())
    started = time.perf_counter()
    gc.collect()
    full_collect = time.perf_counter() - started
    hot = [queries[i % 1000] for i in range(len(queries))]  # 1000 distinct: hits only
    results: dict[str, object] = {
        "hosts": args.hosts,
        "gc_tracked_objects": tracked,
        "full_gc_ms": round(full_collect * 1000, 1),
    }
    results["hits_only"] = run(index, hot, None)
    results["mix_default_cache"] = run(index, queries, None)
    results["mix_cache_holds_all"] = run(index, queries, 10 * args.hosts)
    results["misses_only"] = run(index, queries, 1)  # every query prepared afresh
    gc.freeze()  # what a gc.freeze() after loading would buy
    results["frozen_mix_default_cache"] = run(index, queries, None)
    results["frozen_mix_cache_holds_all"] = run(index, queries, 10 * args.hosts)
    record("dns-profile", {"version": homing_version(), **results})


if __name__ == "__main__":
    main()
