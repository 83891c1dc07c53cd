"""The operator CLI as a new user runs it: secrets on the last line, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HOMING_")}
    return {**clean, "HOMING_DATA_DIR": str(tmp_path / "var")}


def homing(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homing", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


def test_starting_the_cli_and_the_client_runs_no_password_hash() -> None:
    """Every command and every client start imports these modules: an argon2 hash made at
    import (a fifth of a second of a core) would be paid by each of them."""
    probe = (
        "import argon2\n"
        "made = []\n"
        "real = argon2.PasswordHasher.hash\n"
        "argon2.PasswordHasher.hash = lambda self, *a, **k: made.append(a) or real(self, *a, **k)\n"
        "import homing.cli, homing.client.cli\n"
        "print(len(made))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "0", done.stdout + done.stderr


def test_zone_user_host_group(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", "dyn.example.net", "--ns", "ns1.example.net"))
    ok(
        homing(
            env,
            "user",
            "add",
            "alice",
            "--email",
            "a@example.org",
            "--password-stdin",
            stdin="correct horse battery\n",
        )
    )
    out = ok(homing(env, "host", "add", "Cam.Dyn.Example.Net", "--owner", "alice"))
    secret = out.strip().splitlines()[-1]
    assert len(secret) >= 22 and " " not in secret  # >= 128 bits, URL-safe
    out = ok(
        homing(
            env,
            "group",
            "add",
            "pool.dyn.example.net",
            "--owner",
            "alice",
            "--host",
            "cam.dyn.example.net",
        )
    )
    group_secret = out.strip().splitlines()[-1]
    assert group_secret != secret
    # The secret is stored only as a hash.
    database = Path(env["HOMING_DATA_DIR"]) / "homing.db"
    assert secret.encode() not in database.read_bytes()


def test_bad_input_fails_with_one_line(env: dict[str, str]) -> None:
    refused(homing(env, "zone", "add", "not a zone"), "not a valid host name")
    ok(homing(env, "zone", "add", "dyn.example.net"))
    refused(homing(env, "zone", "add", "dyn.example.net"), "exists")
    ok(homing(env, "zone", "add", "dyn.example.net", "--exist-ok"))
    refused(homing(env, "zone", "add", "z.example", "--notify", "nowhere"), "ADDRESS:PORT")
    refused(
        homing(
            env,
            "user",
            "add",
            "bob",
            "--email",
            "b@example.org",
            "--password-stdin",
            stdin="short\n",
        ),
        "PASSWORD_WEAK",
    )
    refused(homing(env, "user", "add", "bob", "--email", "b@example.org"), "--password-stdin")
    refused(homing(env, "host", "add", "cam.elsewhere.example", "--owner", "bob"), "not in a zone")
    refused(homing(env, "host", "add", "cam.dyn.example.net", "--owner", "nobody"), "no user")


def test_missing_config_file_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "HOMING_CONFIG": str(tmp_path / "missing.toml")}
    refused(homing(env, "zone", "add", "dyn.example.net"), "missing file")


def test_config_file_and_env_precedence(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "homing.toml"
    config.write_text(f'data_dir = "{tmp_path / "from-file"}"\n')
    ok(homing({**env, "HOMING_CONFIG": str(config)}, "zone", "add", "a.example"))
    # HOMING_DATA_DIR (set by the fixture) wins over the file.
    assert (Path(env["HOMING_DATA_DIR"]) / "homing.db").exists()
    assert not (tmp_path / "from-file").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text("no_such_setting = 1\n")
    refused(homing({**env, "HOMING_CONFIG": str(bad)}, "zone", "add", "b.example"), "bad settings")


def test_key_add_prints_nsupdate_form(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", "dyn.example.net"))
    out = ok(homing(env, "key", "add", "xfr-key", "--zone", "dyn.example.net"))
    algorithm, name, secret = out.strip().splitlines()[-1].split(":")
    assert (algorithm, name) == ("hmac-sha256", "xfr-key")
    import base64

    assert len(base64.b64decode(secret)) == 32
    out = ok(
        homing(env, "key", "add", "big", "--zone", "dyn.example.net", "--algorithm", "HMAC-SHA512")
    )
    assert out.strip().splitlines()[-1].startswith("hmac-sha512:big:")
    refused(
        homing(env, "key", "add", "old", "--zone", "dyn.example.net", "--algorithm", "hmac-md5"),
        "disabled",
    )
    refused(homing(env, "key", "add", "xfr-key", "--zone", "dyn.example.net"), "exists")
    refused(homing(env, "key", "add", "k2", "--zone", "nope.example"), "no zone")
    refused(homing(env, "key", "add", "k3"), "needs what it covers")


def test_imports(env: dict[str, str], tmp_path: Path) -> None:
    zone_file = tmp_path / "z.zone"
    zone_file.write_text(
        "$ORIGIN z.example.\n$TTL 60\n@ IN SOA ns.z.example. h.z.example. 1 2 3 4 5\n"
        "@ IN NS ns.z.example.\nns IN A 192.0.2.1\n"
    )
    ok(
        homing(
            env,
            "user",
            "add",
            "operator",
            "--email",
            "op@example.org",
            "--password-stdin",
            stdin="operator password\n",
        )
    )
    out = ok(homing(env, "zone", "import", "z.example", str(zone_file), "--owner", "operator"))
    assert out.splitlines()[0] == "name,secret"
    assert out.splitlines()[1].startswith("ns.z.example,")
    csv_file = tmp_path / "hosts.csv"
    csv_file.write_text("name,ipv4\na.z.example,192.0.2.7\n")
    secrets_file = tmp_path / "secrets.csv"
    ok(
        homing(
            env,
            "host",
            "import",
            str(csv_file),
            "--owner",
            "operator",
            "--secrets-out",
            str(secrets_file),
        )
    )
    assert secrets_file.stat().st_mode & 0o077 == 0
    assert secrets_file.read_text().splitlines()[1].startswith("a.z.example,")
    refused(homing(env, "host", "import", str(tmp_path / "missing.csv")), "cannot read")
    csv_file.write_text("name,ipv4\nb.z.example,banana\n")
    refused(homing(env, "host", "import", str(csv_file), "--owner", "operator"), "line 2")


def test_zone_push_settings(env: dict[str, str]) -> None:
    zone = "push.example.net"
    out = ok(homing(env, "zone", "add", zone, "--push", "127.0.0.1:5300", "--push-key", "k1"))
    assert f"zone {zone} ready" in out
    ok(homing(env, "key", "add", "k1", "--zone", zone))
    assert "pushes to [::1]:53" in ok(
        homing(env, "zone", "set", zone, "--push", "[::1]:53", "--push-key", "k1")
    )
    assert "pushes nowhere" in ok(homing(env, "zone", "set", zone, "--no-push"))
    refused(homing(env, "zone", "add", "x.example.net", "--push", "127.0.0.1:53"), "go together")
    refused(
        homing(env, "zone", "set", zone, "--push", "ns1:53", "--push-key", "k1"), "ADDRESS:PORT"
    )
    refused(homing(env, "zone", "set", zone), "--no-push")
    refused(homing(env, "zone", "set", "nope.example.net", "--no-push"), "no zone")


def test_secondary_zone_bad_input(env: dict[str, str]) -> None:
    zone = "sec.example.net"
    refused(homing(env, "zone", "add", zone, "--primary", "127.0.0.1"), "--primary: not an")
    refused(
        homing(env, "zone", "add", zone, "--primary", "127.0.0.1:53", "--primary-key", "nokey"),
        "no key nokey",
    )
    # Nothing of the refused commands was made.
    refused(homing(env, "key", "add", "k", "--zone", zone), "no zone")
    out = ok(homing(env, "zone", "add", zone, "--primary", "127.0.0.1:5300"))
    assert "a secondary of 127.0.0.1:5300" in out
    refused(homing(env, "key", "add", "k", "--zone", zone, "--secret", "not base64!"), "base64")
    refused(
        homing(env, "zone", "set", zone, "--primary", "127.0.0.1:5300", "--primary-key", "other"),
        "no key other",
    )
    refused(homing(env, "host", "add", f"cam.{zone}", "--owner", "eve"), "not in a zone")


def test_secondary_zone_with_a_shared_key(env: dict[str, str]) -> None:
    zone = "sec.example.net"
    secret = "c2VjcmV0LXNoYXJlZC13aXRoLXRoZS1wcmltYXJ5IQ=="
    ok(homing(env, "zone", "add", zone, "--primary", "127.0.0.1:5300"))
    out = ok(homing(env, "key", "add", "k", "--zone", zone, "--secret", secret))
    assert out.strip().splitlines()[-1] == f"hmac-sha256:k:{secret}"
    out = ok(homing(env, "zone", "set", zone, "--primary", "127.0.0.1:5301", "--primary-key", "k"))
    assert "a secondary of 127.0.0.1:5301 (key k)" in out
    # A zone of our own does not become a secondary; its NOTIFYs may be signed.
    ok(homing(env, "zone", "add", "own.example.net"))
    refused(
        homing(env, "zone", "set", "own.example.net", "--primary", "127.0.0.1:53"),
        "not a secondary zone",
    )
    refused(homing(env, "zone", "set", "own.example.net", "--notify-key", "k"), "not a key of")


def test_zone_list(env: dict[str, str]) -> None:
    assert ok(homing(env, "zone", "list")).splitlines() == ["zone\tserial\thosts\toffered"]
    ok(homing(env, "zone", "add", "dyn.example.net"))
    ok(homing(env, "zone", "add", "corp.example.net", "--private"))
    ok(
        homing(
            env, "user", "add", "bob", "--email", "b@example.org", "--password-stdin",
            stdin="correct horse battery\n",
        )
    )  # fmt: skip
    ok(homing(env, "host", "add", "cam.dyn.example.net", "--owner", "bob"))
    header, *rows = ok(homing(env, "zone", "list")).splitlines()
    assert header == "zone\tserial\thosts\toffered"
    listed = [row.split("\t") for row in rows]
    assert [(z, hosts, offered) for z, _, hosts, offered in listed] == [
        ("corp.example.net", "0", "no"),
        ("dyn.example.net", "1", "yes"),
    ]
    assert all(int(serial) >= 1 for _, serial, _, _ in listed)
