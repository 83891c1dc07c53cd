"""A real validating resolver: unbound on a loopback port, the test zone's trust anchor
given, its questions for the zone sent to homing (a stub zone)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests import peers
from tests.e2e.conftest import LOOPBACK, DigAnswer, free_dns_port, parse_dig

READY_TIMEOUT = 30.0
DIG_TIMEOUT = 15.0


@dataclass
class Resolver:
    port: int
    config: Path
    dig_path: str

    def dig(self, name: str, rdtype: str = "A") -> DigAnswer:
        """Ask the resolver (recursion, DNSSEC records shown)."""
        args = [
            self.dig_path, f"@{LOOPBACK}", "-p", str(self.port), "+dnssec", "+time=5",
            "+tries=1", "+noall", "+comments", "+answer", "+authority", name, rdtype,
        ]  # fmt: skip
        done = subprocess.run(args, capture_output=True, text=True, timeout=DIG_TIMEOUT)
        assert done.returncode == 0, done.stdout + done.stderr
        return parse_dig(done.stdout)

    def flush(self, zone: str) -> None:
        """Forget what the resolver cached for the zone (unbound-control over its socket)."""
        control = peers.program("unbound-control")
        args = [control, "-c", str(self.config), "flush_zone", zone]
        done = subprocess.run(args, capture_output=True, text=True, timeout=DIG_TIMEOUT)
        assert done.returncode == 0, done.stdout + done.stderr
        args = [control, "-c", str(self.config), "flush_bogus"]
        subprocess.run(args, capture_output=True, text=True, timeout=DIG_TIMEOUT, check=True)


@contextlib.contextmanager
def unbound(
    work: Path,
    zone: str,
    trust_anchors: list[str],
    homing_port: int,
    dig_path: str,
    stubs: dict[str, int] | None = None,
) -> Iterator[Resolver]:
    """unbound validating `zone` with `trust_anchors` (DS lines: what the parent holds),
    and sending questions for the zones in `stubs` to their ports; stopped by PID
    afterwards."""
    program = peers.program("unbound")
    work.mkdir(exist_ok=True)
    port = free_dns_port()
    config = work / "unbound.conf"
    log = work / "unbound.log"
    anchors = "\n".join(f'    trust-anchor: "{anchor}"' for anchor in trust_anchors)
    config.write_text(
        f"""server:
    interface: {LOOPBACK}
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{work}"
    pidfile: ""
    use-syslog: no
    logfile: "{log}"
    verbosity: 1
    val-log-level: 2
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    module-config: "validator iterator"
{anchors}
    qname-minimisation: no
    aggressive-nsec: no
    do-ip6: no
remote-control:
    control-enable: yes
    control-interface: "{work / "control.sock"}"
    control-use-cert: no
stub-zone:
    name: "{zone}"
    stub-addr: {LOOPBACK}@{homing_port}
"""
        + "".join(
            f'stub-zone:\n    name: "{name}"\n    stub-addr: {LOOPBACK}@{port}\n'
            for name, port in (stubs or {}).items()
        )
    )
    with (work / "unbound.stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [program, "-d", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    resolver = Resolver(port, config, dig_path)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:  # unbound says nothing when ready: ask it, bounded
            try:
                resolver.dig(zone, "SOA")
                break
            except (AssertionError, subprocess.TimeoutExpired):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "unbound did not start:\n" + (work / "unbound.stderr").read_text()
                    ) from None
                time.sleep(0.1)  # polling: unbound has no ready signal
        yield resolver
    finally:
        peers.stop(process, 10.0)
