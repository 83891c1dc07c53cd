"""Real secondary name servers (NSD, Knot, BIND, PowerDNS) as our own processes on loopback ports.

Each runs in the foreground with its config, state and log in a temporary directory
(never as the system service the Debian package installs), and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rdtypes.ANY.SOA

from tests import peers
from tests.e2e.conftest import LOOPBACK, free_dns_port

STOP_TIMEOUT = 10.0
QUERY_TIMEOUT = 0.5
POLL_INTERVAL = 0.01
# Where Debian's pdns-backend-sqlite3 puts the backend's schema.
POWERDNS_SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")


def version_line(program: str, flag: str) -> str:
    """The first line a name server prints of its version (some print it on stderr)."""
    out = subprocess.run([peers.program(program), flag], capture_output=True, text=True, timeout=10)
    return (out.stdout + out.stderr).strip().splitlines()[0].strip()


def named_options(directory: Path, port: int, key: str) -> str:
    """named.conf's options and TSIG key for a BIND of ours on a loopback port."""
    algorithm, key_name, secret = key.split(":")
    return f"""options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    listen-on port {port} {{ {LOOPBACK}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    notify no;
}};
controls {{ }};
key "{key_name}" {{
    algorithm {algorithm};
    secret "{secret}";
}};
"""


@dataclass
class Secondary:
    """A running secondary: its name, port, directory and process."""

    kind: ClassVar[str] = "secondary"
    directory: Path
    port: int = field(default_factory=free_dns_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.kind}.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def command(self) -> list[str]:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        finally:
            log.close()

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)

    def assert_running(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        assert code is None, f"{self.kind} exited with {code}:\n{self.log_text()}"

    # -- asking it ---------------------------------------------------------

    def query(self, name: str, rdtype: str) -> dns.message.Message | None:
        """One UDP question; None when it does not answer in time."""
        q = dns.message.make_query(name, rdtype)
        q.flags = 0  # no RD: ask the authoritative data only
        try:
            return dns.query.udp(q, LOOPBACK, timeout=QUERY_TIMEOUT, port=self.port)
        except (dns.exception.Timeout, OSError):
            return None

    def addresses(self, name: str) -> list[str]:
        answer = self.query(name, "A")
        if answer is None or answer.rcode() != dns.rcode.Rcode.NOERROR:
            return []
        return sorted(r.to_text() for rrset in answer.answer for r in rrset)

    def serial(self, zone: str) -> int | None:
        answer = self.query(zone, "SOA")
        if answer is None or answer.rcode() != dns.rcode.Rcode.NOERROR:
            return None
        for rrset in answer.answer:
            for rdata in rrset:
                if isinstance(rdata, dns.rdtypes.ANY.SOA.SOA):
                    return int(rdata.serial)
        return None

    def wait_for(self, what: str, done: object, timeout: float) -> float:
        """Seconds until `done()` holds, polling the secondary's answers.

        A secondary tells nobody when it has loaded a transfer, so this polls (every
        10 ms, bounded by `timeout`); AssertionError with its log when it never holds.
        """
        assert callable(done)
        started = time.monotonic()
        deadline = started + timeout
        while not done():
            self.assert_running()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.kind}: {what} not within {timeout}s\n{self.log_text()[-4000:]}"
                )
            time.sleep(POLL_INTERVAL)  # polling interval: no event exists (see docstring)
        return time.monotonic() - started


@dataclass
class Nsd(Secondary):
    kind: ClassVar[str] = "nsd"

    def configure(self, zone: str, primary_port: int) -> None:
        (self.directory / "xfr").mkdir(parents=True, exist_ok=True)
        d = self.directory
        (d / "nsd.conf").write_text(
            f"""server:
    ip-address: {LOOPBACK}@{self.port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    pidfile: "{d}/nsd.pid"
    xfrdfile: "{d}/xfrd.state"
    zonelistfile: "{d}/zone.list"
    xfrdir: "{d}/xfr"
    logfile: "{self.log_path}"
    verbosity: 2
    server-count: 1
    xfrd-reload-timeout: 0
    zonefiles-write: 0
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: "{d}/{zone}.zone"
    request-xfr: {LOOPBACK}@{primary_port} NOKEY
    allow-notify: {LOOPBACK} NOKEY
"""
        )

    def command(self) -> list[str]:
        return [peers.program("nsd"), "-d", "-c", str(self.directory / "nsd.conf")]

    def version(self) -> str:
        return version_line("nsd", "-v")


@dataclass
class Knot(Secondary):
    kind: ClassVar[str] = "knot"

    def configure(self, zone: str, primary_port: int, key: str) -> None:
        algorithm, key_name, secret = key.split(":")
        d = self.directory
        (d / "db").mkdir(parents=True, exist_ok=True)
        (d / "zones").mkdir(parents=True, exist_ok=True)
        (d / "knot.conf").write_text(
            f"""server:
    rundir: "{d}"
    listen: {LOOPBACK}@{self.port}
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
key:
  - id: {key_name}
    algorithm: {algorithm}
    secret: {secret}
remote:
  - id: homing
    address: {LOOPBACK}@{primary_port}
    key: {key_name}
acl:
  - id: notify-from-homing
    address: {LOOPBACK}
    action: notify
template:
  - id: default
    storage: "{d}/zones"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
zone:
  - domain: {zone}
    master: homing
    acl: notify-from-homing
"""
        )

    def command(self) -> list[str]:
        return [peers.program("knotd"), "-c", str(self.directory / "knot.conf")]

    def version(self) -> str:
        return version_line("knotd", "--version")


@dataclass
class Bind(Secondary):
    """BIND 9 as a secondary in the foreground (`named -g`), checking and transferring by TSIG."""

    kind: ClassVar[str] = "bind"

    def configure(self, zone: str, primary_port: int, key: str) -> None:
        key_name = key.split(":")[1]
        d = self.directory
        (d / "named.conf").write_text(
            named_options(d, self.port, key)
            + f"""server {LOOPBACK} {{
    keys {{ "{key_name}"; }};
    request-ixfr yes;
}};
zone "{zone}" {{
    type secondary;
    primaries {{ {LOOPBACK} port {primary_port}; }};
    file "{d}/{zone}.db";
    allow-notify {{ {LOOPBACK}; }};
}};
"""
        )

    def command(self) -> list[str]:
        return [peers.program("named"), "-g", "-c", str(self.directory / "named.conf")]

    def version(self) -> str:
        return version_line("named", "-v")


@dataclass
class PowerDns(Secondary):
    """PowerDNS Authoritative with its SQLite backend (gsqlite3) as a secondary, in the foreground.

    The zone, its TSIG key for SOA checks and transfers and its IXFR switch are set
    with pdnsutil in the backend's database. (The bind backend takes the transfer but
    does not apply IXFR deltas to its zone file, so it is not used.)

    Its packet and query caches are off. The tests poll it every 10 ms; a query read from
    the backend just before an IXFR commits could be cached after the cache purge
    that follows the commit, and answered stale for the cache's 20 s (seen once in CI:
    the log said "got 1 delta, zone committed with serial 3" and the old address
    stayed for the whole 10 s wait). What is under test is homing's NOTIFY and IXFR.
    """

    kind: ClassVar[str] = "powerdns"

    def configure(self, zone: str, primary_port: int, key: str) -> None:
        algorithm, key_name, secret = key.split(":")
        d = self.directory
        with sqlite3.connect(d / "pdns.sqlite3") as conn:
            conn.executescript(POWERDNS_SCHEMA.read_text())
        conn.close()
        (d / "pdns.conf").write_text(
            f"""launch=gsqlite3
gsqlite3-database={d}/pdns.sqlite3
local-address={LOOPBACK}:{self.port}
secondary=yes
allow-notify-from={LOOPBACK}/32
xfr-cycle-interval=1
security-poll-suffix=
socket-dir={d}
daemon=no
guardian=no
disable-syslog=yes
loglevel=6
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
"""
        )
        for args in (
            ["create-secondary-zone", zone, f"{LOOPBACK}:{primary_port}"],
            ["import-tsig-key", key_name, algorithm, secret],
            ["set-meta", zone, "AXFR-MASTER-TSIG", key_name],
            ["set-meta", zone, "IXFR", "1"],  # PowerDNS asks for AXFR unless told
        ):
            subprocess.run(
                [peers.program("pdnsutil"), f"--config-dir={d}", *args],
                check=True,
                capture_output=True,
                timeout=30,
            )

    def command(self) -> list[str]:
        return [peers.program("pdns_server"), f"--config-dir={self.directory}"]

    def version(self) -> str:
        if not POWERDNS_SCHEMA.exists():
            peers.missing("pdns-backend-sqlite3")
        peers.program("pdnsutil")
        out = subprocess.run(
            [peers.program("pdns_server"), "--version"], capture_output=True, text=True, timeout=10
        )
        text = out.stdout + out.stderr
        line = next(x for x in text.splitlines() if "PowerDNS" in x)
        return line[line.index("PowerDNS") :].split(" (")[0]
