"""Where homing's DNS time goes, without sockets: the Responder over the benchmark mix.

    python bench/dns_profile.py [--hosts 100000] [--queries 300000] [--signed] [--dnssec-ok]

--signed signs the zone first (`homing zone set Z --dnssec on`); --dnssec-ok sets DO on
every query (an OPT record, as dnsperf -D sends it); --cprofile FILE writes the pstats of
the mix's first pass (a fresh responder, as a dnsperf run sees it).

Loads the N-host zone the way `homing serve` does (store, then one follower sync) and
feeds the dnsperf query mix straight to `Responder.answer`, one wire at a time, timing
the first pass (a fresh responder: anything that has to warm up shows here) apart from
the second, for 1000 distinct questions repeated and for the whole mix, then the mix
again after `gc.freeze()`. Answers dnspython renders (the slow path, cached) are
counted. `by_kind` gives the CPU per query of each kind of answer in the mix (positive A,
positive AAAA, NODATA, NXDOMAIN) over its distinct questions: worked out by a fresh
responder with nothing kept, then asked again (a kept reply or a kept denial). Times
are the process's CPU time (the machine is shared: wall time would count the other
processes' turns). A gc callback records every collection's pause, since the full
(generation 2) collections walk every object of the zone index.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zonegen  # noqa: E402
from harness import (  # noqa: E402
    cli,
    dns_query,
    free_port,
    homing_env,
    homing_version,
    load_index,
    record,
)


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


# An OPT record (RFC 6891): root owner, 1232-byte payload, DO set (RFC 3225), no options.
_OPT_DO = b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00"


def wires(path: Path, limit: int, *, dnssec_ok: bool = False) -> list[bytes]:
    """The query file as wire messages (no EDNS, as dnsperf sends them, or an OPT record
    with DO as dnsperf -D does), random IDs."""
    rng = random.Random(7)
    types = {"A": 1, "AAAA": 28}
    out = []
    for line in path.read_text().splitlines()[:limit]:
        name, qtype = line.split()
        wire = dns_query(name, types[qtype], rng.randrange(65536))
        if dnssec_ok:
            wire = wire[:10] + b"\x00\x01" + wire[12:] + _OPT_DO
        out.append(wire)
    return out


def run(index: Any, queries: list[bytes], cprofile: Path | None = None) -> dict[str, object]:
    """Answer every query twice; CPU time per query of each pass, slow-path renders, GC pauses."""
    from homing.dns.answer import Responder

    responder = Responder(index)
    prepare = responder._prepare
    slow = 0

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal slow
        slow += 1
        return prepare(*args, **kwargs)

    responder._prepare = counting  # type: ignore[method-assign]
    answer = responder.answer
    profiler = cProfile.Profile() if cprofile is not None else None
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    for wire in queries:  # a fresh responder: whatever warms up, warms up here
        answer(wire, tcp=False)
    if profiler is not None:
        profiler.disable()
    first = time.process_time() - started
    if profiler is not None and cprofile is not None:
        profiler.dump_stats(cprofile)
    first_slow, slow = slow, 0
    with GcPauses() as pauses:
        started = time.process_time()
        for wire in queries:
            answer(wire, tcp=False)
        elapsed = time.process_time() - started
    return {
        "queries": len(queries),
        "first_pass_us_per_query": round(first / len(queries) * 1e6, 2),
        "first_pass_slow_rate": round(first_slow / len(queries), 3),
        "slow_rate": round(slow / len(queries), 3),
        "us_per_query": round(elapsed / len(queries) * 1e6, 2),
        "queries_per_second_cpu": round(len(queries) / elapsed),
        **pauses.summary(),
    }


def by_kind(index: Any, queries: list[bytes], repeat: int = 3) -> dict[str, object]:
    """CPU per query of each kind of answer, first (nothing kept) and asked again; the
    medians of `repeat` rounds, each with a fresh responder."""
    from homing.dns import denial
    from homing.dns.answer import Responder

    probe = Responder(index)
    groups: dict[str, list[bytes]] = {}
    for wire in {w[2:]: w for w in queries}.values():  # distinct questions (IDs aside)
        reply = probe.compute(wire, tcp=True)  # over TCP nothing is kept
        assert reply is not None
        end = wire.index(0, 12) + 1
        qtype = "AAAA" if wire[end : end + 2] == b"\x00\x1c" else "A"
        rcode, answers = reply[3] & 15, int.from_bytes(reply[6:8], "big")
        kind = "nxdomain" if rcode == 3 else "nodata" if not answers else qtype
        groups.setdefault(kind, []).append(wire)
    out: dict[str, object] = {}
    for kind, wires in sorted(groups.items()):
        first, again = [], []
        for _ in range(repeat):
            responder = Responder(index)
            kept = getattr(denial, "_kept", None)  # the denials kept, where there are any
            if kept is not None:
                kept.clear()
            answer = responder.answer
            started = time.process_time()
            for wire in wires:
                answer(wire, tcp=False)
            first.append((time.process_time() - started) / len(wires))
            started = time.process_time()
            for wire in wires:
                answer(wire, tcp=False)
            again.append((time.process_time() - started) / len(wires))
        out[kind] = {
            "distinct": len(wires),
            "first_us": round(sorted(first)[repeat // 2] * 1e6, 2),
            "again_us": round(sorted(again)[repeat // 2] * 1e6, 2),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300_000)
    parser.add_argument("--signed", action="store_true", help="sign the zone (NSEC3) first")
    parser.add_argument("--dnssec-ok", action="store_true", help="set DO on every query")
    parser.add_argument("--cprofile", type=Path, help="pstats of the mix's 1st pass")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="homing-bench-dnsprof-") as tmp:
        work = Path(tmp)
        env = homing_env(work, free_port(), free_port())
        zone = zonegen.write_zone(work / "zone.db", args.hosts)
        queries_path = work / "queries.txt"
        zonegen.write_queries(queries_path, args.hosts, args.queries)
        cli(env, "zone", "import", zonegen.ZONE, str(zone))
        if args.signed:
            cli(env, "zone", "set", zonegen.ZONE, "--dnssec", "on")
        index = asyncio.run(load_index(env))
        queries = wires(queries_path, args.queries, dnssec_ok=args.dnssec_ok)
    gc.collect()
    tracked = len(gc.get_objects())
    started = time.perf_counter()
    gc.collect()
    full_collect = time.perf_counter() - started
    hot = [queries[i % 1000] for i in range(len(queries))]  # 1000 distinct: hits only
    results: dict[str, object] = {
        "hosts": args.hosts,
        "signed": args.signed,
        "dnssec_ok": args.dnssec_ok,
        "gc_tracked_objects": tracked,
        "full_gc_ms": round(full_collect * 1000, 1),
    }
    results["hits_only"] = run(index, hot)
    results["mix"] = run(index, queries, args.cprofile)
    gc.freeze()  # as `homing serve` does after loading
    results["frozen_mix"] = run(index, queries)
    results["by_kind"] = by_kind(index, queries)
    print(results)
    record("dns-profile", {"version": homing_version(), **results})


if __name__ == "__main__":
    main()
