"""A zone moved from another primary with `homing zone import` is served after its file's
SOA serial, and updates go on from there: its secondaries keep following it."""

from __future__ import annotations

from pathlib import Path

import dns.serial
import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_unservable import nic

pytestmark = [pytest.mark.peer("dig"), pytest.mark.peer("curl")]

ZONE = "moved.example.org"
FILE_SERIAL = 2026120501  # a date-style serial, as another primary's file carries


def soa_serial(server: Server) -> int:
    [soa] = server.dig(ZONE, "SOA").values("SOA")
    return int(soa.split()[2])


def test_an_imported_zone_keeps_its_serial_and_updates_go_on(
    server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "moved.zone"
    path.write_text(
        f"$ORIGIN {ZONE}.\n$TTL 300\n"
        f"@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. {FILE_SERIAL} 3600 600 86400 60\n"
        f"@ IN NS ns1.{ZONE}.\nns1 IN A 192.0.2.53\ncam IN A 192.0.2.1\n"
    )
    server.ensure_user("alice")
    out = server.cli("zone", "import", ZONE, str(path), "--owner", "alice").stdout
    secrets = dict(line.split(",", 1) for line in out.strip().splitlines()[1:])
    answer = server.wait_dns(ZONE, "SOA", lambda a: bool(a.values("SOA")))
    assert answer.aa
    imported = soa_serial(server)
    assert dns.serial.Serial(imported) > dns.serial.Serial(FILE_SERIAL)
    # An update through the dyndns2 door: answered at once, at a later serial.
    fqdn = f"cam.{ZONE}"
    assert nic(server, fqdn, secrets[fqdn], "192.0.2.7") == "good 192.0.2.7"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.7"]
    assert dns.serial.Serial(soa_serial(server)) > dns.serial.Serial(imported)
    # Importing the old file again never takes the serial back.
    before = soa_serial(server)
    server.cli("zone", "import", ZONE, str(path))
    after = server.wait_dns(ZONE, "SOA", lambda a: int(a.values("SOA")[0].split()[2]) != before)
    assert dns.serial.Serial(int(after.values("SOA")[0].split()[2])) > dns.serial.Serial(before)
