"""The README's dig line prints what the README says it prints."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import LOOPBACK, Server
from tests.e2e.test_unservable import get

pytestmark = pytest.mark.peer("curl")

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_dig_output(server: Server) -> None:
    lines = README.read_text().splitlines()
    [at] = [n for n, line in enumerate(lines) if line.startswith("dig @127.0.0.1 -p 8053 ")]
    command, expected = shlex.split(lines[at]), lines[at + 1].removeprefix("# ")
    fqdn, secret = server.new_host("cam")
    assert fqdn == "cam.dyn.example.net"
    url = f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.10"
    assert get(url, "-u", f"{fqdn}:{secret}") == "good 192.0.2.10"
    args = [server.dig_path, f"@{LOOPBACK}", "-p", str(server.dns_port), *command[4:]]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.strip() == expected
