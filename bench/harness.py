"""Shared pieces of the benchmarks: start homing pinned to a core, set up hosts, record results."""

from __future__ import annotations

import json
import os
import platform
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def homing_env(data_dir: Path, dns_port: int, http_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMING_")}
    env.update(
        HOMING_DATA_DIR=str(data_dir),
        HOMING_DNS_LISTEN=f"127.0.0.1:{dns_port}",
        HOMING_HTTP_LISTEN=f"127.0.0.1:{http_port}",
        # Every query and update comes from one loopback address, standing for many
        # clients: response rate limiting and the per-source connection cap would
        # measure themselves, not the server (bench/rrl.py measures the former).
        HOMING_RRL_RATE="0",
        HOMING_HTTP_CONNECTIONS_PER_SOURCE="100000",
    )
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [sys.executable, "-m", "homing", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return result.stdout


@dataclass
class Server:
    process: subprocess.Popen[str]
    dns_port: int
    http_port: int

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def start_server(
    env: dict[str, str],
    cpu: int | None = 0,
    extra_args: list[str] | None = None,
    cprofile: Path | None = None,
) -> Server:
    """homing serve pinned to one core; returns once it printed READY.

    With `cprofile`, the server runs under cProfile, which writes its stats there on exit.
    """
    python = [sys.executable, *(["-m", "cProfile", "-o", str(cprofile)] if cprofile else [])]
    command = [*python, "-m", "homing", "serve", *(extra_args or [])]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until READY (or EOF if it failed)
    if not line.startswith("READY"):
        process.kill()
        raise RuntimeError(f"homing serve did not start: {line!r}")
    dns = int(env["HOMING_DNS_LISTEN"].rsplit(":", 1)[1])
    http = int(env["HOMING_HTTP_LISTEN"].rsplit(":", 1)[1])
    return Server(process, dns, http)


def record(name: str, result: dict[str, object]) -> Path:
    """Append one run's figures, with versions and the command, to bench/results/NAME.jsonl."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "command": " ".join(sys.argv),
        **result,
    }
    path = RESULTS / f"{name}.jsonl"
    with path.open("a") as out:
        out.write(json.dumps(result) + "\n")
    print(json.dumps(result, indent=2))
    return path


# --- helpers for the DNS serving and scale scenarios -------------------------------------


def proc_status_kib(pid: int, field: str = "VmRSS") -> int:
    """One kB figure from /proc/PID/status (0 when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (NSD and BIND fork helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of `pid` and its descendants so far (their threads too)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def memory_kib(pid: int) -> dict[str, int]:
    """RSS of `pid`, and RSS and PSS summed over its process tree (PSS counts shared pages once)."""
    tree = process_tree(pid)
    pss = 0
    for member in tree:
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return {
        "rss_kib": proc_status_kib(pid),
        "tree_rss_kib": sum(proc_status_kib(p) for p in tree),
        "tree_pss_kib": pss,
        "processes": len(tree),
    }


def dns_query(name: str, qtype: int = 1, ident: int = 0x4242) -> bytes:
    """A plain DNS query (no EDNS) built by hand, so the harness needs no DNS library."""
    wire = bytearray(struct.pack("!HHHHHH", ident, 0, 1, 0, 0, 0))
    for label in name.rstrip(".").split("."):
        wire += bytes([len(label)]) + label.encode("ascii")
    wire += b"\x00" + struct.pack("!HH", qtype, 1)
    return bytes(wire)


def ask(port: int, name: str, qtype: int = 1, timeout: float = 0.2) -> int | None:
    """Send one UDP query to 127.0.0.1:port; the answer's rcode and ancount, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(dns_query(name, qtype), ("127.0.0.1", port))
            reply = sock.recv(4096)
        except OSError:
            return None
    if len(reply) < 12:
        return None
    ancount: int = struct.unpack_from("!H", reply, 6)[0]
    return (reply[3] & 0xF) | (ancount << 4)


def wait_answer(port: int, name: str, deadline_s: float, process: subprocess.Popen[str]) -> float:
    """Poll until `name` A is answered NOERROR with an answer; seconds waited (bounded)."""
    started = time.perf_counter()
    for _ in range(int(deadline_s / 0.05) + 1):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering")
        result = ask(port, name, 1, timeout=0.05)
        if result is not None and result & 0xF == 0 and result >> 4 > 0:
            return time.perf_counter() - started
        time.sleep(0.01)
    raise RuntimeError(f"no answer for {name} on port {port} within {deadline_s} s")


def stop_process(process: subprocess.Popen[str], timeout: float = 20) -> None:
    """SIGTERM the process we started (by PID), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def load_average() -> str:
    return Path("/proc/loadavg").read_text().strip()


def homing_version() -> str:
    """homing's git commit (and whether the tree has changes), for the record."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return f"homing 0.1.0 @ {commit} (Python {platform.python_version()}, uvloop)"


async def load_index(env: dict[str, str]) -> Any:
    """The load path of `homing serve` up to the zone index, in this process, on the store
    `env` names: migrate, then one follower sync."""
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
