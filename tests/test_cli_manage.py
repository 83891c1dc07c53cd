"""The operator's command line beyond adding things: zone options after creation, lists,
deletions, passwords, help an operator can read."""

from __future__ import annotations

import fcntl
import json
import os
import select
import sqlite3
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.test_cli import homing, ok, refused

ZONE = "dyn.example.net"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HOMING_")}
    return {**clean, "HOMING_DATA_DIR": str(tmp_path / "var")}


def rows(env: dict[str, str], sql: str, *args: object) -> list[tuple[object, ...]]:
    database = Path(env["HOMING_DATA_DIR"]) / "homing.db"
    with sqlite3.connect(database) as conn:
        return list(conn.execute(sql, args))


def zone_row(env: dict[str, str]) -> tuple[object, ...]:
    return rows(env, "SELECT notify, allow_transfer, public FROM zones WHERE name = ?", ZONE)[0]


def rrset(env: dict[str, str], name: str, rtype: str) -> str | None:
    found = rows(env, "SELECT rdatas FROM rrsets WHERE name = ? AND rtype = ?", name, rtype)
    return str(found[0][0]) if found else None


def add_user(env: dict[str, str], user: str = "alice") -> None:
    ok(homing(env, "user", "add", user, "--email", f"{user}@example.org", "--password-stdin",
              stdin="correct horse battery\n"))  # fmt: skip


def test_zone_set_changes_every_transfer_option(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", ZONE, "--ns", "ns.example.org"))
    assert zone_row(env) == ("", "", 1)
    out = ok(
        homing(env, "zone", "set", ZONE, "--notify", "192.0.2.53:53",
               "--notify", "[2001:db8::53]:53", "--allow-transfer", "192.0.2.0/24", "--private")
    )  # fmt: skip
    assert "options changed" in out
    assert zone_row(env) == ("192.0.2.53:53\n[2001:db8::53]:53", "192.0.2.0/24", 0)
    ok(homing(env, "zone", "set", ZONE, "--no-notify", "--offered"))
    assert zone_row(env) == ("", "192.0.2.0/24", 1)
    # Bad input changes nothing.
    refused(
        homing(env, "zone", "set", ZONE, "--notify", "nowhere", "--no-allow-transfer"), "notify"
    )
    assert zone_row(env) == ("", "192.0.2.0/24", 1)
    ok(homing(env, "zone", "set", ZONE, "--ns", "a.example.org", "--ns", "b.example.org"))
    assert rrset(env, ZONE, "NS") == "a.example.org.\nb.example.org."


def test_zone_add_exist_ok_applies_or_refuses(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", ZONE, "--ns", "ns.example.org"))
    ok(homing(env, "zone", "add", ZONE, "--exist-ok", "--notify", "192.0.2.53:53"))
    assert zone_row(env)[0] == "192.0.2.53:53"
    refused(homing(env, "zone", "add", ZONE, "--exist-ok", "--push", "192.0.2.1:53"),
            "--push cannot change")  # fmt: skip
    # The SOA's values are options zone set changes: --exist-ok applies them.
    ok(homing(env, "zone", "add", ZONE, "--exist-ok", "--ttl", "300"))
    assert rows(env, "SELECT default_ttl, minimum FROM zones") == [(300, 300)]
    # Nothing given: the zone stays as it is (make serve runs this on every start).
    ok(homing(env, "zone", "add", ZONE, "--exist-ok"))
    assert zone_row(env) == ("192.0.2.53:53", "", 1)


def test_in_zone_name_server_gets_its_address_or_a_warning(env: dict[str, str]) -> None:
    result = homing(env, "zone", "add", ZONE)
    ok(result)
    assert f"name server ns1.{ZONE} is inside the zone and has no address" in result.stderr
    result = homing(env, "zone", "set", ZONE, "--glue", f"ns1.{ZONE}=192.0.2.1")
    ok(result)
    assert "warning" not in result.stderr
    assert rrset(env, f"ns1.{ZONE}", "A") == "192.0.2.1"
    other = "other.example.net"
    result = homing(env, "zone", "add", other, "--ns", f"ns1.{other}=192.0.2.2",
                    "--ns", f"ns2.{other}=2001:db8::2")  # fmt: skip
    ok(result)
    assert result.stderr == ""
    assert rrset(env, f"ns2.{other}", "AAAA") == "2001:db8::2"
    refused(
        homing(env, "zone", "set", ZONE, "--glue", "ns.example.org=192.0.2.9"), "not a name inside"
    )
    refused(
        homing(env, "zone", "add", "x.example.net", "--glue", "ns1.x.example.net"), "NAME=ADDRESS"
    )


def test_lists_and_deletions(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", ZONE, "--ns", "ns.example.org"))
    add_user(env)
    ok(homing(env, "host", "add", f"cam.{ZONE}", "--owner", "alice"))
    ok(homing(env, "host", "add", f"nas.{ZONE}", "--owner", "alice"))
    ok(homing(env, "group", "add", f"pool.{ZONE}", "--owner", "alice", "--host", f"cam.{ZONE}"))
    table = ok(homing(env, "host", "list")).splitlines()
    assert table[0].split("\t")[:3] == ["host", "owner", "status"]
    assert [line.split("\t")[0] for line in table[1:]] == [f"cam.{ZONE}", f"nas.{ZONE}"]
    listed = json.loads(ok(homing(env, "host", "list", "--json", "--owner", "ALICE")))
    assert [h["name"] for h in listed] == [f"cam.{ZONE}", f"nas.{ZONE}"]
    assert listed[0]["owner"] == "alice" and listed[0]["addresses"] == []
    users = json.loads(ok(homing(env, "user", "list", "--json")))
    assert [(u["user"], u["hosts"]) for u in users] == [("alice", 2)]
    groups = json.loads(ok(homing(env, "group", "list", "--json")))
    assert groups == [
        {"name": f"pool.{ZONE}", "owner": "alice", "published": True, "members": [f"cam.{ZONE}"]}
    ]
    refused(homing(env, "zone", "delete", ZONE, "--force"), "still has 2 hosts")
    refused(homing(env, "zone", "delete", ZONE), "still has 2 hosts and 1 groups")
    ok(homing(env, "host", "delete", f"cam.{ZONE}"))
    refused(homing(env, "host", "delete", f"cam.{ZONE}"), "no host")
    assert json.loads(ok(homing(env, "group", "list", "--json")))[0]["members"] == []
    assert [h["name"] for h in json.loads(ok(homing(env, "host", "list", "--json")))] == [
        f"nas.{ZONE}"
    ]


def test_zone_delete(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", ZONE, "--ns", "ns.example.org"))
    ok(homing(env, "key", "add", "xfr", "--zone", ZONE))
    # Without --force: what would go, and nothing goes.
    refused(homing(env, "zone", "delete", ZONE), "1 rrsets, 1 keys and 1 history entries")
    assert rows(env, "SELECT count(*) FROM zones") == [(1,)]
    ok(homing(env, "zone", "delete", ZONE, "--force"))
    assert rows(env, "SELECT count(*) FROM zones") == [(0,)]
    assert rows(env, "SELECT count(*) FROM rrsets") == [(0,)]
    assert rows(env, "SELECT count(*) FROM tsig_keys") == [(0,)]
    refused(homing(env, "zone", "delete", ZONE, "--force"), "no zone")
    refused(homing(env, "zone", "delete", ZONE), "no zone")


def test_password_change(env: dict[str, str]) -> None:
    add_user(env)
    before = rows(env, "SELECT password_hash, session_epoch FROM accounts")[0]
    refused(homing(env, "user", "passwd", "alice", "--password-stdin", stdin="short\n"), "password")
    assert rows(env, "SELECT password_hash, session_epoch FROM accounts")[0] == before
    refused(homing(env, "user", "passwd", "bob", "--password-stdin", stdin="a long enough one\n"),
            "no user bob")  # fmt: skip
    out = ok(homing(env, "user", "passwd", "Alice", "--password-stdin", stdin="a new long one\n"))
    assert out.strip() == "password of alice changed"
    after = rows(env, "SELECT password_hash, session_epoch FROM accounts")[0]
    assert after[0] != before[0] and after[1] == before[1] + 1
    # No terminal and no --password-stdin: a clear refusal, not a hang.
    refused(homing(env, "user", "passwd", "alice"), "--password-stdin")


def _converse(args: list[str], env: dict[str, str], answers: list[str]) -> tuple[int, str]:
    """Run homing on a terminal of its own, answering each prompt in turn."""
    controller, terminal = os.openpty()

    def take_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "homing", *args], env=env, stdin=terminal, stdout=terminal,
        stderr=terminal, preexec_fn=take_terminal,
    )  # fmt: skip
    os.close(terminal)
    seen = b""
    pending = list(answers)
    answered = 0
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 60)
            assert ready, f"no output; so far {seen!r}"
            try:
                chunk = os.read(controller, 1024)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            seen += chunk
            # Answer a prompt once it is written whole (echo is off by then).
            if pending and seen[answered:].endswith(b": "):
                os.write(controller, pending.pop(0).encode() + b"\n")
                answered = len(seen)
        return proc.wait(timeout=60), seen.decode(errors="replace")
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_user_add_asks_for_the_password_twice_at_a_terminal(env: dict[str, str]) -> None:
    args = ["user", "add", "carol", "--email", "c@example.org"]
    code, text = _converse(args, env, ["first long password", "another long password"])
    assert code == 1 and "the passwords differ" in text
    assert not (Path(env["HOMING_DATA_DIR"]) / "homing.db").exists()  # asked before anything
    code, text = _converse(args, env, ["a long password", "a long password"])
    assert code == 0, text
    assert "Password again:" in text and "user carol added" in text
    refused(homing(env, "user", "add", "dave", "--email", "d@example.org"), "--password-stdin")


def test_group_of_the_command_line_answers_at_once(env: dict[str, str], tmp_path: Path) -> None:
    ok(homing(env, "zone", "add", ZONE, "--ns", "ns.example.org"))
    add_user(env)
    csv = tmp_path / "hosts.csv"
    csv.write_text(f"name,owner,ipv4\ncam.{ZONE},alice,192.0.2.7\n")
    ok(homing(env, "host", "import", str(csv)))
    # The member updated a moment ago, as the server records an update.
    database = Path(env["HOMING_DATA_DIR"]) / "homing.db"
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE hosts SET last_update_at = CURRENT_TIMESTAMP")
    ok(homing(env, "group", "add", f"pool.{ZONE}", "--owner", "alice", "--host", f"cam.{ZONE}"))
    assert rrset(env, f"pool.{ZONE}", "A") == "192.0.2.7"


@pytest.mark.parametrize(
    "command",
    [[], ["zone", "add"], ["zone", "set"], ["zone", "delete"], ["user", "add"], ["host", "list"],
     ["key", "add"], ["client", "--help"]],
)  # fmt: skip
def test_help_names_values_in_words(env: dict[str, str], command: list[str]) -> None:
    args = command if command[-1:] == ["--help"] else [*command, "--help"]
    text = ok(homing(env, *args))
    assert "<bool>" not in text and "<str>" not in text and "<int>" not in text, text
    usage = text.splitlines()[0]
    assert "{" not in usage, usage  # ZONE, not typer's {ZONE}


def test_zone_list_as_json(env: dict[str, str]) -> None:
    ok(homing(env, "zone", "add", ZONE, "--ns", "ns.example.org", "--private"))
    assert json.loads(ok(homing(env, "zone", "list", "--json"))) == [
        {"zone": ZONE, "serial": 1, "hosts": 0, "offered": False}
    ]
