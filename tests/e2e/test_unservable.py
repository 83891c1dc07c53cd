"""One bad address must not poison a zone: refused at the door, and a row that is already
stored (an older version's, or written by hand) is skipped by `homing serve` at start and
by its journal follower, later updates still reach DNS, and `homing check` names the row."""

from __future__ import annotations

import sqlite3
import subprocess
from contextlib import closing

import pytest

from tests import peers
from tests.e2e.conftest import ZONE, Server
from tests.e2e.test_rfc2136 import nsupdate, serial, zone_key

pytestmark = pytest.mark.peer("curl")

SCOPED = "fe80::1%eth0"


def get(url: str, *args: str) -> str:
    """The body of a GET with the real curl (asserting HTTP 200)."""
    result = subprocess.run(
        [peers.program("curl"), "-sS", "--max-time", "10", "-w", "\n%{http_code}", *args, url],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    body, _, code = result.stdout.rpartition("\n")
    assert code == "200", f"{url}: HTTP {code} {body!r}"
    return body.strip()


def nic(server: Server, fqdn: str, secret: str, myip: str) -> str:
    return get(
        f"{server.http_url}/nic/update?hostname={fqdn}&myip={myip}", "-u", f"{fqdn}:{secret}"
    )


def poison(server: Server, fqdn: str) -> int:
    """Store what an older version stored for `myip=fe80::1%25eth0`: the AAAA RRset, its
    journal entry and the zone's serial, with SQL. The entry's serial."""
    with closing(sqlite3.connect(server.data_dir / "homing.db", timeout=30)) as conn, conn:
        zone_id, serial = conn.execute(
            "SELECT id, serial FROM zones WHERE name = ?", (ZONE,)
        ).fetchone()
        (at,) = conn.execute("SELECT at FROM journal ORDER BY id DESC LIMIT 1").fetchone()
        conn.execute(
            "INSERT INTO rrsets (zone_id, name, rtype, ttl, rdatas) VALUES (?, ?, 'AAAA', 60, ?)"
            " ON CONFLICT (zone_id, name, rtype) DO UPDATE SET rdatas = excluded.rdatas",
            (zone_id, fqdn, SCOPED),
        )
        conn.execute(
            "INSERT INTO journal (zone_id, serial, name, rtype, ttl, old, new, actor, via, at)"
            " VALUES (?, ?, ?, 'AAAA', 60, '', ?, 'an older version', 'dyndns2', ?)",
            (zone_id, serial + 1, fqdn, SCOPED, at),
        )
        conn.execute("UPDATE zones SET serial = ? WHERE id = ?", (serial + 1, zone_id))
    return int(serial) + 1


def test_a_zone_id_is_refused_at_the_door(server: Server) -> None:
    fqdn, secret = server.new_host("door")
    assert nic(server, fqdn, secret, "192.0.2.10") == "good 192.0.2.10"
    for myip in ("fe80::1%25eth0", "192.0.2.11,fe80::1%25eth0", "255.255.255.255", "240.0.0.1"):
        assert nic(server, fqdn, secret, myip) == "badagent", myip
    dvr = f"{server.http_url}/dvr/update?host={fqdn}&password={secret}&ip=fe80::1%25eth0"
    assert get(dvr) == "ERR 0x80008003"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.10"]
    assert server.dig(fqdn, "AAAA").values("AAAA") == []
    assert server.cli("check").stdout.strip() == "no unservable rows"


def test_a_stored_unservable_row_is_skipped_and_the_zone_moves_on(server: Server) -> None:
    fqdn, secret = server.new_host("poisoned")
    assert nic(server, fqdn, secret, "192.0.2.20") == "good 192.0.2.20"

    # Written while the server is down: `homing serve` starts anyway, naming the row.
    server.stop()
    serial = poison(server, fqdn)
    server.start()
    assert f"stored RRset {fqdn} AAAA cannot be served, skipped" in server.stderr_text()
    assert server.dig(ZONE, "SOA").answer[0].data.split()[2] == str(serial)
    assert nic(server, fqdn, secret, "192.0.2.21") == "good 192.0.2.21"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.21"]  # the update reached DNS

    checked = server.cli("check", check=False)
    assert checked.returncode == 1
    lines = checked.stdout.strip().splitlines()
    assert lines == [
        f"rrset zone={ZONE} serial={serial + 1} name={fqdn} type=AAAA: {fqdn} AAAA "
        f"'{SCOPED}': scope IDs are not allowed in an address",
        f"journal zone={ZONE} serial={serial} name={fqdn} type=AAAA: {fqdn} AAAA "
        f"'{SCOPED}': scope IDs are not allowed in an address",
    ]

    # Written while it runs, as another process would commit it: the follower skips it.
    serial = poison(server, fqdn)
    server.wait_dns(ZONE, "SOA", lambda a: a.answer[0].data.split()[2] == str(serial))
    assert f"serial {serial}: journal entry {fqdn} AAAA cannot be served" in server.stderr_text()
    assert nic(server, fqdn, secret, "192.0.2.22") == "good 192.0.2.22"
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.22"]

    # The owner's next dual-stack update mends the row; the server restarts clean.
    assert nic(server, fqdn, secret, "192.0.2.22,2001:db8::22") == "good 192.0.2.22,2001:db8::22"
    assert server.dig(fqdn, "AAAA").values("AAAA") == ["2001:db8::22"]
    assert server.cli("check").stdout.strip() == "no unservable rows"
    server.restart()
    assert server.dig(fqdn, "AAAA").values("AAAA") == ["2001:db8::22"]


@pytest.mark.peer("nsupdate")
def test_rfc2136_refuses_what_may_not_be_published(server: Server) -> None:
    """A zone ID cannot travel in an UPDATE's wire form; the other rules hold there too."""
    key = zone_key(server, "rules-key")
    name = f"lan.{ZONE}"
    before = serial(server)
    for rtype, value in [
        ("A", "255.255.255.255"),
        ("A", "240.0.0.1"),
        ("A", "0.0.0.0"),
        ("AAAA", "ff02::1"),
        ("AAAA", "::ffff:192.0.2.1"),
    ]:
        done = nsupdate(server, key, [f"update add {name} 60 {rtype} {value}"])
        assert done.returncode != 0 and "REFUSED" in done.stdout + done.stderr, (value, done)
    assert serial(server) == before
    assert server.dig(name, "A").status == "NXDOMAIN"
    done = nsupdate(server, key, [f"update add {name} 60 A 192.168.1.10"])
    assert done.returncode == 0, done.stderr
    assert server.dig(name, "A").values("A") == ["192.168.1.10"]
