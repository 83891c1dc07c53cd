"""Counters an operator graphs: updates by protocol and answer, their latency, HTTP latency,
and the serial each secondary last asked a transfer from.

Each process counts in plain dicts (a few hundred nanoseconds per update, no lock: one
event loop) and, as one of several workers, writes them to `{data_dir}/run/meters-PID`
about once a second; whichever worker a scrape reaches adds the others' last figures to
its own live ones (`merged`), as the DNS query counts are shared (homing.workers).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

# Upper bounds of the latency buckets, seconds (the last, +Inf, is implicit).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PUBLISH_INTERVAL = 1.0
STALE = 10 * PUBLISH_INTERVAL  # a file not rewritten for this long is a killed worker's


class Histogram:
    """Counts per bucket (not cumulative: merged by adding) and the sum of observations."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def add(self, counts: list[int], total: float) -> None:
        for i, count in enumerate(counts[: len(self.counts)]):
            self.counts[i] += count
        self.total += total


class Meters:
    """One process's counters."""

    def __init__(self) -> None:
        self.updates: dict[tuple[str, str], int] = {}  # (protocol, answer) -> count
        self.update_latency: dict[str, Histogram] = {}  # protocol -> latency
        self.http_latency: dict[str, Histogram] = {}  # route group -> latency
        # (zone, secondary's address) -> the serial it has, as its last transfer request
        # showed (only for peers allowed to transfer: a bounded set)
        self.secondaries: dict[tuple[str, str], int] = {}

    def update(self, protocol: str, answers: list[str], seconds: float) -> None:
        """One update request answered (one answer per host it named)."""
        counts = self.updates
        for answer in answers:
            key = (protocol, answer)
            counts[key] = counts.get(key, 0) + 1
        histogram = self.update_latency.get(protocol)
        if histogram is None:
            histogram = self.update_latency[protocol] = Histogram()
        histogram.observe(seconds)

    def http(self, group: str, seconds: float) -> None:
        histogram = self.http_latency.get(group)
        if histogram is None:
            histogram = self.http_latency[group] = Histogram()
        histogram.observe(seconds)

    def secondary(self, zone: str, peer: str, serial: int) -> None:
        self.secondaries[(zone, peer)] = serial

    def snapshot(self) -> dict[str, Any]:
        return {
            "secondaries": [[z, p, n] for (z, p), n in self.secondaries.items()],
            "updates": [[p, a, n] for (p, a), n in self.updates.items()],
            "update_latency": {k: [h.counts, h.total] for k, h in self.update_latency.items()},
            "http_latency": {k: [h.counts, h.total] for k, h in self.http_latency.items()},
        }

    def add(self, snapshot: dict[str, Any]) -> None:
        """Add another process's snapshot (as written by `publish`) to these counters."""
        for protocol, answer, count in snapshot.get("updates", []):
            key = (str(protocol), str(answer))
            self.updates[key] = self.updates.get(key, 0) + int(count)
        for zone, peer, serial in snapshot.get("secondaries", []):
            key = (str(zone), str(peer))
            self.secondaries[key] = max(self.secondaries.get(key, 0), int(serial))
        for field in ("update_latency", "http_latency"):
            mine: dict[str, Histogram] = getattr(self, field)
            for key, (counts, total) in snapshot.get(field, {}).items():
                mine.setdefault(str(key), Histogram()).add(list(counts), float(total))


# This process's counters: the update endpoints and the HTTP front count here.
METERS = Meters()


def merged(run_dir: Path | None) -> Meters:
    """This process's counters plus the other workers' last published ones."""
    total = Meters()
    total.add(METERS.snapshot())
    if run_dir is None:
        return total
    now = time.time()
    own = _path(run_dir, os.getpid())
    for path in run_dir.glob("meters-*"):
        if path == own:
            continue
        try:
            if now - path.stat().st_mtime > STALE:
                continue
            total.add(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # a worker rewriting its file, or one gone: next scrape
    return total


async def publish(run_dir: Path) -> None:
    """Write this worker's counters every PUBLISH_INTERVAL until cancelled."""
    path = _path(run_dir, os.getpid())
    try:
        while True:
            temporary = path.with_name(f".{path.name}.tmp")  # not matched by "meters-*"
            temporary.write_text(json.dumps(METERS.snapshot()))
            temporary.replace(path)  # readers see the old file or the new, never half
            await asyncio.sleep(PUBLISH_INTERVAL)  # a periodic job: no event to wait for
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def _path(run_dir: Path, pid: int) -> Path:
    return run_dir / f"meters-{pid}"
