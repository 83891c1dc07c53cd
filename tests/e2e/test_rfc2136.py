"""RFC 2136 UPDATE with TSIG, driven by the real `nsupdate` against `homing serve`."""

from __future__ import annotations

import base64
import secrets
import subprocess

import pytest

from tests import peers
from tests.e2e.conftest import LOOPBACK, ZONE, Server

NSUPDATE_TIMEOUT = 30.0


def nsupdate(
    server: Server, key: str | None, commands: list[str], *, tcp: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run nsupdate with `commands` (then `send`); -y KEY when given, -v for TCP."""
    args = [peers.program("nsupdate"), "-t", "5"]
    if tcp:
        args.append("-v")
    if key is not None:
        args += ["-y", key]
    script = "\n".join(
        [f"server {LOOPBACK} {server.dns_port}", f"zone {ZONE}", *commands, "send", ""]
    )
    return subprocess.run(
        args, input=script, capture_output=True, text=True, timeout=NSUPDATE_TIMEOUT
    )


def zone_key(server: Server, name: str, algorithm: str = "hmac-sha256") -> str:
    server.ensure_zone()
    out = server.cli("key", "add", name, "--zone", ZONE, "--algorithm", algorithm).stdout
    key = out.strip().splitlines()[-1]
    assert key.startswith(f"{algorithm}:{name}:"), out
    return key


def serial(server: Server) -> int:
    answer = server.dig(ZONE, "SOA")
    return int(answer.values("SOA")[0].split()[2])


def wrong_secret(key: str) -> str:
    algorithm, name, secret = key.split(":")
    other = base64.b64encode(secrets.token_bytes(len(base64.b64decode(secret)))).decode()
    return f"{algorithm}:{name}:{other}"


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_add_replace_delete_with_zone_key(server: Server, tcp: bool) -> None:
    key = zone_key(server, "ops-key")
    name = f"printer.{ZONE}"

    done = nsupdate(server, key, [f"update add {name} 300 A 192.0.2.10"], tcp=tcp)
    assert done.returncode == 0, done.stderr
    answer = server.dig(name, "A")
    assert answer.values("A") == ["192.0.2.10"]
    assert answer.answer[0].ttl == 300

    done = nsupdate(
        server,
        key,
        [f"update delete {name} A", f"update add {name} 300 A 192.0.2.11"],
        tcp=tcp,
    )
    assert done.returncode == 0, done.stderr
    assert server.dig(name, "A").values("A") == ["192.0.2.11"]

    done = nsupdate(server, key, [f'update add {name} 300 TXT "on the second floor"'], tcp=tcp)
    assert done.returncode == 0, done.stderr
    assert server.dig(name, "TXT").values("TXT") == ['"on the second floor"']

    done = nsupdate(server, key, [f"update delete {name}"], tcp=tcp)
    assert done.returncode == 0, done.stderr
    assert server.dig(name, "A").status == "NXDOMAIN"


def test_sha512_key_and_prerequisites(server: Server) -> None:
    key = zone_key(server, "sha512-key", "hmac-sha512")
    name = f"nas.{ZONE}"
    done = nsupdate(server, key, [f"prereq nxdomain {name}", f"update add {name} 60 A 192.0.2.20"])
    assert done.returncode == 0, done.stderr
    # The same again: the name exists now, so the prerequisite fails with YXDOMAIN.
    before = serial(server)
    done = nsupdate(server, key, [f"prereq nxdomain {name}", f"update add {name} 60 A 192.0.2.21"])
    assert done.returncode != 0
    assert "YXDOMAIN" in done.stdout + done.stderr
    assert server.dig(name, "A").values("A") == ["192.0.2.20"]
    assert serial(server) == before


@pytest.mark.parametrize(
    ("make_key", "expected"),
    [
        (wrong_secret, "NOTAUTH(BADSIG)"),
        (lambda key: wrong_secret(key).replace(":ops-key:", ":nobody:"), "NOTAUTH(BADKEY)"),
        (lambda key: wrong_secret(key).replace("hmac-sha256:", "hmac-sha512:"), "NOTAUTH(BADKEY)"),
        (lambda key: None, "REFUSED"),
    ],
    ids=["bad-secret", "unknown-key", "wrong-algorithm", "unsigned"],
)
def test_bad_or_missing_signature_changes_nothing(
    server: Server, make_key: object, expected: str
) -> None:
    key = zone_key(server, "ops-key")
    name = f"victim.{ZONE}"
    assert nsupdate(server, key, [f"update add {name} 60 A 192.0.2.30"]).returncode == 0
    before = serial(server)

    assert callable(make_key)
    done = nsupdate(
        server, make_key(key), [f"update delete {name} A", f"update add {name} 60 A 203.0.113.66"]
    )
    assert done.returncode != 0
    assert expected in done.stdout + done.stderr, done.stdout + done.stderr
    assert server.dig(name, "A").values("A") == ["192.0.2.30"]
    assert serial(server) == before


def test_host_key_may_change_only_its_host(server: Server) -> None:
    fqdn, _secret = server.new_host("cam1")
    other, _ = server.new_host("cam2")
    out = server.cli("key", "add", "cam1-key", "--host", fqdn).stdout
    key = out.strip().splitlines()[-1]

    done = nsupdate(server, key, [f"update delete {fqdn} A", f"update add {fqdn} 60 A 192.0.2.40"])
    assert done.returncode == 0, done.stderr
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.40"]

    before = serial(server)
    for commands in (
        [f"update add {other} 60 A 203.0.113.1"],  # another host
        [f"update add {fqdn} 60 MX 10 mail.example.org."],  # a type host keys may not touch
        [f"update add www.{ZONE} 60 A 203.0.113.1"],  # a new name
    ):
        done = nsupdate(server, key, commands)
        assert done.returncode != 0, commands
        assert "REFUSED" in done.stdout + done.stderr, done.stdout + done.stderr
    assert server.dig(other, "A").values("A") == []
    assert server.dig(fqdn, "MX").values("MX") == []
    assert serial(server) == before


def test_key_added_while_serving_works_at_once(server: Server) -> None:
    """The keyring reloads on an unknown key name, so there is no wait after `key add`."""
    server.ensure_zone()
    # Make the server read the keyring now, so the new key is unknown to it.
    assert nsupdate(server, None, [f"update add x.{ZONE} 60 A 192.0.2.1"]).returncode != 0
    key = zone_key(server, "fresh-key")
    done = nsupdate(server, key, [f"update add fresh.{ZONE} 60 A 192.0.2.50"])
    assert done.returncode == 0, done.stderr
    assert server.dig(f"fresh.{ZONE}", "A").values("A") == ["192.0.2.50"]
