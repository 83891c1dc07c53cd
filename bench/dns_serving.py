"""DNS serving benchmark: homing against Knot, NSD, BIND and a dnslib baseline, with dnsperf.

    python bench/dns_serving.py [--hosts 100000] [--seconds 20] [--quick] [--profile]
                                [--baseline-src OTHER_CHECKOUT/src]

One zone of N hosts (A for all, AAAA for every tenth) is loaded into every server; each
server in turn runs pinned to core 0 with one worker, and dnsperf on core 1 asks the
fixed mix (80% A, 10% AAAA, 5% NXDOMAIN, 5% NODATA) for a fixed time. Recorded per
server: queries per second, lost queries, average latency and percentiles, RSS (and PSS
of the whole process tree: NSD forks), the exact version and command. Throughput comes
from a plain dnsperf run; percentiles from a second, shorter run with `-v` (one line per
query), because printing every query costs dnsperf time and would cap the fast servers.

The file is not called dns.py: the script's own directory comes first on sys.path, and
a bench/dns.py would shadow dnspython's `dns` package for everything imported here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import plot  # noqa: E402
import zonegen  # noqa: E402
from harness import (  # noqa: E402
    RESULTS,
    ROOT,
    cli,
    cpu_seconds,
    free_port,
    homing_env,
    homing_version,
    load_average,
    memory_kib,
    record,
    stop_process,
    wait_answer,
)

SERVER_CPU = 0
LOAD_CPU = 1
PROBE = f"{zonegen.host_name(1)}.{zonegen.ZONE}"


@dataclass
class Peer:
    """How to start one server on a port with the zone in a directory."""

    name: str
    version: Callable[[], str]
    command: Callable[[Path, Path, int], list[str]]  # (work dir, zone file, port) -> argv
    prepare: Callable[[Path, Path, int], None] = lambda work, zone, port: None
    needs: str = ""  # the program that must be installed
    load_timeout: float = 300
    cpus: str = str(SERVER_CPU)  # taskset -c list; "0,1" for the all-cores runs


@dataclass
class Outcome:
    name: str
    version: str
    command: list[str]
    figures: dict[str, object] = field(default_factory=dict)


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


# --- homing ---------------------------------------------------------------------------


def _homing_prepare(work: Path, zone: Path, port: int, *, signed: bool = False) -> None:
    store = work / _store_dir("homing-signed" if signed else "homing")
    if store.exists():
        return  # imported in an earlier round
    env = homing_env(store, port, free_port())
    store.mkdir()
    started = time.perf_counter()
    cli(env, "zone", "import", zonegen.ZONE, str(zone))
    print(f"homing: zone imported in {time.perf_counter() - started:.1f} s", flush=True)
    if signed:
        started = time.perf_counter()
        cli(env, "zone", "set", zonegen.ZONE, "--dnssec", "on")
        print(f"homing: zone signed in {time.perf_counter() - started:.1f} s", flush=True)


def _store_dir(key: str) -> str:
    """Where a homing server's store is: the signed zone has its own, the others share one."""
    return "homing-signed" if key == "homing-signed" else "homing"


def _homing_command(work: Path, zone: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "homing", "serve"]


def _homing_workers_command(work: Path, zone: Path, port: int) -> list[str]:
    return [*_homing_command(work, zone, port), "--workers", str(os.cpu_count() or 1)]


# --- Knot -----------------------------------------------------------------------------


def _knot_prepare(work: Path, zone: Path, port: int, workers: int = 1) -> None:
    (work / "knot").mkdir(exist_ok=True)
    (work / "knot" / "knot.conf").write_text(
        f"""server:
    rundir: "{work}/knot"
    listen: 127.0.0.1@{port}
    udp-workers: {workers}
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{work}/knot"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{work}/knot"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: {zonegen.ZONE}
    file: "{zone}"
"""
    )


def _knot_command(work: Path, zone: Path, port: int) -> list[str]:
    return ["knotd", "-c", str(work / "knot" / "knot.conf")]


# --- NSD ------------------------------------------------------------------------------


def _nsd_prepare(work: Path, zone: Path, port: int) -> None:
    d = work / "nsd"
    d.mkdir(exist_ok=True)
    (d / "nsd.conf").write_text(
        f"""server:
    ip-address: 127.0.0.1@{port}
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    zonelistfile: "{d}/zone.list"
    logfile: "{d}/nsd.log"
    verbosity: 0
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {zonegen.ZONE}
    zonefile: "{zone}"
"""
    )


def _nsd_command(work: Path, zone: Path, port: int) -> list[str]:
    return ["nsd", "-d", "-c", str(work / "nsd" / "nsd.conf")]


# --- BIND -----------------------------------------------------------------------------


def _bind_prepare(work: Path, zone: Path, port: int) -> None:
    d = work / "bind"
    d.mkdir(exist_ok=True)
    (d / "named.conf").write_text(
        f"""options {{
    directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    recursion no;
    notify no;
    dnssec-validation no;
    querylog no;
}};
controls {{ }};
zone "{zonegen.ZONE}" {{ type primary; file "{zone}"; }};
"""
    )


def _bind_command(work: Path, zone: Path, port: int) -> list[str]:
    return ["named", "-f", "-n", "1", "-c", str(work / "bind" / "named.conf")]


# --- dnslib ---------------------------------------------------------------------------


def _dnslib_version() -> str:
    try:
        import dnslib
    except ImportError:
        return "dnslib not installed (pip install '.[bench]')"
    return f"dnslib {dnslib.version} on asyncio (Python {sys.version.split()[0]})"


def _dnslib_command(work: Path, zone: Path, port: int) -> list[str]:
    script = Path(__file__).resolve().parent / "baseline_dnslib.py"
    return [sys.executable, str(script), "--zone", str(zone), "--origin", zonegen.ZONE]


PEERS: dict[str, Peer] = {
    "knot": Peer(
        "Knot (1 UDP worker)",
        lambda: _first_line(["knotd", "--version"]),
        _knot_command,
        _knot_prepare,
        needs="knotd",
    ),
    "homing": Peer(
        "homing (1 process)", homing_version, _homing_command, _homing_prepare, needs=""
    ),
    # The same zone signed (CSK, ECDSAP256SHA256, NSEC3): with --dnssec-ok its answers carry
    # RRSIGs and NSEC3 proofs, to set beside "homing" answering the same stream unsigned.
    "homing-signed": Peer(
        "homing, zone signed (1 process)",
        homing_version,
        _homing_command,
        lambda work, zone, port: _homing_prepare(work, zone, port, signed=True),
        load_timeout=600,
    ),
    "nsd": Peer(
        "NSD (server-count 1)",
        lambda: _first_line(["nsd", "-v"]),
        _nsd_command,
        _nsd_prepare,
        needs="nsd",
    ),
    "bind": Peer(
        "BIND (-n 1)", lambda: _first_line(["named", "-v"]), _bind_command, _bind_prepare, "named"
    ),
    "dnslib": Peer("dnslib baseline", _dnslib_version, _dnslib_command, needs=""),
    # All cores: the server may use every core, dnsperf still runs on core 1 beside it.
    "homing-all": Peer(
        f"homing --workers {os.cpu_count()} (all cores)",
        homing_version,
        _homing_workers_command,
        _homing_prepare,
        cpus=f"0-{(os.cpu_count() or 1) - 1}",
    ),
    "knot-all": Peer(
        f"Knot, {os.cpu_count()} UDP workers (all cores)",
        lambda: _first_line(["knotd", "--version"]),
        _knot_command,
        lambda work, zone, port: _knot_prepare(work, zone, port, os.cpu_count() or 1),
        needs="knotd",
        cpus=f"0-{(os.cpu_count() or 1) - 1}",
    ),
}


# Another checkout's src/ (--baseline-src): the same `homing serve` from it, side by side
# with this one, for before/after figures within one run.
BASELINE_SRC: Path | None = None


def _add_baseline(src: Path) -> None:
    global BASELINE_SRC
    BASELINE_SRC = src.resolve()
    if not (BASELINE_SRC / "homing" / "__init__.py").exists():
        raise SystemExit(f"--baseline-src {src}: no homing package there")
    commit = _first_line(["git", "-C", str(BASELINE_SRC), "rev-parse", "--short", "HEAD"])
    PEERS["homing-baseline"] = Peer(
        f"homing @ {commit} (1 process, baseline)",
        lambda: f"homing @ {commit} from {BASELINE_SRC}",
        _homing_command,
        _homing_prepare,
    )


# --- running --------------------------------------------------------------------------


@contextlib.contextmanager
def running(key: str, peer: Peer, work: Path, zone: Path) -> Iterator[tuple[int, int, list[str]]]:
    """Start one server pinned to the server core; yields (pid, port, argv) once it answers."""
    port = free_port()
    peer.prepare(work, zone, port)
    argv = peer.command(work, zone, port)
    if key == "dnslib":
        argv = [*argv, "--port", str(port)]
    env = None
    if key.startswith("homing"):
        env = homing_env(work / _store_dir(key), port, free_port())
    if key == "homing-baseline":
        env = {**(env or {}), "PYTHONPATH": str(BASELINE_SRC)}
    pinned = ["taskset", "-c", peer.cpus, *argv]
    log = (work / f"{key}.log").open("w")
    started = time.perf_counter()
    process = subprocess.Popen(
        pinned, env=env, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=work
    )
    try:
        waited = wait_answer(port, PROBE, peer.load_timeout, process)
        print(
            f"{key}: answering after {time.perf_counter() - started:.1f} s (pid {process.pid})",
            flush=True,
        )
        del waited
        yield process.pid, port, argv
    finally:
        stop_process(process)
        log.close()


_STAT = {
    "sent": re.compile(r"Queries sent:\s+(\d+)"),
    "completed": re.compile(r"Queries completed:\s+(\d+)"),
    "lost": re.compile(r"Queries lost:\s+(\d+)"),
    "qps": re.compile(r"Queries per second:\s+([\d.]+)"),
    "avg_latency_s": re.compile(r"Average Latency \(s\):\s+([\d.]+)"),
    "max_latency_s": re.compile(r"Average Latency \(s\):.*max ([\d.]+)"),
    "stddev_latency_s": re.compile(r"Latency StdDev \(s\):\s+([\d.]+)"),
}
_CODES = re.compile(r"Response codes:\s+(.*)")
_VERBOSE = re.compile(r"^> (\S+) \S+ \S+ ([\d.]+)$")


def dnsperf_argv(port: int, queries: Path, seconds: float, args: argparse.Namespace) -> list[str]:
    return [
        "taskset",
        "-c",
        str(LOAD_CPU),
        "dnsperf",
        "-s",
        "127.0.0.1",
        "-p",
        str(port),
        "-d",
        str(queries),
        "-l",
        str(seconds),
        "-c",
        str(args.clients),
        "-q",
        str(args.outstanding),
        "-t",
        "2",
        *(["-D"] if getattr(args, "dnssec_ok", False) else []),
    ]


def run_dnsperf(
    port: int, queries: Path, seconds: float, args: argparse.Namespace
) -> dict[str, object]:
    argv = dnsperf_argv(port, queries, seconds, args)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    figures: dict[str, object] = {"dnsperf_command": " ".join(argv)}
    for key, pattern in _STAT.items():
        match = pattern.search(done.stdout)
        if match:
            figures[key] = float(match.group(1)) if "." in match.group(1) else int(match.group(1))
    codes = _CODES.search(done.stdout)
    if codes:
        figures["rcodes"] = codes.group(1).strip()
    if "qps" not in figures:
        figures["error"] = (done.stdout + done.stderr)[-2000:]
    return figures


def warm_through(port: int, queries: Path, args: argparse.Namespace) -> None:
    """dnsperf through the whole query file `--warmup-passes` times (bounded: -n and a timeout)."""
    argv = dnsperf_argv(port, queries, 600, args)
    argv[argv.index("-l") : argv.index("-l") + 2] = ["-n", str(args.warmup_passes)]
    subprocess.run(argv, capture_output=True, timeout=900)


def run_dnsperf_percentiles(
    port: int, queries: Path, seconds: float, args: argparse.Namespace, work: Path
) -> dict[str, object]:
    """A run with -v: every answered query's latency, so we can take percentiles."""
    argv = [*dnsperf_argv(port, queries, seconds, args), "-v"]
    out_path = work / "dnsperf-verbose.txt"
    with out_path.open("w") as out:
        subprocess.run(argv, stdout=out, stderr=subprocess.DEVNULL, timeout=seconds + 60)
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    with out_path.open() as lines:
        for line in lines:
            match = _VERBOSE.match(line.rstrip())
            if match:
                codes[match.group(1)] += 1
                latencies.append(float(match.group(2)))
    out_path.unlink()
    if len(latencies) < 100:
        return {"percentile_error": f"only {len(latencies)} latencies in -v output"}
    latencies.sort()
    q = statistics.quantiles(latencies, n=1000)
    return {
        "verbose_seconds": seconds,
        "verbose_qps": round(len(latencies) / seconds, 1),
        "p50_ms": round(q[499] * 1000, 3),
        "p90_ms": round(q[899] * 1000, 3),
        "p99_ms": round(q[989] * 1000, 3),
        "p999_ms": round(q[998] * 1000, 3),
        "verbose_rcodes": dict(codes),
    }


def profile_homing(
    pid: int, port: int, queries: Path, seconds: float, args: argparse.Namespace, work: Path
) -> dict[str, object]:
    """py-spy samples homing (without stopping it) while dnsperf loads it; top frames."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = work / "homing-dns.pyspy"
    spy = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(LOAD_CPU),
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    figures = run_dnsperf(port, queries, seconds, args)
    try:
        spy.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        stop_process(spy)
    summary = summarise_profile(raw) if raw.exists() else {"error": "py-spy wrote nothing"}
    if raw.exists():
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(raw, RESULTS / "homing-dns.pyspy")
    return {"qps_while_profiled": figures.get("qps"), **summary}


def _frame(text: str) -> str:
    """'answer (homing/dns/answer.py:123)' -> 'answer (homing/dns/answer.py)'."""
    return re.sub(r":\d+\)$", ")", text)


def summarise_profile(path: Path, top: int = 15) -> dict[str, object]:
    """Self and inclusive shares of the sampled frames (py-spy's collapsed stacks)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return {"profile_samples": 0}
    return {
        "profile_samples": total,
        "profile_self": [(n, round(100 * c / total, 1)) for n, c in own.most_common(top)],
        "profile_inclusive": [
            (n, round(100 * c / total, 1)) for n, c in inclusive.most_common(top + 10)
        ],
    }


def measure(
    key: str,
    peer: Peer,
    work: Path,
    zone: Path,
    queries: Path,
    args: argparse.Namespace,
    round_no: int,
) -> dict[str, object]:
    """Start one server, load it with dnsperf, stop it; its figures (and "command")."""
    figures: dict[str, object] = {}
    with running(key, peer, work, zone) as (pid, port, argv):
        figures["command"] = ["taskset", "-c", peer.cpus, *argv]
        figures["memory_loaded"] = memory_kib(pid)
        if args.warmup > 0:  # same for every server: caches, page faults
            run_dnsperf(port, queries, args.warmup, args)
        if args.warmup_passes > 0:
            warm_through(port, queries, args)
        figures["load_before"] = load_average()
        cpu_before = cpu_seconds(pid)
        figures.update(run_dnsperf(port, queries, args.seconds, args))
        # CPU per answer: what a query costs the server, however much of the core the
        # other engineers' work left it (the rate depends on that).
        completed = figures.get("completed")
        if isinstance(completed, int) and completed:
            used = cpu_seconds(pid) - cpu_before
            figures["cpu_us_per_query"] = round(used / completed * 1e6, 2)
        figures["memory_after"] = memory_kib(pid)
        figures.update(run_dnsperf_percentiles(port, queries, args.latency_seconds, args, work))
        if key == "homing" and args.profile and round_no == 0:
            figures["profile"] = profile_homing(
                pid, port, queries, min(args.seconds, 10), args, work
            )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20, help="dnsperf -l for throughput")
    parser.add_argument("--latency-seconds", type=float, default=5, help="dnsperf -l with -v")
    parser.add_argument("--warmup", type=float, default=3, help="dnsperf seconds not counted")
    parser.add_argument(
        "--warmup-passes",
        type=int,
        default=0,
        help="before measuring, run dnsperf through the whole query file this many times "
        "(fills homing's answer cache: every later answer is a cached one)",
    )
    parser.add_argument("--queries", type=int, default=500_000, help="lines in the query file")
    parser.add_argument("--clients", type=int, default=8, help="dnsperf -c")
    parser.add_argument("--outstanding", type=int, default=500, help="dnsperf -q")
    parser.add_argument("--servers", default="knot,homing,nsd,bind,dnslib,knot-all,homing-all")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the side-by-side series")
    parser.add_argument("--profile", action="store_true", help="py-spy homing under load")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10k hosts, 3 s each")
    parser.add_argument(
        "--mixed-case",
        action="store_true",
        help="names in random letter case, as resolvers using 0x20 ask (every server)",
    )
    parser.add_argument(
        "--dnssec-ok", action="store_true", help="set DO on every query (dnsperf -D)"
    )
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "benchmarks-dns.png")
    parser.add_argument(
        "--baseline-src", type=Path, help="another checkout's src/: adds server homing-baseline"
    )
    args = parser.parse_args()
    if args.baseline_src is not None:
        _add_baseline(args.baseline_src)
    if args.quick:
        args.hosts, args.seconds, args.latency_seconds, args.queries = 10_000, 3, 2, 50_000
        args.warmup = 1
    args.rounds = max(1, min(args.rounds, 5))
    keys = [k.strip() for k in args.servers.split(",") if k.strip()]
    for key in keys:
        if key not in PEERS:
            raise SystemExit(f"unknown server {key!r}; pick from {', '.join(PEERS)}")
    if shutil.which("dnsperf") is None:
        raise SystemExit("dnsperf is not installed (apt-get install dnsperf)")

    workers = workers_note()
    if "homing-all" in keys and "no --workers" in workers:
        print("homing-all: homing serve has no --workers option, skipped", flush=True)
        keys.remove("homing-all")
    load_before = load_average()
    outcomes: dict[str, list[Outcome]] = {}
    with tempfile.TemporaryDirectory(prefix="homing-bench-dns-") as tmp:
        work = Path(tmp)
        zone = zonegen.write_zone(work / "zone.db", args.hosts)
        queries = work / "queries.txt"
        mix = zonegen.write_queries(queries, args.hosts, args.queries, mixed_case=args.mixed_case)
        for round_no in range(args.rounds):
            for key in keys:
                peer = PEERS[key]
                if peer.needs and shutil.which(peer.needs) is None:
                    print(f"{key}: {peer.needs} not installed, skipped", flush=True)
                    continue
                outcome = Outcome(peer.name, peer.version(), [])
                try:
                    figures = measure(key, peer, work, zone, queries, args, round_no)
                except RuntimeError as exc:  # it did not start: say so, measure the others
                    figures = {"error": str(exc)}
                command = figures.pop("command", [])
                outcome.command = command if isinstance(command, list) else []
                outcome.figures = figures
                print(f"{key}: {outcome.figures.get('qps')} q/s", flush=True)
                outcomes.setdefault(key, []).append(outcome)

    summary = summarise(outcomes)
    result = {
        "hosts": args.hosts,
        "query_mix": mix,
        "mixed_case": args.mixed_case,
        "dnssec_ok": args.dnssec_ok,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "warmup_seconds": args.warmup,
        "warmup_passes": args.warmup_passes,
        "homing_workers": workers,
        "load_before": load_before,
        "load_after": load_average(),
        "summary": summary,
        "servers": {
            key: [
                {"name": o.name, "version": o.version, "command": " ".join(o.command), **o.figures}
                for o in runs
            ]
            for key, runs in outcomes.items()
        },
    }
    record("dns", result)
    if summary:
        plot.plot_dns(summary, args.plot, hosts=args.hosts, load=load_before)
        print(f"plot: {args.plot}")


def summarise(outcomes: dict[str, list[Outcome]]) -> dict[str, dict[str, object]]:
    """Per server: median qps over the rounds, its ratio to Knot, percentiles, RSS."""
    summary: dict[str, dict[str, object]] = {}
    for key, runs in outcomes.items():
        qps = [q for o in runs if isinstance(q := o.figures.get("qps"), float)]
        if not qps:
            continue
        best = runs[0].figures

        def median_of(name: str, runs: list[Outcome] = runs) -> float | None:
            values = [float(v) for o in runs if isinstance(v := o.figures.get(name), int | float)]
            return statistics.median(values) if values else None

        memory = best.get("memory_after")
        summary[key] = {
            "name": runs[0].name,
            "version": runs[0].version,
            "qps": round(statistics.median(qps), 1),
            "qps_runs": qps,
            "lost": median_of("lost"),
            "cpu_us_per_query": median_of("cpu_us_per_query"),
            "sent": median_of("sent"),
            "avg_ms": _ms(median_of("avg_latency_s")),
            "p50_ms": median_of("p50_ms"),
            "p99_ms": median_of("p99_ms"),
            "p999_ms": median_of("p999_ms"),
            "rss_mib": round(memory["rss_kib"] / 1024, 1) if isinstance(memory, dict) else None,
            "tree_pss_mib": round(memory["tree_pss_kib"] / 1024, 1)
            if isinstance(memory, dict)
            else None,
        }
    knot = summary.get("knot", {}).get("qps")
    if isinstance(knot, float) and knot > 0:
        for figures in summary.values():
            figures["vs_knot"] = round(float(figures["qps"]) / knot, 3)  # type: ignore[arg-type]
    knot_cpu = summary.get("knot", {}).get("cpu_us_per_query")
    if isinstance(knot_cpu, float) and knot_cpu > 0:
        for figures in summary.values():
            cpu = figures.get("cpu_us_per_query")
            if isinstance(cpu, float) and cpu > 0:
                # Knot's CPU per query over ours: the ratio a core of our own would give.
                figures["vs_knot_cpu"] = round(knot_cpu / cpu, 3)
    knot_all = summary.get("knot-all", {}).get("qps")
    if isinstance(knot_all, float) and knot_all > 0 and "homing-all" in summary:
        homing_all = float(summary["homing-all"]["qps"])  # type: ignore[arg-type]
        summary["homing-all"]["vs_knot_all"] = round(homing_all / knot_all, 3)
    return summary


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def workers_note() -> str:
    """Whether `homing serve --workers N` exists yet (the multi-core figure needs it)."""
    env = homing_env(Path(tempfile.gettempdir()), 0, 0)
    done = subprocess.run(
        [sys.executable, "-m", "homing", "serve", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--workers" in done.stdout:
        return "homing serve --workers exists (run as homing-all)"
    return "homing serve has no --workers option: no multi-process figure"


if __name__ == "__main__":
    main()
