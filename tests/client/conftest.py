"""Client test harness: a real `homing serve`, network namespaces, the client as a process.

Everything started here is stopped by its PID, and every namespace and veth created here
is deleted at teardown, also when the test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rdatatype
import pytest

from tests import peers

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
ZONE = "dyn.example.net"
PASSWORD = "correct horse battery"
READY_RE = re.compile(r"^READY dns=(?P<dns>\S+) http=(?P<http>\S+)$")
ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "results"


def free_port(address: str, kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port


def free_dns_port(address: str = "127.0.0.1", attempts: int = 50) -> int:
    """A port free for both TCP and UDP."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((address, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((address, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for TCP and UDP")


def clean_env() -> dict[str, str]:
    """The environment without HOMING_* settings or proxies (tests talk to loopback/veth)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HOMING_")
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    try:
        for raw in stream:  # type: ignore[attr-defined]
            lines.put(raw.decode("utf-8", "replace"))
    except (OSError, ValueError):
        pass
    finally:
        lines.put(None)


@dataclass
class HomingServer:
    """`homing serve` with its own data directory; configure it with `cli` before `start`."""

    data_dir: Path
    http_address: str = "127.0.0.1"
    dns_address: str = "127.0.0.1"
    http_port: int = 0
    dns_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.http_port = self.http_port or free_port(self.http_address)
        self.dns_port = self.dns_port or free_dns_port(self.dns_address)
        self.env = clean_env() | {
            "HOMING_DATA_DIR": str(self.data_dir),
            "HOMING_DNS_LISTEN": f"{self.dns_address}:{self.dns_port}",
            "HOMING_HTTP_LISTEN": f"{self.http_address}:{self.http_port}",
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def url(self) -> str:
        return f"http://{self.http_address}:{self.http_port}"

    @property
    def stderr_path(self) -> Path:
        return self.data_dir / "serve.stderr.log"

    def cli(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "homing", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            cwd=self.data_dir,
        )
        assert result.returncode == 0, f"homing {args} failed:\n{result.stdout}{result.stderr}"
        return result.stdout

    def new_host(self, label: str) -> tuple[str, str]:
        """Zone and user (first time) and a host; (fqdn, secret). Call before `start` so the
        server loads them at start rather than through its follower."""
        self.cli("zone", "add", ZONE, "--ns", f"ns1.{ZONE}", "--exist-ok")
        if not (self.data_dir / ".alice").exists():
            self.cli(
                "user", "add", "alice", "--email", "alice@example.org", "--password-stdin",
                input=PASSWORD + "\n",
            )  # fmt: skip
            (self.data_dir / ".alice").touch()
        fqdn = f"{label}.{ZONE}"
        secret = self.cli("host", "add", fqdn, "--owner", "alice").strip().splitlines()[-1]
        return fqdn, secret.strip()

    def start(self) -> None:
        stderr = self.stderr_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "homing", "serve"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=self.data_dir,
            )
        finally:
            stderr.close()
        lines: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None
        threading.Thread(target=_pump, args=(self.process.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise AssertionError(f"no READY within {READY_TIMEOUT}s\n{self.stderr_text()}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.stop()
                raise AssertionError(f"server exited before READY\n{self.stderr_text()}")
            if READY_RE.match(line.strip()):
                return

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        peers.stop(process, STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
        self.process = None

    async def resolve(self, name: str, rdtype: str = "A") -> list[str]:
        """The server's answer, asked with dnspython over UDP."""
        query = dns.message.make_query(name, rdtype)
        response = await dns.asyncquery.udp(query, self.dns_address, port=self.dns_port, timeout=2)
        want = dns.rdatatype.from_text(rdtype)
        return sorted(
            rd.to_text() for rrset in response.answer if rrset.rdtype == want for rd in rrset
        )


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., HomingServer]]:
    """Factory of servers (not started); all are stopped at teardown."""
    made: list[HomingServer] = []

    def make(name: str = "server", **kwargs: str) -> HomingServer:
        srv = HomingServer(tmp_path / name, **kwargs)  # type: ignore[arg-type]
        made.append(srv)
        return srv

    try:
        yield make
    finally:
        for srv in made:
            srv.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the logs of servers and clients started by the test."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and call.when in ("setup", "call"):
        tmp = getattr(item, "funcargs", {}).get("tmp_path")
        if isinstance(tmp, Path):
            for log in sorted(tmp.rglob("*.log")):
                report.sections.append(
                    (str(log.relative_to(tmp)), log.read_text(errors="replace")[-6000:])
                )


# ---------------------------------------------------------------------------
# network namespaces


def ip(
    *args: str, netns: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    command = [peers.program("ip")]
    if netns is not None:
        command += ["-netns", netns]
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=15)
    if check and result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


@dataclass
class Netns:
    """A namespace joined to the root namespace by a veth pair: 10.213.N.1 (root end) and
    10.213.N.2 (inside), 2001:db8:213:N::2 inside."""

    name: str
    subnet: int
    outside: str
    inside: str

    @property
    def gateway(self) -> str:
        return f"10.213.{self.subnet}.1"

    def v4(self, host: int) -> str:
        return f"10.213.{self.subnet}.{host}"

    def v6(self, host: int) -> str:
        return f"2001:db8:213:{self.subnet:x}::{host:x}"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return ip(*args, netns=self.name)


def _free_subnet(attempts: int = 50) -> int:
    used = ip("-o", "-4", "addr", "show").stdout
    for _ in range(attempts):
        n = secrets.randbelow(250) + 2
        if f" 10.213.{n}." not in used:
            return n
    raise RuntimeError("no free 10.213.N.0/24 subnet")


@pytest.fixture
def netns() -> Iterator[Netns]:
    """A fresh namespace with a veth pair; both are deleted at teardown."""
    if os.geteuid() != 0:
        peers.missing("root (network namespaces)")
    peers.program("ip")
    tag = secrets.token_hex(3)
    ns = Netns(name=f"homing-client-{os.getpid()}-{tag}", subnet=_free_subnet(),
               outside=f"hc{tag}o", inside=f"hc{tag}i")  # fmt: skip
    ip("netns", "add", ns.name)
    try:
        ip("link", "add", ns.outside, "type", "veth", "peer", "name", ns.inside)
        ip("link", "set", ns.inside, "netns", ns.name)
        ip("addr", "add", f"{ns.gateway}/24", "dev", ns.outside)
        ip("link", "set", ns.outside, "up")
        ns.run("link", "set", "lo", "up")
        # the published address moves within the subnet: keep the route when the primary goes
        subprocess.run(
            [peers.program("ip"), "netns", "exec", ns.name, "sysctl", "-qw",
             f"net.ipv4.conf.{ns.inside}.promote_secondaries=1"],
            check=True, capture_output=True, timeout=15,
        )  # fmt: skip
        ns.run("addr", "add", f"{ns.v4(2)}/24", "dev", ns.inside)
        ns.run("addr", "add", f"{ns.v6(2)}/64", "dev", ns.inside, "nodad")
        ns.run("link", "set", ns.inside, "up")
        yield ns
    finally:
        ip("netns", "del", ns.name, check=False)  # takes the veth pair with it
        ip("link", "del", ns.outside, check=False)


# ---------------------------------------------------------------------------
# the client process


@dataclass
class ClientProcess:
    """`homing client run` as a process; its stderr (the log) is read line by line."""

    process: asyncio.subprocess.Process
    log_path: Path
    lines: list[str] = field(default_factory=list)
    _new: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        with self.log_path.open("a") as log:
            while line := await self.process.stderr.readline():
                text = line.decode("utf-8", "replace").rstrip("\n")
                log.write(text + "\n")
                log.flush()
                self.lines.append(text)
                self._new.set()
        self._new.set()

    async def wait_for(self, pattern: str, within: float = 10.0, start: int = 0) -> tuple[int, str]:
        """The first log line from index `start` matching `pattern`: (index, line)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + within
        seen = start
        while True:
            for i in range(seen, len(self.lines)):
                if regex.search(self.lines[i]):
                    return i, self.lines[i]
            seen = len(self.lines)
            if self.process.returncode is not None and (
                self._reader is None or self._reader.done()
            ):
                raise AssertionError(
                    f"client exited ({self.process.returncode}) without {pattern!r}:\n"
                    + "\n".join(self.lines)
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no log line {pattern!r} within {within}s:\n" + "\n".join(self.lines)
                )
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), remaining)

    def count(self, pattern: str) -> int:
        regex = re.compile(pattern)
        return sum(1 for line in self.lines if regex.search(line))

    async def stop(self) -> int:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGKILL)
                await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reader, STOP_TIMEOUT)
        assert self.process.returncode is not None
        return self.process.returncode


def client_command(*args: str, netns: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "homing", "client", *args]
    if netns is not None:
        command = [peers.program("ip"), "netns", "exec", netns, *command]
    return command


@pytest.fixture
async def start_client(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Start `homing client run --config FILE` (in a namespace if given); stopped at teardown."""
    started: list[ClientProcess] = []

    async def start(config: Path, netns: str | None = None, verbose: bool = False) -> ClientProcess:
        args = ["run", "--config", str(config)] + (["--verbose"] if verbose else [])
        process = await asyncio.create_subprocess_exec(
            *client_command(*args, netns=netns),
            env=clean_env() | {"PYTHONUNBUFFERED": "1"},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
        )
        client = ClientProcess(process, tmp_path / f"client-{len(started) + 1}.log")
        client.start_reading()
        started.append(client)
        return client

    try:
        yield start
    finally:
        for client in started:
            await client.stop()


async def run_client(*args: str, cwd: Path, within: float = 60.0) -> tuple[int, str, str]:
    """`homing client ARGS` to completion: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        *client_command(*args),
        env=clean_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write_config(
    path: Path,
    *,
    servers: list[str],
    hosts: list[dict[str, object]],
    cache_dir: Path | None = None,
    extra: str = "",
) -> Path:
    """A client TOML file."""
    lines = [f'cache_dir = "{cache_dir or path.parent / "cache"}"', extra]
    for url in servers:
        lines += ["[[server]]", f'url = "{url}"']
    for host in hosts:
        lines.append("[[host]]")
        for key, value in host.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int | float):
                lines.append(f"{key} = {value}")
            else:
                lines.append(f'{key} = "{value}"')
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------
# a counting forwarder in front of the real server


@dataclass
class CountingProxy:
    """Forwards TCP to the real server and records each request's path (no query string)."""

    target: tuple[str, int]
    paths: list[str] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, first: bool) -> None:
            try:
                started = not first
                while data := await src.read(65536):
                    if not started:
                        request_line = data.split(b"\r\n", 1)[0].decode("latin-1")
                        parts = request_line.split(" ")
                        if len(parts) >= 2:
                            self.paths.append(parts[1].split("?", 1)[0])
                        started = True
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def updates(self) -> int:
        return sum(1 for p in self.paths if p in ("/nic/update", "/dvr/update"))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def proxy_factory() -> AsyncIterator[Callable[[tuple[str, int]], object]]:
    made: list[CountingProxy] = []

    async def make(target: tuple[str, int]) -> CountingProxy:
        proxy = CountingProxy(target)
        await proxy.start()
        made.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in made:
            await proxy.close()


def record_result(name: str, text: str) -> None:
    """Append a measurement to bench/results/client.txt (not committed)."""
    BENCH.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with (BENCH / "client.txt").open("a") as f:
        f.write(f"{stamp} {name} {text}\n")
