"""The real inadyn (2.10) updating homing through a `custom` provider, checked with dig.

Findings about inadyn 2.10.0 that shape these configurations (see docs/clients.md):
- A `custom` section with `ddns-path = "/nic/update?hostname=%h&myip=%i"` sends the
  credentials as Basic auth, `HTTP/1.0` and `Host: 127.0.0.1` (no port).
- By default inadyn refuses loopback/private addresses from checkip ("not a valid
  Internet address"), falls back to api.ipify.org, and when that fails too still
  sends `myip=` empty. `verify-address = false` accepts them; `checkip-command`
  (any command printing an address) replaces the web check.
- IPv6 needs `allow-ipv6 = true`; inadyn then percent-encodes it: `myip=2001%3adb8%3a%3a55`.
- `--once` updates when the cached address (in --cache-dir) differs or is unknown.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import peers
from tests.e2e.conftest import Server

pytestmark = pytest.mark.peer("inadyn")

INADYN_TIMEOUT = 60


class Inadyn:
    """One host's inadyn configuration and cache dir, run `--once` in the foreground."""

    def __init__(self, server: Server, workdir: Path, fqdn: str, secret: str) -> None:
        self.program = peers.program("inadyn")
        self.server = server
        self.fqdn = fqdn
        self.secret = secret
        self.workdir = workdir
        self.cache_dir = workdir / "cache"
        self.conf = workdir / "inadyn.conf"
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def run(
        self,
        checkip: str,
        *,
        globals_: str = "",
        password: str | None = None,
        force: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """`checkip`: lines for the provider section choosing how the address is found."""
        self.conf.write_text(
            f"{globals_}"
            "custom homing {\n"
            "    ssl = false\n"
            f'    ddns-server = "{self.server.http_hostport}"\n'
            '    ddns-path = "/nic/update?hostname=%h&myip=%i"\n'
            f'    username = "{self.fqdn}"\n'
            f'    password = "{password or self.secret}"\n'
            f'    hostname = "{self.fqdn}"\n'
            f"    {checkip}\n"
            "}\n"
        )
        self.conf.chmod(0o600)
        args = [
            self.program, "--once", "--foreground", "--no-pidfile", "-l", "debug",
            "-f", str(self.conf), "--cache-dir", str(self.cache_dir),
        ]  # fmt: skip
        if force:
            args.append("--force")
        return subprocess.run(
            args, capture_output=True, text=True, timeout=INADYN_TIMEOUT, cwd=self.workdir
        )

    def cached(self) -> str:
        path = self.cache_dir / f"{self.fqdn}.cache"
        assert path.exists(), f"no inadyn cache file {path}: {sorted(self.cache_dir.iterdir())}"
        return path.read_text().strip()


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def _assert_updated(result: subprocess.CompletedProcess[str], fqdn: str, address: str) -> None:
    out = _output(result)
    assert result.returncode == 0, out
    assert f"Successful alias table update for {fqdn} => new IP# {address}" in out, out


def _command(address: str) -> str:
    return f'checkip-command = "echo {address}"'


@pytest.fixture
def host(server: Server, tmp_path: Path) -> Inadyn:
    fqdn, secret = server.new_host("ina")
    return Inadyn(server, tmp_path / "inadyn", fqdn, secret)


def test_custom_provider_ipv4_then_change(server: Server, host: Inadyn) -> None:
    result = host.run(_command("192.0.2.55"))
    _assert_updated(result, host.fqdn, "192.0.2.55")
    assert "myip=192.0.2.55" in _output(result)
    assert host.cached() == "192.0.2.55"
    answer = server.dig(host.fqdn, "A")
    assert answer.aa, answer
    assert answer.values("A") == ["192.0.2.55"], answer

    result = host.run(_command("192.0.2.56"))
    _assert_updated(result, host.fqdn, "192.0.2.56")
    assert host.cached() == "192.0.2.56"
    answer = server.dig(host.fqdn, "A")
    assert answer.aa, answer
    assert answer.values("A") == ["192.0.2.56"], answer


def test_forced_same_address_is_accepted(server: Server, host: Inadyn) -> None:
    """A forced update of an unchanged address gets `nochg`, which inadyn counts as success."""
    _assert_updated(host.run(_command("192.0.2.57")), host.fqdn, "192.0.2.57")
    result = host.run(_command("192.0.2.57"), force=True)
    _assert_updated(result, host.fqdn, "192.0.2.57")
    assert "nochg 192.0.2.57" in _output(result)
    assert server.dig(host.fqdn, "A").values("A") == ["192.0.2.57"]


def test_ipv6_is_percent_encoded_and_leaves_a_alone(server: Server, host: Inadyn) -> None:
    _assert_updated(host.run(_command("192.0.2.58")), host.fqdn, "192.0.2.58")

    result = host.run(_command("2001:db8::55"), globals_="allow-ipv6 = true\n")
    _assert_updated(result, host.fqdn, "2001:db8::55")
    assert "myip=2001%3adb8%3a%3a55" in _output(result)

    aaaa = server.dig(host.fqdn, "AAAA")
    assert aaaa.aa, aaaa
    assert aaaa.values("AAAA") == ["2001:db8::55"], aaaa
    assert server.dig(host.fqdn, "A").values("A") == ["192.0.2.58"]


def test_checkip_from_homing(server: Server, host: Inadyn) -> None:
    """inadyn reads homing's /checkip page; on loopback that is 127.0.0.1, which
    inadyn only accepts with `verify-address = false`."""
    checkip = (
        f'checkip-server = "{server.http_hostport}"\n'
        '    checkip-path = "/checkip"\n'
        "    checkip-ssl = false"
    )
    result = host.run(checkip, globals_="verify-address = false\n")
    out = _output(result)
    assert "Current IP Address: 127.0.0.1" in out, out
    _assert_updated(result, host.fqdn, "127.0.0.1")
    assert "myip=127.0.0.1" in out, out
    answer = server.dig(host.fqdn, "A")
    assert answer.aa, answer
    assert answer.values("A") == ["127.0.0.1"], answer


def test_wrong_password_is_not_a_success(server: Server, host: Inadyn) -> None:
    _assert_updated(host.run(_command("192.0.2.59")), host.fqdn, "192.0.2.59")
    result = host.run(_command("192.0.2.60"), password="not-the-secret")
    out = _output(result)
    assert result.returncode != 0, out
    assert "badauth" in out, out
    assert "Successful alias table update" not in out, out
    assert host.cached() == "192.0.2.59"
    assert server.dig(host.fqdn, "A").values("A") == ["192.0.2.59"]
