"""Scale benchmark: homing's RSS and start-up (load) time with N hosts.

    python bench/scale.py [--hosts 100000,1000000] [--profile] [--quick]

For each N: write the benchmark zone, import it into a fresh SQLite store with
`homing zone import ZONE FILE --owner bench` (every A/AAAA name becomes a host; the
import time is recorded but is not start-up), then start `homing serve` pinned to core 0
and time it from exec to READY and to the first DNS answer; RSS (and the peak, VmHWM)
once loaded. With --profile, the same load path runs in this process under pyinstrument
(where the time goes) and tracemalloc (where the memory goes), for the smallest N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plot  # noqa: E402
import zonegen  # noqa: E402
from harness import (  # noqa: E402
    RESULTS,
    ROOT,
    cli,
    free_port,
    homing_env,
    homing_version,
    load_average,
    proc_status_kib,
    record,
    stop_process,
    wait_answer,
)

PASSWORD = "correct horse battery"
SERVER_CPU = 0


def prepare(work: Path, hosts: int) -> tuple[dict[str, str], float]:
    """A store holding the N-host zone; returns its environment and the import seconds."""
    data = work / f"data-{hosts}"
    data.mkdir()
    env = homing_env(data, free_port(), free_port())
    zone = zonegen.write_zone(work / f"zone-{hosts}.db", hosts)
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
    started = time.perf_counter()
    cli(
        env,
        "zone",
        "import",
        zonegen.ZONE,
        str(zone),
        "--owner",
        "bench",
        "--secrets-out",
        str(work / f"secrets-{hosts}.csv"),
    )
    imported = time.perf_counter() - started
    zone.unlink()
    return env, imported


def measure_start(env: dict[str, str], timeout: float, log: Path) -> dict[str, object]:
    """Start homing serve on the server core: seconds to READY, to first answer; memory."""
    dns_port = int(env["HOMING_DNS_LISTEN"].rsplit(":", 1)[1])
    argv = ["taskset", "-c", str(SERVER_CPU), sys.executable, "-m", "homing", "serve"]
    started = time.perf_counter()
    with log.open("w") as errors:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # READY, or EOF when it failed
        ready = time.perf_counter() - started
        if not line.startswith("READY"):
            tail = log.read_text()[-1500:]
            raise RuntimeError(f"homing serve did not start: {line!r}; its stderr ends: {tail}")
        wait_answer(dns_port, f"{zonegen.host_name(1)}.{zonegen.ZONE}", timeout, process)
        answered = time.perf_counter() - started
        time.sleep(1)  # let the first follower pass and the HTTP side settle
        return {
            "command": " ".join(argv),
            "ready_s": round(ready, 2),
            "first_answer_s": round(answered, 2),
            "rss_mib": round(proc_status_kib(process.pid) / 1024, 1),
            "peak_rss_mib": round(proc_status_kib(process.pid, "VmHWM") / 1024, 1),
        }
    finally:
        stop_process(process)


async def _load_index(env: dict[str, str]) -> object:
    """The load path of `homing serve` up to the index (migrate, then one follower sync)."""
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


def profile_load(env: dict[str, str], top: int = 12) -> dict[str, object]:
    """Where load time (pyinstrument) and memory (tracemalloc) go, in this process."""
    os.environ.update(env)
    result: dict[str, object] = {}
    try:
        from pyinstrument import Profiler
    except ImportError:
        result["time_profile"] = "pyinstrument not installed (pip install '.[bench]')"
    else:
        profiler = Profiler(interval=0.001)
        profiler.start()
        asyncio.run(_load_index(env))
        profiler.stop()
        text = profiler.output_text(unicode=False, color=False, show_all=False)
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / "scale-load-profile.txt").write_text(text)
        result["time_profile"] = text.splitlines()[:80]
    tracemalloc.start(1)
    index = asyncio.run(_load_index(env))
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = snapshot.statistics("lineno")
    total = sum(s.size for s in stats)
    result["traced_mib_index_alive"] = round(total / 2**20, 1)
    result["memory_by_line"] = [
        (str(s.traceback[0]), round(s.size / 2**20, 1), s.count) for s in stats[:top]
    ]
    by_file = snapshot.statistics("filename")
    result["memory_by_file"] = [
        (s.traceback[0].filename.split("site-packages/")[-1], round(s.size / 2**20, 1))
        for s in by_file[:top]
    ]
    del index
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="100000,1000000", help="comma-separated counts")
    parser.add_argument("--timeout", type=float, default=600, help="bound on one start-up")
    parser.add_argument("--profile", action="store_true", help="profile the smallest N's load")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10k and 20k hosts")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "benchmarks-scale.png")
    args = parser.parse_args()
    counts = [10_000, 20_000] if args.quick else [int(x) for x in args.hosts.split(",")]
    if any(n < 1 or n > 5_000_000 for n in counts):
        raise SystemExit("--hosts: each count must be 1..5,000,000")
    rows: list[dict[str, object]] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="homing-bench-scale-") as tmp:
        for hosts in sorted(counts):
            print(f"{hosts} hosts: importing", flush=True)
            env, imported = prepare(Path(tmp), hosts)
            db = Path(env["HOMING_DATA_DIR"]) / "homing.db"
            row: dict[str, object] = {
                "hosts": hosts,
                "import_s": round(imported, 1),
                "db_mib": round(db.stat().st_size / 2**20, 1),
                "load": load_average(),
            }
            try:
                row.update(measure_start(env, args.timeout, RESULTS / f"scale-serve-{hosts}.log"))
            except RuntimeError as exc:  # recorded, and the other sizes still run
                row["error"] = str(exc)
            print(row, flush=True)
            if args.profile and hosts == min(counts):
                row["profile"] = profile_load(env)
            rows.append(row)
            for path in Path(env["HOMING_DATA_DIR"]).iterdir():
                path.unlink()  # the next N needs the disk more than this one
    record("scale", {"version": homing_version(), "rows": rows})
    plot.plot_scale([r for r in rows if "rss_mib" in r], args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
