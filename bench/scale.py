"""Scale benchmark: homing's RSS and start-up (load) time with N hosts, up to 10 million.

    python bench/scale.py [--hosts 100000,1000000] [--profile] [--quick]
    python bench/scale.py --hosts 10000000 --stores /work/scale10m --generate-only
    python bench/scale.py --hosts 10000000 --stores /work/scale10m --traffic 10
    python bench/scale.py --hosts 100000 --signed          # the zone signed (NSEC3) first

For each N up to 1M: write the benchmark zone, import it into a fresh SQLite store with
`homing zone import ZONE FILE --owner bench` (every A/AAAA name becomes a host; the
import time is recorded but is not start-up). Above 1M, or with --stores or --traffic,
the store is generated instead: its rows streamed into SQLite in batches (bounded
memory, the seconds printed), each host's secret derived from its number
(zonegen.host_secret); with --stores it is kept as DIR/hosts-N and reused, so a later
run on a quiet machine only measures. Then `homing serve` starts pinned to core 0 and
is timed from exec to READY and to the first DNS answer; RSS (and the peak, VmHWM) once
loaded. With --traffic SECONDS, dnsperf then wrk load it (DNS queries per second in the
fixed mix, durable updates per second by 100 clients), as bench/dns_serving.py and
bench/updates.py do. With --profile, the same load path runs in this process under
pyinstrument (where the time goes) and tracemalloc (where the memory goes), for the
smallest N. With --signed the zone is signed once its store is made (`homing zone set
ZONE --dnssec on`, the seconds recorded as sign_s, not start-up), so start-up loads its
RRSIG and NSEC3 records too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zonegen  # noqa: E402
from harness import (  # noqa: E402
    RESULTS,
    ROOT,
    cli,
    free_port,
    homing_env,
    homing_version,
    load_average,
    load_index,
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


def generate(data: Path, hosts: int) -> tuple[dict[str, str], float]:
    """A store in `data` holding the N-host zone, its rows streamed in batches (a zone
    file of 10M names does not fit the import's memory); returns its environment and the
    generation seconds. A store already there is kept: a later run only measures."""
    data.mkdir(parents=True, exist_ok=True)
    env = homing_env(data, free_port(), free_port())
    done = data / "generated"
    if done.exists():
        return env, float(done.read_text())
    if (data / "homing.db").exists():
        raise SystemExit(f"{data} holds a store that was not generated whole: remove it")
    started = time.perf_counter()
    cli(env, "user", "add", "bench", "--email", "bench@example.org", "--password-stdin",
        stdin=PASSWORD + "\n")  # fmt: skip
    head = zonegen.write_zone(data / "zone-head.db", 0)  # SOA, NS and glue: the zone exists
    cli(env, "zone", "import", zonegen.ZONE, str(head), "--owner", "bench")
    head.unlink()
    with sqlite3.connect(data / "homing.db") as conn:
        zone_id = conn.execute("SELECT id FROM zones WHERE name = ?", (zonegen.ZONE,)).fetchone()
        owner = conn.execute("SELECT id FROM accounts WHERE user_key = 'bench'").fetchone()
    zonegen.fill_store(data / "homing.db", zone_id[0], owner[0], hosts)
    seconds = time.perf_counter() - started
    done.write_text(f"{seconds:.1f}")
    print(f"{hosts} hosts generated in {seconds:.1f} s", flush=True)
    return env, round(seconds, 1)


def measure_start(
    env: dict[str, str], timeout: float, log: Path, traffic: float = 0.0, hosts: int = 0
) -> dict[str, object]:
    """Start homing serve on the server core: seconds to READY, to first answer; memory.
    With `traffic` seconds (a generated store of `hosts`), then the DNS and update loads."""
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
        row: dict[str, object] = {
            "command": " ".join(argv),
            "ready_s": round(ready, 2),
            "first_answer_s": round(answered, 2),
            "rss_mib": round(proc_status_kib(process.pid) / 1024, 1),
            "peak_rss_mib": round(proc_status_kib(process.pid, "VmHWM") / 1024, 1),
        }
        if traffic > 0:
            with tempfile.TemporaryDirectory(prefix="homing-bench-traffic-") as work:
                row.update(measure_traffic(env, hosts, traffic, Path(work)))
            row["rss_after_traffic_mib"] = round(proc_status_kib(process.pid) / 1024, 1)
        return row
    finally:
        stop_process(process)


QUERY_LINES = 200_000  # the dnsperf file, cycled: bounded whatever the host count
DNS_CLIENTS, DNS_OUTSTANDING = 4, 200
UPDATE_CLIENTS = 100
FIRST_UPDATE_TIMEOUT = 300.0


def measure_traffic(
    env: dict[str, str], hosts: int, seconds: float, work: Path
) -> dict[str, object]:
    """DNS queries per second (dnsperf, as bench/dns_serving.py runs it) and durable updates
    per second (wrk, bench/updates.py's closed loop) against the loaded store, each for
    `seconds`; the updated hosts are a sample whose secrets the generator derived."""
    import random

    import dns_serving  # dnsperf and its parsing
    import updates  # wrk and bench/updates.lua

    dns_port = int(env["HOMING_DNS_LISTEN"].rsplit(":", 1)[1])
    http_port = int(env["HOMING_HTTP_LISTEN"].rsplit(":", 1)[1])
    queries = work / f"scale-queries-{hosts}.txt"
    zonegen.write_queries(queries, hosts, min(QUERY_LINES, 10 * hosts))
    load = argparse.Namespace(clients=DNS_CLIENTS, outstanding=DNS_OUTSTANDING)
    dns = dns_serving.run_dnsperf(dns_port, queries, seconds, load)
    # Another sample each run: a kept store's hosts already hold the addresses an earlier
    # run's first rounds gave them, and the same address again answers nochg, not good.
    seed = time.time_ns()
    sample = random.Random(seed).sample(range(hosts), min(UPDATE_CLIENTS, hosts))
    clients = [
        updates.Host(f"{zonegen.host_name(i)}.{zonegen.ZONE}", zonegen.host_secret(i))
        for i in sample
    ]
    # The first update on a freshly loaded store is timed alone (a cold path), then the loop.
    first = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/nic/update?myip=10.255.255.1",
        headers={"Authorization": f"Basic {clients[0].auth}"},
    )
    started = time.perf_counter()
    with urllib.request.urlopen(first, timeout=FIRST_UPDATE_TIMEOUT) as answer:
        first_answer = answer.read().decode().strip()
    first_update_s = round(time.perf_counter() - started, 2)
    update = updates.closed_loop(http_port, clients, len(clients), seconds, work)
    return {
        "update_sample_seed": seed,
        "first_update_s": first_update_s,
        "first_update_answer": first_answer,
        "dns_qps": dns.get("qps"),
        "dns": dns,
        "updates_per_second": update.get("updates_per_second"),
        "updates": update,
    }


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
        asyncio.run(load_index(env))
        profiler.stop()
        text = profiler.output_text(unicode=False, color=False, show_all=False)
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / "scale-load-profile.txt").write_text(text)
        result["time_profile"] = text.splitlines()[:80]
    tracemalloc.start(1)
    index = asyncio.run(load_index(env))
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


MAX_HOSTS = 10_000_000
IMPORT_MAX = 1_000_000  # above this the zone file path holds too much in memory: generated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", default="100000,1000000", help="comma-separated counts")
    parser.add_argument("--timeout", type=float, default=900, help="bound on one start-up")
    parser.add_argument("--profile", action="store_true", help="profile the smallest N's load")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10k and 20k hosts")
    parser.add_argument(
        "--stores",
        type=Path,
        help="keep generated stores here (DIR/hosts-N), made once and reused: a later run "
        "only measures",
    )
    parser.add_argument("--generate-only", action="store_true", help="make the --stores and stop")
    parser.add_argument(
        "--traffic",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="once ready, DNS queries (dnsperf) then updates (wrk) for SECONDS each; "
        "the stores are generated (derived secrets)",
    )
    parser.add_argument("--signed", action="store_true", help="sign the zone before starting")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "benchmarks-scale.png")
    args = parser.parse_args()
    counts = [10_000, 20_000] if args.quick else [int(x) for x in args.hosts.split(",")]
    if any(n < 1 or n > MAX_HOSTS for n in counts):
        raise SystemExit(f"--hosts: each count must be 1..{MAX_HOSTS:,}")
    if args.generate_only and args.stores is None:
        raise SystemExit("--generate-only needs --stores")
    rows: list[dict[str, object]] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="homing-bench-scale-") as tmp:
        for hosts in sorted(counts):
            row: dict[str, object] = {"hosts": hosts}
            if args.stores is not None or hosts > IMPORT_MAX or args.traffic > 0:
                print(f"{hosts} hosts: generating (or reusing) the store", flush=True)
                where = (args.stores or Path(tmp)) / f"hosts-{hosts}"
                env, row["generate_s"] = generate(where, hosts)
            else:
                print(f"{hosts} hosts: importing", flush=True)
                env, imported = prepare(Path(tmp), hosts)
                row["import_s"] = round(imported, 1)
            if args.signed and not (Path(env["HOMING_DATA_DIR"]) / "signed").exists():
                started = time.perf_counter()
                cli(env, "zone", "set", zonegen.ZONE, "--dnssec", "on")
                row["sign_s"] = round(time.perf_counter() - started, 1)
                (Path(env["HOMING_DATA_DIR"]) / "signed").write_text(str(row["sign_s"]))
            if args.generate_only:
                continue
            db = Path(env["HOMING_DATA_DIR"]) / "homing.db"
            row.update(db_mib=round(db.stat().st_size / 2**20, 1), load=load_average())
            try:
                log = RESULTS / f"scale-serve-{hosts}.log"
                row.update(measure_start(env, args.timeout, log, args.traffic, hosts))
            except RuntimeError as exc:  # recorded, and the other sizes still run
                row["error"] = str(exc)
            print(row, flush=True)
            if args.profile and hosts == min(counts):
                row["profile"] = profile_load(env)
            rows.append(row)
            if args.stores is None:
                for path in Path(env["HOMING_DATA_DIR"]).iterdir():
                    path.unlink()  # the next N needs the disk more than this one
    if args.generate_only:
        return
    record("scale", {"version": homing_version(), "signed": args.signed, "rows": rows})
    import plot  # matplotlib: only when plotting

    plot.plot_scale([r for r in rows if "rss_mib" in r], args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
