"""Shared pieces of the benchmarks: start homing pinned to a core, set up hosts, record results."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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
        **extra,
    )
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


def start_server(env: dict[str, str], cpu: int | None = 0) -> Server:
    """homing serve pinned to one core; returns once it printed READY."""
    command = [sys.executable, "-m", "homing", "serve"]
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
