"""A signed UPDATE captured on the wire from the real `nsupdate` and sent again after a
later change: `homing serve` answers it as before and leaves the later change in place."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.message
import dns.opcode
import dns.rcode

from tests import peers
from tests.e2e.conftest import LOOPBACK, ZONE, Server
from tests.e2e.test_rfc2136 import NSUPDATE_TIMEOUT, nsupdate, serial, zone_key

TIMEOUT = 10.0


@contextmanager
def capturing_relay(server: Server) -> Iterator[tuple[int, list[bytes]]]:
    """A UDP relay in front of the server that keeps every datagram a client sends."""
    captured: list[bytes] = []
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind((LOOPBACK, 0))
    front.settimeout(0.2)
    stop = threading.Event()

    def relay() -> None:
        while not stop.is_set():
            try:
                data, client = front.recvfrom(65535)
            except TimeoutError:
                continue
            captured.append(data)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as back:
                back.settimeout(TIMEOUT)
                back.sendto(data, (LOOPBACK, server.dns_port))
                front.sendto(back.recv(65535), client)

    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    try:
        yield front.getsockname()[1], captured
    finally:
        stop.set()
        thread.join(TIMEOUT)
        front.close()


def send(server: Server, wire: bytes) -> dns.message.Message:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        s.sendto(wire, (LOOPBACK, server.dns_port))
        return dns.message.from_wire(s.recv(65535), keyring=False)


def test_a_captured_nsupdate_sent_again_changes_nothing(server: Server) -> None:
    key = zone_key(server, "ops-key")
    name = f"printer.{ZONE}"
    script = "\n".join(
        [
            f"zone {ZONE}",
            f"update delete {name} A",
            f"update add {name} 60 A 192.0.2.71",
            "send",
            "",
        ]
    )
    with capturing_relay(server) as (port, captured):
        done = subprocess.run(
            [peers.program("nsupdate"), "-t", "5", "-y", key],
            input=f"server {LOOPBACK} {port}\n{script}",
            capture_output=True,
            text=True,
            timeout=NSUPDATE_TIMEOUT,
        )
    assert done.returncode == 0, done.stderr
    updates = [
        wire
        for wire in captured
        if dns.message.from_wire(wire, keyring=False).opcode() == dns.opcode.Opcode.UPDATE
    ]
    assert updates, "nsupdate sent no UPDATE through the relay"

    done = nsupdate(server, key, [f"update delete {name} A", f"update add {name} 60 A 192.0.2.72"])
    assert done.returncode == 0, done.stderr
    before = serial(server)

    for wire in updates:
        assert send(server, wire).rcode() == dns.rcode.Rcode.NOERROR  # the first answer
    assert server.dig(name, "A").values("A") == ["192.0.2.72"]
    assert serial(server) == before
