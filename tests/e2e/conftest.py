"""The end-to-end harness: a real `homing serve` process on free loopback ports.

`server` (function-scoped) starts `python -m homing serve` with a fresh data directory,
waits for its `READY dns=... http=...` line, and hands the test a `Server` object with
the admin CLI, a host factory, and `dig`/`kdig` wrappers. The process is always
stopped by its PID at teardown; when a test fails, the server's stderr is attached
to the report as its own section.
"""

from __future__ import annotations

import contextlib
import csv
import io
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

import pytest

from tests import peers

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 90.0  # migrating a fresh store, loading it and binding (slow on a loaded machine)
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3
CLI_TIMEOUT = 60.0
DIG_TIMEOUT = 15.0
ZONE = "dyn.example.net"
PASSWORD = "correct horse battery staple"
READY_RE = re.compile(r"^READY dns=(?P<dns>\S+) http=(?P<http>\S+)(?: workers=\d+)?$")


# ---------------------------------------------------------------------------
# free ports


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def free_dns_port(attempts: int = 50) -> int:
    """A loopback port free for both TCP and UDP (DNS listens on both)."""
    for _ in range(attempts):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tcp.bind((LOOPBACK, 0))
            port: int = tcp.getsockname()[1]
            try:
                udp.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
        finally:
            tcp.close()
            udp.close()
    raise RuntimeError(f"no port free for both TCP and UDP after {attempts} attempts")


# ---------------------------------------------------------------------------
# dig / kdig


@dataclass
class Record:
    name: str
    ttl: int
    rdtype: str
    data: str


@dataclass
class DigAnswer:
    """One parsed dig/kdig answer."""

    status: str
    flags: frozenset[str]
    answer: list[Record]
    authority: list[Record]
    output: str

    @property
    def aa(self) -> bool:
        return "aa" in self.flags

    def values(self, rdtype: str) -> list[str]:
        return sorted(r.data for r in self.answer if r.rdtype == rdtype.upper())

    def __str__(self) -> str:
        return self.output


# dig: `;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: N` / `;; flags: qr aa; QUERY: 1, ...`
# kdig: `;; ->>HEADER<<- opcode: QUERY; status: NOERROR; id: N` / `;; Flags: qr aa; QUERY: 1; ...`
_STATUS_RE = re.compile(r"->>HEADER<<-.*?status: (?P<status>[A-Z]+)", re.IGNORECASE)
_FLAGS_RE = re.compile(r"^;; flags: (?P<flags>[a-z ]*);", re.IGNORECASE | re.MULTILINE)
_SECTION_RE = re.compile(r"^;; (?P<name>[A-Z ]+) SECTION:", re.IGNORECASE)


def parse_dig(output: str) -> DigAnswer:
    """Parse dig's `+noall +comments +answer +authority` output, or kdig's default output."""
    status = _STATUS_RE.search(output)
    flags = _FLAGS_RE.search(output)
    if status is None or flags is None:
        raise AssertionError(f"no DNS header in output:\n{output}")
    sections: dict[str, list[Record]] = {"ANSWER": [], "AUTHORITY": []}
    current: str | None = None
    for line in output.splitlines():
        header = _SECTION_RE.match(line)
        if header:
            current = header.group("name").strip().upper()
            continue
        if not line.strip() or line.startswith(";"):
            if not line.strip():
                current = None if current in sections else current
            continue
        if current in sections:
            parts = line.split(None, 4)
            if len(parts) == 5 and parts[2].upper() == "IN":
                name, ttl, _cls, rdtype, data = parts
                sections[current].append(Record(name.lower(), int(ttl), rdtype.upper(), data))
    return DigAnswer(
        status=status.group("status").upper(),
        flags=frozenset(flags.group("flags").lower().split()),
        answer=sections["ANSWER"],
        authority=sections["AUTHORITY"],
        output=output,
    )


# ---------------------------------------------------------------------------
# the server process


class ServerError(AssertionError):
    """The server did not start, or exited when it should not have."""


@dataclass
class Server:
    """A running (or restartable) `homing serve` and the tools to talk to it."""

    data_dir: Path
    dns_port: int
    http_port: int
    log_dir: Path
    dig_path: str
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()  # extra `homing serve` arguments, e.g. ("--workers", "2")
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    last_exit: int | None = None
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _zones: set[str] = field(default_factory=set)
    _users: set[str] = field(default_factory=set)
    _hosts: int = 0

    # -- addresses ---------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def http_hostport(self) -> str:
        return f"{LOOPBACK}:{self.http_port}"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"server-{self.starts}.stderr.log"

    def stderr_text(self) -> str:
        """The stderr of every start so far, newest last."""
        parts = []
        for n in range(1, self.starts + 1):
            path = self.log_dir / f"server-{n}.stderr.log"
            if path.exists():
                text = path.read_text(errors="replace")
                parts.append(f"--- start #{n} ({path}) ---\n{text}")
        return "\n".join(parts)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Start `homing serve` and wait (bounded) for its READY line."""
        if self.process is not None and self.process.poll() is None:
            raise ServerError("server already running")
        self.starts += 1
        self._lines = queue.Queue()
        stderr = self.stderr_path.open("wb")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "homing", "serve", *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=self.data_dir,
            )
        finally:
            stderr.close()
        # A reader thread turns stdout into a queue of lines, so waiting for READY is a
        # bounded blocking get (no sleep loop), and stdout never fills up afterwards.
        assert self.process.stdout is not None
        threading.Thread(target=_pump, args=(self.process.stdout, self._lines), daemon=True).start()
        self._await_ready()

    def _await_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        seen: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._abort(f"no READY line within {READY_TIMEOUT:.0f}s; stdout: {seen!r}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue  # the deadline check above ends the wait
            if line is None:
                code = self.process.wait(timeout=STOP_TIMEOUT)
                self._abort(f"server exited with {code} before READY; stdout: {seen!r}")
            seen.append(line)
            match = READY_RE.match(line.strip())
            if match:
                want_dns = f"{LOOPBACK}:{self.dns_port}"
                want_http = f"{LOOPBACK}:{self.http_port}"
                if (match["dns"], match["http"]) != (want_dns, want_http):
                    self._abort(f"READY on unexpected addresses: {line.strip()!r}")
                return

    def _abort(self, why: str) -> NoReturn:
        self._terminate()
        raise ServerError(f"{why}\nserver stderr:\n{self.stderr_text()}")

    def _terminate(self) -> int | None:
        """SIGTERM by PID, then SIGKILL if it does not stop in time; the exit code."""
        process = self.process
        if process is None:
            return None
        peers.stop(process, STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    def stop(self) -> int | None:
        """Stop the server cleanly (SIGTERM); its exit code."""
        return self._terminate()

    def kill(self) -> int:
        """SIGKILL the server (by its PID): a crash, no chance to flush anything."""
        process = self.process
        assert process is not None and process.poll() is None, "server is not running"
        os.kill(process.pid, signal.SIGKILL)
        code = process.wait(timeout=STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
        return code

    def restart(self) -> None:
        """Stop (SIGTERM) if running, then start again on the same ports and data dir."""
        if self.process is not None and self.process.poll() is None:
            self.last_exit = self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- admin CLI ---------------------------------------------------------

    def cli(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`python -m homing ARGS` against the same store; asserts success unless check=False."""
        result = subprocess.run(
            [sys.executable, "-m", "homing", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            cwd=self.data_dir,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"homing {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def ensure_zone(self, zone: str = ZONE) -> None:
        if zone not in self._zones:
            self.cli("zone", "add", zone, "--ns", f"ns1.{zone}")
            self._zones.add(zone)
            # The zone was created by another process: the server learns of it through its
            # journal follower (~0.5 s). There is no event to wait on from here, so poll the
            # zone's SOA with a bounded deadline.
            self.wait_dns(zone, "SOA", lambda a: a.status == "NOERROR" and bool(a.values("SOA")))

    def ensure_user(self, user: str = "alice") -> None:
        if user not in self._users:
            self.cli(
                "user", "add", user, "--email", f"{user}@example.net", "--password-stdin",
                input=PASSWORD + "\n",
            )  # fmt: skip
            self._users.add(user)

    def new_host(
        self, label: str | None = None, *, zone: str = ZONE, owner: str = "alice"
    ) -> tuple[str, str]:
        """Create zone (once), user (once) and a host; (fqdn, update secret)."""
        self.ensure_zone(zone)
        self.ensure_user(owner)
        self._hosts += 1
        fqdn = f"{label or f'host{self._hosts}'}.{zone}"
        result = self.cli("host", "add", fqdn, "--owner", owner)
        lines = result.stdout.strip().splitlines()
        assert lines, f"host add printed nothing\n{result.stderr}"
        secret = lines[-1].strip()
        assert secret and " " not in secret, f"no secret on the last line: {result.stdout!r}"
        return fqdn, secret

    def new_hosts(
        self, labels: Sequence[str], *, zone: str = ZONE, owner: str = "alice"
    ) -> list[tuple[str, str]]:
        """Many hosts with one `homing host import` (one CLI start, not one per host)."""
        self.ensure_zone(zone)
        self.ensure_user(owner)
        fqdns = [f"{label}.{zone}" for label in labels]
        listing = self.data_dir / f"hosts-{self._hosts}.csv"
        listing.write_text("name\n" + "".join(f"{fqdn}\n" for fqdn in fqdns))
        result = self.cli("host", "import", str(listing), "--owner", owner)
        secrets = dict(csv.reader(io.StringIO(result.stdout)))
        missing = [fqdn for fqdn in fqdns if not secrets.get(fqdn)]
        assert not missing, f"no secret printed for {missing}: {result.stdout!r}"
        self._hosts += len(fqdns)
        return [(fqdn, secrets[fqdn]) for fqdn in fqdns]

    # -- DNS ---------------------------------------------------------------

    def dig(self, name: str, rdtype: str = "A", *, tcp: bool = False) -> DigAnswer:
        """Ask the server with the real dig (`+norec +time=2 +tries=1`)."""
        args = [
            self.dig_path, f"@{LOOPBACK}", "-p", str(self.dns_port),
            "+norec", "+time=2", "+tries=1", "+noall", "+comments", "+answer", "+authority",
        ]  # fmt: skip
        if tcp:
            args.append("+tcp")
        args += [name, rdtype]
        result = subprocess.run(args, capture_output=True, text=True, timeout=DIG_TIMEOUT)
        if result.returncode != 0:
            raise AssertionError(
                f"dig {name} {rdtype} exited {result.returncode}\n{result.stdout}{result.stderr}"
                f"\nserver stderr:\n{self.stderr_text()}"
            )
        return parse_dig(result.stdout)

    def kdig(self, name: str, rdtype: str = "A", *, tcp: bool = True) -> DigAnswer:
        """Ask the server with Knot's kdig (default over TCP)."""
        kdig = peers.program("kdig")
        args = [
            kdig, f"@{LOOPBACK}", "-p", str(self.dns_port),
            "+norec", "+time=2", "+retry=0",
        ]  # fmt: skip
        if tcp:
            args.append("+tcp")
        args += [name, rdtype]
        result = subprocess.run(args, capture_output=True, text=True, timeout=DIG_TIMEOUT)
        if result.returncode != 0:
            raise AssertionError(
                f"kdig {name} {rdtype} exited {result.returncode}\n{result.stdout}{result.stderr}"
            )
        return parse_dig(result.stdout)

    def wait_dns(
        self,
        name: str,
        rdtype: str,
        done: Callable[[DigAnswer], bool],
        timeout: float = 5.0,
    ) -> DigAnswer:
        """Poll DNS until `done(answer)`, bounded; only for changes made by another process
        (the CLI), which the server picks up through its journal follower with no event we
        could wait on."""
        deadline = time.monotonic() + timeout
        answer = self.dig(name, rdtype)
        while not done(answer):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"DNS did not converge within {timeout}s for {name} {rdtype}; last:\n{answer}"
                )
            time.sleep(0.1)  # polling interval: no event is available (see docstring)
            answer = self.dig(name, rdtype)
        return answer


def _pump(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    """Copy a binary stream into a queue of decoded lines; None at EOF."""
    try:
        for raw in stream:
            lines.put(raw.decode("utf-8", "replace"))
    except (OSError, ValueError):
        pass  # closed under us at teardown
    finally:
        lines.put(None)


# ---------------------------------------------------------------------------
# fixtures


SERVER_KEY = pytest.StashKey[Server]()


@pytest.fixture(scope="session")
def dig_path() -> str:
    return peers.program("dig")


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path, dig_path: str) -> Iterator[Server]:
    """A fresh `homing serve` on free loopback ports; stopped by PID at teardown.

    Parametrize indirectly with "postgresql" to run it on the local PostgreSQL, in a
    schema of its own that is dropped afterwards (SQLite in the data dir otherwise).
    """
    backend = getattr(request, "param", "sqlite")
    data_dir = tmp_path / "data"
    log_dir = tmp_path / "logs"
    data_dir.mkdir()
    log_dir.mkdir()
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith("HOMING_") or k in _KEEP_ENV
    }
    schema = None
    if backend == "postgresql":
        schema = f"homing_e2e_{os.getpid()}_{secrets.token_hex(4)}"
        base_env.update(HOMING_DATABASE_URL=POSTGRES_URL, HOMING_DATABASE_SCHEMA=schema)
    # Other servers share this machine: a port may be taken between our probe and the
    # server's bind. Retry with new ports a bounded number of times.
    for attempt in range(1, START_ATTEMPTS + 1):
        dns_port = free_dns_port()
        http_port = _free_tcp_port()
        env = dict(base_env)
        env.update(
            HOMING_DATA_DIR=str(data_dir),
            HOMING_DNS_LISTEN=f"{LOOPBACK}:{dns_port}",
            HOMING_HTTP_LISTEN=f"{LOOPBACK}:{http_port}",
            # Every client here talks from loopback, and tests publish its address.
            HOMING_ALLOW_LOCAL_ADDRESSES="true",
            # Tests that count answers send bursts from that one address: no rate limit.
            HOMING_RRL_RATE="0",
            PYTHONUNBUFFERED="1",
        )
        srv = Server(
            data_dir=data_dir,
            dns_port=dns_port,
            http_port=http_port,
            log_dir=log_dir / f"attempt-{attempt}",
            dig_path=dig_path,
            env=env,
        )
        srv.log_dir.mkdir()
        request.node.stash[SERVER_KEY] = srv
        try:
            srv.start()
        except ServerError as exc:
            if "cannot listen" in str(exc) and attempt < START_ATTEMPTS:
                continue
            raise
        break
    try:
        yield srv
    finally:
        srv.stop()
        if schema is not None:
            _drop_schema(schema)


@contextlib.contextmanager
def module_server(base: Path, **settings: str) -> Iterator[Server]:
    """A `homing serve` in `base` (its data and logs there) for a module's tests, with the
    test defaults and `settings` (HOMING_* variables) on top; stopped by PID afterwards."""
    (base / "data").mkdir()
    (base / "logs").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMING_") or k in _KEEP_ENV}
    dns_port, http_port = free_dns_port(), _free_tcp_port()
    env.update(
        HOMING_DATA_DIR=str(base / "data"),
        HOMING_DNS_LISTEN=f"{LOOPBACK}:{dns_port}",
        HOMING_HTTP_LISTEN=f"{LOOPBACK}:{http_port}",
        HOMING_ALLOW_LOCAL_ADDRESSES="true",
        HOMING_RRL_RATE="0",
        PYTHONUNBUFFERED="1",
        **settings,
    )
    server = Server(
        data_dir=base / "data",
        dns_port=dns_port,
        http_port=http_port,
        log_dir=base / "logs",
        dig_path=peers.program("dig"),
        env=env,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _drop_schema(schema: str) -> None:
    psql = peers.program("psql")
    subprocess.run(
        [
            psql,
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-q",
            "-c",
            f'DROP SCHEMA IF EXISTS "{schema}" CASCADE',
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


_KEEP_ENV = frozenset({"HOMING_REQUIRE_PEERS"})
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the server's stderr to the test's report."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and call.when in ("setup", "call"):
        srv = item.stash.get(SERVER_KEY, None)
        if srv is not None:
            report.sections.append(("homing server stderr", srv.stderr_text() or "(empty)"))
