"""A running `homing serve` sees settings changed by the CLI (another process) within
its follow interval, through DNS: a transfer list opened and closed, a host key revoked
by deleting its host. On SQLite the server polls the store's settings generation; on
PostgreSQL the change's notification wakes it.

Each delay from the CLI's exit to the change showing in DNS is printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from tests.e2e.conftest import LOOPBACK, ZONE, Server

WAIT = 10.0  # bound on each wait; the follow interval (0.5 s) is what it normally takes
POLL_INTERVAL = 0.02


def change(server: Server, what: str, done: Callable[[], bool], *args: str) -> float:
    """Run `homing ARGS`, then poll until `done()`, bounded; seconds from the command's
    start. Nothing the server sends says it reloaded its settings, so this polls
    through DNS."""
    started = time.monotonic()
    server.cli(*args)
    ran = time.monotonic() - started
    while not done():
        assert server.running, f"server exited:\n{server.stderr_text()[-4000:]}"
        if time.monotonic() - started > WAIT:
            raise AssertionError(f"{what}: not within {WAIT}s\n{server.stderr_text()[-4000:]}")
        time.sleep(POLL_INTERVAL)  # polling interval: no event exists (see docstring)
    seconds = time.monotonic() - started
    print(f"{what}: {seconds:.3f} s from the command's start (the command ran {ran:.3f} s)")
    return seconds


def axfr_rcode(server: Server) -> str:
    """The rcode of the first message answering an unsigned AXFR from loopback."""
    query = dns.message.make_query(ZONE, "AXFR")
    response = dns.query.tcp(query, LOOPBACK, port=server.dns_port, timeout=5)
    return dns.rcode.to_text(response.rcode())


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_allow_transfer_set_and_cleared_on_a_running_server(server: Server) -> None:
    server.ensure_zone(ZONE)

    def allowed() -> bool:
        return axfr_rcode(server) == "NOERROR"

    assert not allowed()
    opened = ("zone", "set", ZONE, "--allow-transfer", f"{LOOPBACK}/32")
    change(server, "--allow-transfer", allowed, *opened)
    closed = ("zone", "set", ZONE, "--no-allow-transfer")
    change(server, "--no-allow-transfer", lambda: not allowed(), *closed)


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_a_deleted_hosts_key_is_refused_promptly(server: Server) -> None:
    fqdn, _ = server.new_host("cam")
    line = server.cli("key", "add", "cam-key", "--host", fqdn).stdout.strip().splitlines()[-1]
    algorithm, name, secret = line.split(":")
    keyring = dns.tsigkeyring.from_text({name: (algorithm, secret)})

    def update(address: str) -> str:
        """The signed UPDATE's rcode, or BADKEY when the server does not know the key."""
        message = dns.update.UpdateMessage(ZONE, keyring=keyring, keyname=name)
        message.replace(dns.name.from_text(fqdn), 60, "A", address)
        try:
            response = dns.query.tcp(message, LOOPBACK, port=server.dns_port, timeout=5)
        except dns.tsig.PeerBadKey:
            return "BADKEY"
        return dns.rcode.to_text(response.rcode())

    assert update("192.0.2.1") == "NOERROR"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.1"]

    def revoked() -> bool:
        return update("192.0.2.2") == "BADKEY"

    change(server, "host delete (its key goes with it)", revoked, "host", "delete", fqdn)
