"""The UDP server's loop over the benchmark mix, names in lower case against random case.

    python bench/udp_loop.py [--hosts 100000] [--queries 100000] [--passes 7]

Loads the N-host zone as `homing serve` does (store, then one follower sync), serves
it with the real BatchReceiver (homing.dns.udp) on a loopback socket, and feeds it the
dnsperf query mix in batches of 64: a client socket in this process sends a batch
(untimed), then the receiver's readiness callback is called directly and timed with
the thread's CPU clock (recvmmsg, every answer, sendmmsg: what the server does per
batch), then the replies are read and checked (untimed): each carries its query's ID
and its spelling of the name. The mix is sent once in lower case to fill the kept
replies, then in passes, alternating the lower-case mix and the same questions with
every letter in random case (zonegen --mixed-case, as resolvers using 0x20 ask), so
load from other processes falls on both alike. Reports the CPU microseconds per query
of each (median of the passes) and how many answers each pass computed (not kept).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import socket
import statistics
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

BATCH = 64
TYPES = {"A": 1, "AAAA": 28}


def built_index(hosts: int) -> Any:
    """The benchmark zone put straight into an index, no store: quicker to set up, and the
    same whatever runs it (for counting instructions under callgrind)."""
    from homing.dns.index import ZoneIndex
    from homing.domain.records import RRsetValue, ZoneMeta

    zone = zonegen.ZONE
    values = [RRsetValue(zone, "NS", 3600, (f"ns1.{zone}.",))]
    values.append(RRsetValue(f"ns1.{zone}", "A", 3600, ("127.0.0.1",)))
    for i in range(hosts):
        name = f"{zonegen.host_name(i)}.{zone}"
        values.append(RRsetValue(name, "A", zonegen.TTL, (zonegen.ipv4(i),)))
        if zonegen.has_aaaa(i):
            values.append(RRsetValue(name, "AAAA", zonegen.TTL, (zonegen.ipv6(i),)))
    index = ZoneIndex()
    index.put_zone(ZoneMeta(zone, f"ns1.{zone}", f"hostmaster.{zone}"), 1, values)
    return index


def wires(path: Path) -> list[bytes]:
    rng = random.Random(7)
    out = []
    for line in path.read_text().splitlines():
        name, qtype = line.split()
        out.append(dns_query(name, TYPES[qtype], rng.randrange(65536)))
    return out


class Loop:
    """A BatchReceiver on a loopback socket, and a client socket feeding it."""

    def __init__(self, index: Any) -> None:
        from homing.dns.answer import Responder
        from homing.dns.udp import BatchReceiver

        self.responder = Responder(index)
        compute = self.responder.compute
        self.computed = 0

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.computed += 1
            return compute(*args, **kwargs)

        self.responder.compute = counting  # type: ignore[method-assign]
        self.server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.server.bind(("127.0.0.1", 0))
        self.client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.client.bind(("127.0.0.1", 0))
        self.client.connect(self.server.getsockname())
        self.client.settimeout(5)  # every reply comes: loopback, well under the buffers
        self.receiver = BatchReceiver(self.server, self.responder, None, lambda _n: None)

    def run(self, queries: list[bytes]) -> tuple[float, int]:
        """CPU seconds of the receiver over `queries`, and how many answers it computed."""
        computed = self.computed
        spent = 0.0
        for start in range(0, len(queries), BATCH):
            batch = queries[start : start + BATCH]
            for wire in batch:
                self.client.send(wire)
            began = time.thread_time()
            self.receiver._readable()
            spent += time.thread_time() - began
            for wire in batch:
                reply = self.client.recv(4096)
                end = wire.find(0, 12) + 1
                if reply[:2] != wire[:2] or reply[12:end] != wire[12:end]:
                    raise SystemExit(f"reply {reply.hex()} does not answer {wire.hex()}")
        return spent, self.computed - computed

    def close(self) -> None:
        self.receiver.close()
        self.client.close()


async def measure(
    index: Any, lower: list[bytes], mixed: list[bytes], passes: int, streams: list[str]
) -> dict:
    loop = Loop(index)
    try:
        loop.run(lower)  # fills the kept replies
        gc.collect()
        gc.freeze()  # as `homing serve` does after loading
        times: dict[str, list[float]] = {"lower": [], "mixed": []}
        computed: dict[str, list[int]] = {"lower": [], "mixed": []}
        for _ in range(passes):
            for kind, queries in (("lower", lower), ("mixed", mixed)):
                if kind not in streams:
                    continue
                spent, made = loop.run(queries)
                times[kind].append(spent / len(queries) * 1e6)
                computed[kind].append(made)
    finally:
        loop.close()
        gc.unfreeze()
    lower_us = statistics.median(times["lower"] or [0.0])
    mixed_us = statistics.median(times["mixed"] or [0.0])
    return {
        "queries": len(lower),
        "passes": passes,
        "lower_us_per_query": round(lower_us, 3),
        "mixed_us_per_query": round(mixed_us, 3),
        "lower_passes_us": [round(t, 3) for t in times["lower"]],
        "mixed_passes_us": [round(t, 3) for t in times["mixed"]],
        "mixed_over_lower": round(mixed_us / lower_us, 3) if lower_us and mixed_us else None,
        "computed_per_pass": {k: v[-1] for k, v in computed.items() if v},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=7)
    parser.add_argument("--label", default="", help="recorded with the result")
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="put the zone straight into the index instead of loading it from a store",
    )
    parser.add_argument(
        "--streams",
        default="lower,mixed",
        help="which passes to run (one alone: for counting instructions under callgrind)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="homing-bench-udploop-") as tmp:
        work = Path(tmp)
        env = homing_env(work, free_port(), free_port())
        lower_path, mixed_path = work / "lower.txt", work / "mixed.txt"
        zonegen.write_queries(lower_path, args.hosts, args.queries)
        zonegen.write_queries(mixed_path, args.hosts, args.queries, mixed_case=True)
        if args.in_memory:
            index = built_index(args.hosts)
        else:
            zone = zonegen.write_zone(work / "zone.db", args.hosts)
            cli(env, "zone", "import", zonegen.ZONE, str(zone))
            index = asyncio.run(load_index(env))
        lower, mixed = wires(lower_path), wires(mixed_path)
    streams = args.streams.split(",")
    result = asyncio.run(measure(index, lower, mixed, args.passes, streams))
    result = {"hosts": args.hosts, "label": args.label, **result}
    print(result)
    record("udp-loop", {"version": homing_version(), **result})


if __name__ == "__main__":
    main()
