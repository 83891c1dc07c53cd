"""Real secondary name servers (NSD, Knot) as our own processes on loopback ports.

Each runs in the foreground with its config, state and log in a temporary directory
(never as the system service the Debian package installs), and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
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
        out = subprocess.run(
            [peers.program("nsd"), "-v"], capture_output=True, text=True, timeout=10
        )
        return (out.stdout + out.stderr).splitlines()[0].strip()


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
        out = subprocess.run(
            [peers.program("knotd"), "--version"], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip().splitlines()[0]
