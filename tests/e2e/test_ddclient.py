"""The real ddclient (3.10) updating homing over dyndns2, checked with dig.

Findings about ddclient 3.10.0 that shape these configurations (see docs/clients.md):
- `usev4=ipv4, ipv4=ADDR` works with protocol=dyndns2; the older `use=ip, ip=ADDR` too.
- `usev6=...` is NOT sent by the 3.10.0 dyndns2 code (it only sends the legacy
  `wantip`), so a usev6-only host sends an empty `myip=`, which deletes the host's
  addresses (never the source address). IPv6 with 3.10.0 needs the legacy `use=ip, ip=V6` (or
  `use=cmd`), which sends `myip=2001:db8::44` unencoded.
- After a `good`, ddclient skips a changed address for `min-interval` (30 s by
  default); `min-interval=0` lets consecutive runs update.
- ddclient exits 0 on success and 1 when an update FAILED.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import peers
from tests.e2e.conftest import Server

pytestmark = pytest.mark.peer("ddclient")

DDCLIENT_TIMEOUT = 60


class DDClient:
    """One host's ddclient configuration and cache, run one-shot in the foreground."""

    def __init__(self, server: Server, workdir: Path, fqdn: str, secret: str) -> None:
        self.program = peers.program("ddclient")
        self.server = server
        self.workdir = workdir
        self.fqdn = fqdn
        self.secret = secret
        self.cache = workdir / "ddclient.cache"
        self.conf = workdir / "ddclient.conf"
        workdir.mkdir(parents=True, exist_ok=True)

    def run(
        self,
        address_lines: str,
        *,
        extra: str = "",
        password: str | None = None,
        force: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        self.conf.write_text(
            "ssl=no\n"
            "protocol=dyndns2\n"
            f"server={self.server.http_hostport}\n"
            "min-interval=0\n"
            f"{address_lines}\n"
            f"{extra}"
            f"login={self.fqdn}, password={password or self.secret}\n"
            f"{self.fqdn}\n"
        )
        self.conf.chmod(0o600)
        args = [
            self.program, "-daemon=0", "-foreground", "-verbose", "-noquiet",
            "-file", str(self.conf), "-cache", str(self.cache),
        ]  # fmt: skip
        if force:
            args.append("-force")
        return subprocess.run(
            args, capture_output=True, text=True, timeout=DDCLIENT_TIMEOUT, cwd=self.workdir
        )

    def cached(self) -> dict[str, str]:
        """This host's entry in ddclient's cache file (`k=v,k=v,... host` lines)."""
        for line in self.cache.read_text().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            fields, _, host = line.rpartition(" ")
            if host == self.fqdn:
                return dict(f.split("=", 1) for f in fields.split(",") if "=" in f)
        raise AssertionError(f"{self.fqdn} not in ddclient cache:\n{self.cache.read_text()}")


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def _assert_good(result: subprocess.CompletedProcess[str], fqdn: str, address: str) -> None:
    out = _output(result)
    assert result.returncode == 0, out
    assert f"updating {fqdn}: good: IP address set to {address}" in out, out
    assert "FAILED" not in out, out


@pytest.fixture
def host(server: Server, tmp_path: Path) -> DDClient:
    fqdn, secret = server.new_host("ddc")
    return DDClient(server, tmp_path / "ddclient", fqdn, secret)


def test_usev4_update_then_change(server: Server, host: DDClient) -> None:
    result = host.run("usev4=ipv4, ipv4=192.0.2.44")
    _assert_good(result, host.fqdn, "192.0.2.44")
    assert "myip=192.0.2.44" in _output(result)
    cached = host.cached()
    assert cached["status"] == "good" and cached["ip"] == "192.0.2.44", cached

    answer = server.dig(host.fqdn, "A")
    assert answer.aa, answer
    assert answer.values("A") == ["192.0.2.44"], answer

    result = host.run("usev4=ipv4, ipv4=192.0.2.45")
    _assert_good(result, host.fqdn, "192.0.2.45")
    assert host.cached()["ip"] == "192.0.2.45"
    answer = server.dig(host.fqdn, "A")
    assert answer.aa, answer
    assert answer.values("A") == ["192.0.2.45"], answer


def test_forced_same_address_is_nochg_and_still_good(server: Server, host: DDClient) -> None:
    _assert_good(host.run("usev4=ipv4, ipv4=192.0.2.46"), host.fqdn, "192.0.2.46")
    result = host.run("usev4=ipv4, ipv4=192.0.2.46", force=True)
    out = _output(result)
    assert result.returncode == 0, out
    assert f"updating {host.fqdn}: nochg" in out, out
    assert host.cached()["status"] == "good"
    assert server.dig(host.fqdn, "A").values("A") == ["192.0.2.46"]


def test_legacy_use_ip_with_wildcard_and_system_params(server: Server, host: DDClient) -> None:
    """The pre-3.10 syntax most existing configurations use; ddclient adds
    `system=dyndns`, which the server accepts (`wildcard=no` sends nothing). `wildcard=yes` asks
    for a wildcard homing does not offer: ddclient reports the failure and DNS keeps
    the address (docs/clients.md, the tick boxes)."""
    result = host.run("use=ip, ip=192.0.2.47", extra="wildcard=no\n")
    out = _output(result)
    assert "system=dyndns" in out and "wildcard" not in out, out
    _assert_good(result, host.fqdn, "192.0.2.47")
    answer = server.dig(host.fqdn, "A")
    assert answer.aa, answer
    assert answer.values("A") == ["192.0.2.47"], answer

    result = host.run("use=ip, ip=192.0.2.48", extra="wildcard=yes\n")
    out = _output(result)
    assert "wildcard=ON" in out, out
    assert result.returncode == 1, out
    assert f"FAILED:   updating {host.fqdn}: unexpected status (badagent)" in out, out
    assert server.dig(host.fqdn, "A").values("A") == ["192.0.2.47"]
    assert server.dig(f"www.{host.fqdn}", "A").status == "NXDOMAIN"


def test_ipv6_update_leaves_a_alone(server: Server, host: DDClient) -> None:
    _assert_good(host.run("usev4=ipv4, ipv4=192.0.2.48"), host.fqdn, "192.0.2.48")

    # ddclient 3.10.0's dyndns2 only sends the legacy address: use=ip with a v6 address.
    result = host.run("use=ip, ip=2001:db8::44")
    _assert_good(result, host.fqdn, "2001:db8::44")
    assert "myip=2001:db8::44" in _output(result)

    aaaa = server.dig(host.fqdn, "AAAA")
    assert aaaa.aa, aaaa
    assert aaaa.values("AAAA") == ["2001:db8::44"], aaaa
    a = server.dig(host.fqdn, "A")
    assert a.values("A") == ["192.0.2.48"], a


def test_wrong_password_fails_and_changes_nothing(server: Server, host: DDClient) -> None:
    _assert_good(host.run("usev4=ipv4, ipv4=192.0.2.49"), host.fqdn, "192.0.2.49")
    result = host.run("usev4=ipv4, ipv4=192.0.2.50", password="not-the-secret", force=True)
    out = _output(result)
    assert result.returncode == 1, out
    assert f"FAILED:   updating {host.fqdn}: badauth" in out, out
    assert host.cached()["status"] == "badauth"
    assert server.dig(host.fqdn, "A").values("A") == ["192.0.2.49"]


def test_address_from_homing_checkip(server: Server, host: DDClient) -> None:
    """`usev4=webv4` reads homing's /checkip page (on loopback: 127.0.0.1)."""
    result = host.run(f"usev4=webv4, webv4={server.http_url}/checkip")
    _assert_good(result, host.fqdn, "127.0.0.1")
    answer = server.dig(host.fqdn, "A")
    assert answer.aa, answer
    assert answer.values("A") == ["127.0.0.1"], answer
