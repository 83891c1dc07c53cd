"""The log an operator reads: one INFO line per update request (hosts, answers, protocol,
source) and per refused transfer or DNS UPDATE; no library chatter at start."""

from __future__ import annotations

import subprocess

import pytest

from tests import peers
from tests.e2e.conftest import LOOPBACK, ZONE, Server
from tests.e2e.test_unservable import get

pytestmark = pytest.mark.peer("curl")


def test_update_and_refusal_lines(server: Server) -> None:
    fqdn, secret = server.new_host("cam")
    url = f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.44"
    assert get(url, "-u", f"{fqdn}:{secret}") == "good 192.0.2.44"
    assert get(url, "-u", f"{fqdn}:wrong") == "badauth"
    # The log line is written before the answer is sent: it is in the file now.
    log = server.stderr_text()
    assert f"update {fqdn}: good via dyndns2 from {LOOPBACK}" in log
    assert f"update {fqdn}: badauth via dyndns2 from {LOOPBACK}" in log
    refused = subprocess.run(
        [server.dig_path, f"@{LOOPBACK}", "-p", str(server.dns_port), ZONE, "AXFR",
         "+time=5", "+tries=1"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert "Transfer failed" in refused.stdout or "REFUSED" in refused.stdout, refused.stdout
    assert f"AXFR of {ZONE} from {LOOPBACK} refused" in server.stderr_text()
    assert "alembic.runtime.plugins" not in server.stderr_text()
    assert peers.program("curl")  # the peer the marker names
