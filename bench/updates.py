"""Update benchmark: durable acknowledged /nic/update requests per second, and their latency.

    python bench/updates.py --clients 100 --seconds 10              # closed loop (wrk)
    python bench/updates.py --rate 3000 --seconds 10                # open loop (Python)
    python bench/updates.py --clients 100 --postgres --workers 2 --profile
    python bench/updates.py --clients 100 --seconds 10 --signed     # a signed zone (NSEC3)

Closed loop: wrk (C, one thread on core 1) keeps C connections busy, each answer
followed at once by the next request (bench/updates.lua: round-robin over C hosts, a new
address every time, anything but `good` counted as bad). Latency is from each send.

Open loop: requests are *scheduled* at a fixed rate (`--rate`) for `--seconds`, by
`--generators` Python processes on core 1 with `--connections` keep-alive connections
in all, opened before the schedule starts (the clients); a request finding them all busy
waits for one, and its latency is counted
from its scheduled time, so queueing in the server shows instead of slowing the load
(closed loops hide it). The generators' own lag behind the schedule is reported too.

With --signed the zone is signed once its hosts are in (`homing zone set Z --dnssec on`),
so each update is signed (its RRSIGs, NSEC3 records, the SOA's RRSIG) before it is
acknowledged.

The server (`homing serve`, SQLite in a temp dir or PostgreSQL in a schema of its own)
runs on core 0. Its CPU per acknowledged update is reported, and with --postgres the CPU
of the PostgreSQL backends serving it (and of the cluster's own processes) per update;
bench/updates_breakdown.py takes the store path apart further.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import multiprocessing
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    RESULTS,
    Server,
    cli,
    cpu_seconds,
    free_port,
    homing_env,
    homing_version,
    load_average,
    process_tree,
    record,
    start_server,
    stop_process,
)

PASSWORD = "correct horse battery"
LUA = Path(__file__).resolve().parent / "updates.lua"
LOAD_CPU = 1
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Host:
    name: str
    secret: str

    @property
    def auth(self) -> str:
        return base64.b64encode(f"{self.name}:{self.secret}".encode()).decode()


def address(index: int, round_: int, first_octet: int = 10) -> str:
    """Host `index`'s address for its `round_`-th update: always a change (as updates.lua).
    A warm-up run takes another `first_octet`, so the measured run never repeats it."""
    second = index // 250 + 20 * (round_ // 250 % 10)
    return f"{first_octet}.{second}.{index % 250}.{round_ % 250 + 1}"


def percentiles(latencies: list[float], prefix: str = "") -> dict[str, float]:
    if len(latencies) < 1000:
        return {f"{prefix}percentile_error": len(latencies)}
    q = statistics.quantiles(latencies, n=1000, method="inclusive")
    return {
        f"{prefix}p50_ms": round(q[499] * 1000, 2),
        f"{prefix}p90_ms": round(q[899] * 1000, 2),
        f"{prefix}p99_ms": round(q[989] * 1000, 2),
        f"{prefix}p999_ms": round(q[998] * 1000, 2),
        f"{prefix}max_ms": round(max(latencies) * 1000, 2),
    }


# --- closed loop: wrk ------------------------------------------------------------------


def closed_loop(
    port: int, hosts: list[Host], clients: int, seconds: float, work: Path, first_octet: int = 10
) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    hosts_file = work / "wrk-hosts.txt"
    hosts_file.write_text("".join(f"{h.name},{h.auth}\n" for h in hosts))
    argv = [
        "taskset", "-c", str(LOAD_CPU), wrk, "-t1", f"-c{clients}", f"-d{seconds:g}s",
        "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{port}", "--", str(hosts_file),
        str(first_octet),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {(done.stdout + done.stderr)[-2000:]}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    wall = raw["duration_us"] / 1e6
    acknowledged = raw["requests"] - raw["bad"]
    return {
        "generator": "wrk 1 thread",
        "wrk_command": " ".join(argv[3:]),
        "acknowledged": acknowledged,
        "errors": raw["bad"] + raw["socket_errors"],
        "seconds": round(wall, 2),
        "updates_per_second": round(acknowledged / wall, 1),
        **{
            f"{key}_ms": round(raw[f"{key}_us"] / 1000, 2)
            for key in ("p50", "p90", "p99", "p999", "max")
        },
    }


# --- open loop: Python generator processes -------------------------------------------


# Seconds a kept-alive connection may have been idle and still be reused: below
# `homing serve`'s keep-alive timeout (10 s), which a run with its warm-up outlasts.
IDLE_REUSE = 5.0


class _Pool:
    """Keep-alive connections; a request waits (FIFO) when all `limit` of them are busy."""

    def __init__(self, port: int, limit: int) -> None:
        self.port, self.limit, self.opened = port, limit, 0
        # (connection, idle since): the most recently used is taken first.
        self.idle: list[tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], float]] = []
        self.waiting: list[asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = []

    async def get(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            conn, since = self.idle.pop()
            if time.perf_counter() - since < IDLE_REUSE:
                return conn
            # Idle long enough for the server to have closed it (keep-alive 10 s), as a
            # pooling client would not reuse it: a new one in its place.
            conn[1].close()
            return await asyncio.open_connection("127.0.0.1", self.port)
        if self.opened < self.limit:
            self.opened += 1
            return await asyncio.open_connection("127.0.0.1", self.port)
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        return await future

    async def fill(self) -> None:
        """Open every connection before the schedule starts, as long-lived clients hold them:
        opened on demand, a slow moment made the pool open more, and the server's accepts
        added to the load just then (the first 250 ms of a run were its slowest)."""
        while self.opened < self.limit:
            self.opened += 1
            conn = await asyncio.open_connection("127.0.0.1", self.port)
            self.idle.append((conn, time.perf_counter()))

    def put(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        if conn is None:  # broken: a new one may be opened in its place
            self.opened -= 1
            return
        if self.waiting:
            self.waiting.pop(0).set_result(conn)
        else:
            self.idle.append((conn, time.perf_counter()))


async def _one(pool: _Pool, request: bytes) -> bool:
    conn = await pool.get()
    try:
        reader, writer = conn
        async with asyncio.timeout(10):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        pool.put(None)
        return False
    pool.put(conn)
    return head.startswith(b"HTTP/1.1 200") and body.startswith(b"good")


async def _open_loop_part(
    port: int,
    hosts: list[tuple[int, Host]],
    rate: float,
    count: int,
    start: float,
    limit: int,
    first_octet: int,
) -> tuple[list[float], list[float], int, float]:
    """Send `count` requests at `rate`/s from `start` (perf_counter); latencies from schedule."""
    pool = _Pool(port, limit)
    await pool.fill()
    latencies: list[float] = []
    lags: list[float] = []
    finished: list[float] = []
    failed = 0

    async def scheduled(n: int, at: float) -> None:
        nonlocal failed
        index, host = hosts[n % len(hosts)]
        myip = address(index, n // len(hosts), first_octet)
        target = f"/nic/update?hostname={host.name}&myip={myip}"
        request = (
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {host.auth}\r\n"
            "User-Agent: homing-bench-open\r\n\r\n"
        ).encode()
        lags.append(time.perf_counter() - at)
        if await _one(pool, request):
            finished.append(time.perf_counter())
            latencies.append(finished[-1] - at)
        else:
            failed += 1

    # Only the requests in flight are held: asyncio.wait() over every task of the run
    # took the loop for tens of ms, which the last requests' latency showed.
    pending: set[asyncio.Task[None]] = set()
    for n in range(count):
        at = start + n / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(scheduled(n, at))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=30)
    for (_, writer), _ in pool.idle:
        writer.close()
    return latencies, lags, failed, max(finished, default=start)


def _generator(args: tuple[int, list[tuple[int, Host]], float, int, float, int, int]) -> tuple:
    os.sched_setaffinity(0, {LOAD_CPU})
    # A run is bounded (count requests): no collector passes, whose pauses of tens of ms
    # were counted as the server's latency (p99.9 56 ms against a server answering at once).
    gc.disable()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_open_loop_part(*args))


def open_loop(
    port: int,
    hosts: list[Host],
    rate: float,
    seconds: float,
    generators: int,
    connections: int,
    first_octet: int = 10,
) -> dict:
    count = int(rate * seconds)
    start = time.perf_counter() + 1.0  # perf_counter is CLOCK_MONOTONIC: one clock for all
    indexed = list(enumerate(hosts))
    parts = [
        (port, indexed[g::generators], rate / generators, count // generators, start,
         max(1, connections // generators), first_octet)
        for g in range(generators)
    ]  # fmt: skip
    with multiprocessing.get_context("fork").Pool(generators) as pool:
        outcomes = pool.map(_generator, parts)
    latencies = sorted(x for lat, _, _, _ in outcomes for x in lat)
    lags = sorted(x for _, lag, _, _ in outcomes for x in lag)
    failed = sum(f for _, _, f, _ in outcomes)
    # From the first scheduled send to the last answer: below the offered rate if it queued.
    wall = max(last for _, _, _, last in outcomes) - start
    return {
        "generator": f"{generators} Python processes (asyncio, uvloop) on core {LOAD_CPU}",
        "offered_per_second": rate,
        "connections": connections,
        "scheduled": count // generators * generators,
        "acknowledged": len(latencies),
        "errors": failed,
        # Still waiting 30 s after the last scheduled send: given up, counted as lost.
        "unanswered": count // generators * generators - len(latencies) - failed,
        "seconds": round(wall, 2),
        "updates_per_second": round(len(latencies) / wall, 1),
        **percentiles(latencies),
        **percentiles(lags, prefix="generator_lag_"),
    }


# --- PostgreSQL's side: the CPU of the backends serving the server ----------------------


def _socket_ports(pids: list[int]) -> set[int]:
    """Local TCP ports of `pids`' sockets connected to PostgreSQL (127.0.0.1:5432)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and remote.endswith(":1538"):  # 5432 in hex
                ports.add(int(local.split(":")[1], 16))
    return ports


def _postgres_processes() -> dict[int, str]:
    """PID -> process title of every postgres process (`postgres: user db 127.0.0.1(port) ...`)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def _own_cpu(pid: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


class PostgresCpu:
    """PostgreSQL's CPU on behalf of one homing server: the backends its connections are
    served by (found by their client port in the process title), sampled every 0.2 s so
    a connection the pool closes mid-run still counts; and the cluster's own processes
    (WAL writer, checkpointer, ...), which work for every client of the cluster."""

    _AUX = ("walwriter", "checkpointer", "background writer", "autovacuum", "logical", "stats")

    def __init__(self, server_pid: int, *, poll: bool = True) -> None:
        """`poll`: sample meanwhile (False: at the start and the stop only, for a caller
        whose connections stay open and whose own CPU the sampling would add to)."""
        self.server_pid = server_pid
        self.start: dict[int, float] = {}  # backend pid -> CPU when first seen
        self.last: dict[int, float] = {}
        self.aux_start = self._aux()
        self._stop = threading.Event()
        self._sample(first=True)
        self._thread: threading.Thread | None = None
        if poll:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _aux(self) -> float:
        total = 0.0
        for pid, title in _postgres_processes().items():
            if any(word in title for word in self._AUX):
                with contextlib.suppress(OSError):
                    total += _own_cpu(pid)
        return total

    def _sample(self, first: bool = False) -> None:
        ports = _socket_ports(process_tree(self.server_pid))
        for pid, title in _postgres_processes().items():
            if not any(f"127.0.0.1({port})" in title for port in ports):
                continue
            try:
                cpu = _own_cpu(pid)
            except OSError:
                continue
            # Seen first mid-run: a connection opened during the run, from nothing.
            self.start.setdefault(pid, cpu if first else 0.0)
            self.last[pid] = cpu

    def _run(self) -> None:
        while not self._stop.wait(0.2):  # no event says a backend has worked: a bounded poll
            self._sample()

    def stop(self) -> dict[str, float]:
        """CPU seconds of the backends and of the cluster's own processes since the start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._sample()
        backends = sum(self.last[pid] - self.start[pid] for pid in self.last)
        return {
            "postgres_backends": len(self.last),
            "postgres_backend_cpu_s": round(backends, 2),
            "postgres_aux_cpu_s": round(self._aux() - self.aux_start, 2),
        }


# --- set-up ---------------------------------------------------------------------------


def bench_env(tmp: Path, postgres: bool) -> tuple[dict[str, str], str]:
    """homing's environment for a run in `tmp` (PostgreSQL: a schema of its own), and the schema."""
    extra: dict[str, str] = {}
    schema = ""
    if postgres:
        schema = f"homing_bench_{secrets.token_hex(4)}"
        extra = {"HOMING_DATABASE_URL": POSTGRES_URL, "HOMING_DATABASE_SCHEMA": schema}
    env = homing_env(tmp, free_port(), free_port(), HOMING_ABUSE_NOCHG_LIMIT="1000000", **extra)
    return env, schema


def add_hosts(env: dict[str, str], tmp: Path, count: int) -> list[Host]:
    """`count` hosts h0... in bench.example.net (which must exist), owned by user bench."""
    cli(env, "user", "add", "bench", "--email", "bench@example.org", "--password-stdin",
        stdin=PASSWORD + "\n")  # fmt: skip
    # One bulk import rather than one `homing host add` per client (seconds, not minutes).
    csv_path, secrets_path = tmp / "hosts.csv", tmp / "secrets.csv"
    csv_path.write_text(
        "name,ipv4\n"
        + "".join(f"h{i}.bench.example.net,10.255.{i // 250}.{i % 250 + 1}\n" for i in range(count))
    )
    cli(env, "host", "import", str(csv_path), "--owner", "bench",
        "--secrets-out", str(secrets_path))  # fmt: skip
    hosts = [Host(*line.split(",", 1)) for line in secrets_path.read_text().splitlines()[1:]]
    hosts.sort(key=lambda h: int(h.name.split(".")[0][1:]))
    return hosts


def background_load(
    port: int, hosts: list[Host], seconds: float, work: Path, name: str = "wrk-hosts.txt"
) -> subprocess.Popen[str]:
    """wrk updating `hosts` in a closed loop (see updates.lua) while something else is
    measured, on LOAD_CPU; their list goes to `work / name`."""
    hosts_file = work / name
    hosts_file.write_text("".join(f"{h.name},{h.auth}\n" for h in hosts))
    return subprocess.Popen(
        ["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", f"-c{len(hosts)}", f"-d{seconds:g}s",
         "-s", str(LUA), f"http://127.0.0.1:{port}", "--", str(hosts_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


async def want_alerts(env: dict[str, str]) -> None:
    """Each change then writes an outbox row in its batch, which the server's courier sends
    (into the log: no SMTP server is set)."""
    from homing.config import Settings
    from homing.service import accounts, alerts
    from homing.service.context import Homing

    settings = Settings(
        data_dir=Path(env["HOMING_DATA_DIR"]),
        database_url=env.get("HOMING_DATABASE_URL"),
        database_schema=env.get("HOMING_DATABASE_SCHEMA"),
    )
    homing = Homing.from_settings(settings)
    try:
        account = await accounts.authenticate(homing.db, "bench", PASSWORD)
        assert account is not None
        await alerts.save_settings(
            homing.db, account, email_on=True, webhook="", events=["address.changed"]
        )
    finally:
        await homing.db.close()


def drop_schema(schema: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc",
         f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip


def stop_server(server: Server, schema: str) -> None:
    """Stop the server we started; drop its PostgreSQL schema, if it had one."""
    server.stop()
    if schema:
        drop_schema(schema)


def start(env: dict[str, str], workers: int, cprofile: Path | None = None) -> Server:
    extra = ["--workers", str(workers)] if workers > 1 else []
    return start_server(env, cpu=0, extra_args=extra, cprofile=cprofile)


def print_cprofile(path: Path, top: int = 45) -> None:
    """The server's own functions by time spent in them, then by time under them."""
    import pstats

    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


def profiled(server: Server, seconds: float, name: str, work: Path) -> subprocess.Popen[str]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = work / name
    return subprocess.Popen(
        ["taskset", "-c", str(LOAD_CPU), py_spy, "record", "--pid", str(server.process.pid),
         "--subprocesses", "--duration", str(int(seconds)), "--rate", "200", "--nonblocking",
         "--threads", "--format", "raw", "--output", str(raw)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="closed loop: connections")
    parser.add_argument("--rate", type=float, help="open loop: offered updates per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--warmup", type=float, default=2, help="seconds of the same load first, not counted"
    )
    parser.add_argument("--hosts", type=int, help="open loop: hosts updated (default --clients)")
    parser.add_argument("--connections", type=int, default=200, help="open loop: at most")
    parser.add_argument("--generators", type=int, default=2, help="open loop: processes")
    parser.add_argument("--workers", type=int, default=1, help="homing serve --workers")
    parser.add_argument("--postgres", action="store_true", help="use PostgreSQL on 127.0.0.1")
    parser.add_argument("--profile", action="store_true", help="py-spy the server meanwhile")
    parser.add_argument(
        "--cprofile", type=Path, help="run the server under cProfile, stats to this file"
    )
    parser.add_argument(
        "--alerts", action="store_true", help="the account wants a mail per address change"
    )
    parser.add_argument("--signed", action="store_true", help="sign the zone (DNSSEC, NSEC3)")
    args = parser.parse_args()
    if args.seconds <= 0 or args.seconds > 600 or (args.rate is not None and args.rate <= 0):
        parser.error("--seconds must be in (0, 600], --rate positive")
    if not 0 <= args.warmup <= 60:
        parser.error("--warmup must be in [0, 60]")
    hosts_wanted = args.hosts or args.clients
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env, schema = bench_env(tmp, args.postgres)
        cli(env, "zone", "add", "bench.example.net")
        hosts = add_hosts(env, tmp, hosts_wanted)
        if args.signed:
            cli(env, "zone", "set", "bench.example.net", "--dnssec", "on")
        if args.alerts:
            asyncio.run(want_alerts(env))
        server = start(env, args.workers, args.cprofile)
        if args.warmup > 0:  # new connections prepare their statements: not the steady state
            if args.rate:
                open_loop(
                    server.http_port, hosts, args.rate, args.warmup, args.generators,
                    args.connections, first_octet=11,
                )  # fmt: skip
            else:
                closed_loop(server.http_port, hosts, args.clients, args.warmup, tmp, 11)
        load_before = load_average()
        spy = None
        mode = "open" if args.rate else "closed"
        raw_name = f"updates-{'pg' if args.postgres else 'sqlite'}-{mode}.pyspy"
        cpu_before = cpu_seconds(server.process.pid)
        postgres_cpu = PostgresCpu(server.process.pid) if args.postgres else None
        try:
            if args.profile:
                spy = profiled(server, args.seconds, raw_name, tmp)
                time.sleep(0.5)
            if args.rate:
                figures = open_loop(
                    server.http_port, hosts, args.rate, args.seconds, args.generators,
                    args.connections,
                )  # fmt: skip
            else:
                figures = closed_loop(server.http_port, hosts, args.clients, args.seconds, tmp)
            # The server's CPU per acknowledged update: what the machine's load cannot distort.
            cpu = cpu_seconds(server.process.pid) - cpu_before
            figures["server_cpu_s"] = round(cpu, 2)
            figures["server_cpu_us_per_update"] = round(1e6 * cpu / max(1, figures["acknowledged"]))
            if postgres_cpu is not None:
                figures.update(postgres_cpu.stop())
                for key in ("backend", "aux"):
                    spent = figures[f"postgres_{key}_cpu_s"]
                    figures[f"postgres_{key}_cpu_us_per_update"] = round(
                        1e6 * spent / max(1, figures["acknowledged"])
                    )
            if spy is not None:
                spy.wait(timeout=args.seconds + 60)
                raw = tmp / raw_name
                from dns_serving import summarise_profile  # matplotlib: only when profiling

                figures.update(summarise_profile(raw) if raw.exists() else {"profile": "none"})
                if raw.exists():
                    RESULTS.mkdir(parents=True, exist_ok=True)
                    shutil.copy(raw, RESULTS / raw_name)
        finally:
            if spy is not None:
                stop_process(spy)
            stop_server(server, schema)
    if args.cprofile:
        print_cprofile(args.cprofile)
    record(
        "updates",
        {
            "backend": "postgresql" if args.postgres else "sqlite",
            "mode": mode,
            "clients": args.clients if mode == "closed" else None,
            "hosts": hosts_wanted,
            "workers": args.workers,
            "warmup_s": args.warmup,
            "alerts": args.alerts,
            "signed": args.signed,
            "homing": homing_version(),
            "load_before": load_before,
            "load_after": load_average(),
            **figures,
        },
    )


if __name__ == "__main__":
    main()
