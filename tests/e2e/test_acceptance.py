"""The README's acceptance path, with the real curl, dig and kdig against `homing serve`."""

from __future__ import annotations

import subprocess

import pytest

from tests import peers
from tests.e2e.conftest import PASSWORD, Server

pytestmark = pytest.mark.peer("curl")


def curl(*args: str) -> str:
    """Run the real curl; the response body (asserting HTTP 200)."""
    result = subprocess.run(
        [peers.program("curl"), "-sS", "--max-time", "10", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0, f"curl {args} exited {result.returncode}: {result.stderr}"
    body, _, code = result.stdout.rpartition("\n")
    assert code == "200", f"curl {args}: HTTP {code}, body {body!r}"
    return body


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_readme_update_then_dig_then_restart(server: Server) -> None:
    fqdn, secret = server.new_host("cam")
    body = curl(
        "-u",
        f"{fqdn}:{secret}",
        f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.10",
    )
    assert body.strip() == "good 192.0.2.10"

    # An HTTP update is served by DNS at once: no waiting.
    answer = server.dig(fqdn, "A")
    assert answer.status == "NOERROR", answer
    assert answer.aa, answer
    assert answer.values("A") == ["192.0.2.10"], answer
    assert [r.ttl for r in answer.answer] == [60], answer

    # Asking again with the same address is nochg, and changes nothing.
    body = curl(
        "-u", f"{fqdn}:{secret}", f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.10"
    )
    assert body.strip() == "nochg 192.0.2.10"

    server.restart()
    answer = server.dig(fqdn, "A")
    assert answer.aa, answer
    assert answer.values("A") == ["192.0.2.10"], answer


def test_wrong_secret_is_badauth_and_changes_nothing(server: Server) -> None:
    fqdn, secret = server.new_host("cam")
    assert (
        curl(
            "-u",
            f"{fqdn}:{secret}",
            f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.20",
        ).strip()
        == "good 192.0.2.20"
    )
    body = curl(
        "-u",
        f"{fqdn}:not-the-secret",
        f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.21",
    )
    assert body.strip() == "badauth"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.20"]


def test_credentials_as_url_parameters(server: Server) -> None:
    """Routers that cannot send Basic auth put username/password in the URL."""
    fqdn, secret = server.new_host("router")
    body = curl(
        f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.30&username={fqdn}&password={secret}"
    )
    assert body.strip() == "good 192.0.2.30"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.30"]


def test_missing_myip_uses_source_address(server: Server) -> None:
    fqdn, secret = server.new_host("pc")
    body = curl("-u", f"{fqdn}:{secret}", f"{server.http_url}/nic/update?hostname={fqdn}")
    assert body.strip() == "good 127.0.0.1"
    assert server.dig(fqdn, "A").values("A") == ["127.0.0.1"]


def test_forwarded_for_is_ignored_without_trusted_proxies(server: Server) -> None:
    """A client cannot claim another address with X-Forwarded-For (no trusted_proxies set)."""
    fqdn, secret = server.new_host("spoof")
    url = f"{server.http_url}/nic/update?hostname={fqdn}"
    body = curl("-u", f"{fqdn}:{secret}", "-H", "X-Forwarded-For: 198.51.100.66", url)
    assert body.strip() == "good 127.0.0.1"
    checkip = curl("-H", "X-Forwarded-For: 198.51.100.66", f"{server.http_url}/checkip")
    assert "Current IP Address: 127.0.0.1" in checkip


def test_unknown_host_is_nohost(server: Server) -> None:
    fqdn, secret = server.new_host("cam")
    other = f"nobody.{fqdn.split('.', 1)[1]}"
    body = curl(
        "-u", f"{fqdn}:{secret}", f"{server.http_url}/nic/update?hostname={other}&myip=192.0.2.40"
    )
    assert body.strip() == "nohost"
    answer = server.dig(other, "A")
    assert answer.status == "NXDOMAIN", answer
    assert answer.aa, answer


def test_ipv6_percent_encoded_myip_leaves_a_alone(server: Server) -> None:
    fqdn, secret = server.new_host("v6")
    auth = f"{fqdn}:{secret}"
    assert (
        curl("-u", auth, f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.50").strip()
        == "good 192.0.2.50"
    )
    body = curl("-u", auth, f"{server.http_url}/nic/update?hostname={fqdn}&myip=2001%3adb8%3a%3a1")
    assert body.strip() == "good 2001:db8::1"

    aaaa = server.dig(fqdn, "AAAA")
    assert aaaa.aa, aaaa
    assert aaaa.values("AAAA") == ["2001:db8::1"], aaaa
    a = server.dig(fqdn, "A")
    assert a.values("A") == ["192.0.2.50"], a

    # And an IPv4-only update leaves the AAAA alone.
    assert (
        curl("-u", auth, f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.51").strip()
        == "good 192.0.2.51"
    )
    assert server.dig(fqdn, "AAAA").values("AAAA") == ["2001:db8::1"]
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.51"]


def test_both_families_in_one_request(server: Server) -> None:
    fqdn, secret = server.new_host("dual")
    body = curl(
        "-u",
        f"{fqdn}:{secret}",
        f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.60,2001:db8::60",
    )
    line = body.strip()
    assert line.startswith("good "), line
    assert set(line.removeprefix("good ").split(",")) == {"192.0.2.60", "2001:db8::60"}
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.60"]
    assert server.dig(fqdn, "AAAA").values("AAAA") == ["2001:db8::60"]


def test_dvr_endpoint(server: Server) -> None:
    fqdn, secret = server.new_host("dvr")
    zone = fqdn.split(".", 1)[1]

    assert (
        curl(f"{server.http_url}/dvr/update?host={fqdn}&password={secret}&ip=192.0.2.70").strip()
        == "ACT"
    )
    answer = server.dig(fqdn, "A")
    assert answer.aa, answer
    assert answer.values("A") == ["192.0.2.70"], answer

    # POST with a form body, as many DVRs send it.
    body = curl(
        "--data", f"host={fqdn}&password={secret}&ip=192.0.2.71", f"{server.http_url}/dvr/update"
    )
    assert body.strip() == "ACT"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.71"]

    wrong = curl(f"{server.http_url}/dvr/update?host={fqdn}&password=wrong-password&ip=192.0.2.72")
    assert wrong.strip() == "ERR 0x80008002"
    unknown = curl(
        f"{server.http_url}/dvr/update?host=nobody.{zone}&password={secret}&ip=192.0.2.73"
    )
    assert unknown.strip() == "ERR 0x80008001"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.71"]


def test_checkip(server: Server) -> None:
    body = curl(f"{server.http_url}/checkip")
    assert "Current IP Address: 127.0.0.1" in body


def test_kdig_over_tcp(server: Server) -> None:
    fqdn, secret = server.new_host("tcp")
    assert (
        curl(
            "-u",
            f"{fqdn}:{secret}",
            f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.80",
        ).strip()
        == "good 192.0.2.80"
    )
    answer = server.kdig(fqdn, "A", tcp=True)
    assert answer.status == "NOERROR", answer
    assert answer.aa, answer
    assert answer.values("A") == ["192.0.2.80"], answer


def test_dig_over_tcp(server: Server) -> None:
    fqdn, secret = server.new_host("tcp")
    assert (
        curl(
            "-u",
            f"{fqdn}:{secret}",
            f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.81",
        ).strip()
        == "good 192.0.2.81"
    )
    answer = server.dig(fqdn, "A", tcp=True)
    assert answer.aa, answer
    assert answer.values("A") == ["192.0.2.81"], answer


def test_sigterm_stops_cleanly(server: Server) -> None:
    """SIGTERM: shut down and exit 0 (a negative code means the signal itself killed it)."""
    assert server.running
    code = server.stop()
    assert code == 0, f"exit code {code} on SIGTERM\n{server.stderr_text()}"


def test_group_secret_updates_every_member(server: Server) -> None:
    """`group:group-secret` without hostname= updates every member of the group."""
    first, _ = server.new_host("farm1")
    second, _ = server.new_host("farm2")
    group = f"farm.{first.split('.', 1)[1]}"
    result = server.cli(
        "group", "add", group, "--owner", "alice", "--host", first, "--host", second
    )
    secret = result.stdout.strip().splitlines()[-1].strip()
    body = curl("-u", f"{group}:{secret}", f"{server.http_url}/nic/update?myip=192.0.2.90")
    assert body.splitlines() == ["good 192.0.2.90", "good 192.0.2.90"], body
    for fqdn in (first, second):
        answer = server.dig(fqdn, "A")
        assert answer.aa, answer
        assert answer.values("A") == ["192.0.2.90"], answer


def test_account_password_updates_named_hosts(server: Server) -> None:
    fqdn, _ = server.new_host("acct")
    body = curl(
        "-u", f"alice:{PASSWORD}", f"{server.http_url}/nic/update?hostname={fqdn}&myip=192.0.2.91"
    )
    assert body.strip() == "good 192.0.2.91"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.91"]
