"""A host's TSIG key with the real `nsupdate` against `homing serve`: it changes what the
host's update secret could, and nothing of the operator's."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import Server
from tests.e2e.test_rfc2136 import nsupdate, serial, zone_key


def host_key(server: Server, fqdn: str, name: str) -> str:
    out = server.cli("key", "add", name, "--host", fqdn).stdout
    return out.strip().splitlines()[-1]


def test_host_key_delete_leaves_the_operators_mx(server: Server) -> None:
    fqdn, _ = server.new_host("mail1")
    operator = zone_key(server, "ops-key")
    done = nsupdate(server, operator, [f"update add {fqdn} 300 MX 10 mx.example.org."])
    assert done.returncode == 0, done.stderr
    key = host_key(server, fqdn, "mail1-key")

    done = nsupdate(server, key, [f"update add {fqdn} 3600 A 192.0.2.50"])
    assert done.returncode == 0, done.stderr
    answer = server.dig(fqdn, "A")
    assert answer.values("A") == ["192.0.2.50"]
    assert [r.ttl for r in answer.answer] == [60]  # the host's TTL, not the request's

    done = nsupdate(server, key, [f"update delete {fqdn}"])
    assert done.returncode == 0, done.stderr
    assert server.dig(fqdn, "A").values("A") == []
    assert server.dig(fqdn, "MX").values("MX") == ["10 mx.example.org."]


def test_host_key_sets_its_acme_challenge_only(server: Server) -> None:
    fqdn, _ = server.new_host("web1")
    other, _ = server.new_host("web2")
    key = host_key(server, fqdn, "web1-key")
    done = nsupdate(server, key, [f'update add _acme-challenge.{fqdn} 60 TXT "token-1"'])
    assert done.returncode == 0, done.stderr
    assert server.dig(f"_acme-challenge.{fqdn}", "TXT").values("TXT") == ['"token-1"']

    before = serial(server)
    for commands in (
        [f'update add _acme-challenge.{other} 60 TXT "token-2"'],  # another host's
        [f"update add _acme-challenge.{fqdn} 60 CNAME elsewhere.example.org."],  # only TXT
        [f"update delete {other}"],
    ):
        done = nsupdate(server, key, commands)
        assert done.returncode != 0, commands
        assert "REFUSED" in done.stdout + done.stderr, done.stdout + done.stderr
    assert serial(server) == before


def test_a_blocked_hosts_key_is_refused(server: Server) -> None:
    fqdn, secret = server.new_host("cam9")
    key = host_key(server, fqdn, "cam9-key")
    url = f"{server.http_url}/nic/update"
    # The dyndns2 abuse rule blocks a host that keeps sending its unchanged address.
    with httpx.Client(auth=(fqdn, secret), timeout=10) as client:
        for _ in range(30):
            body = client.get(url, params={"hostname": fqdn, "myip": "192.0.2.60"}).text
            if body.strip() == "abuse":
                break
        else:
            raise AssertionError(f"never blocked; last answer {body!r}")
    before = serial(server)

    done = nsupdate(server, key, [f"update delete {fqdn} A", f"update add {fqdn} 60 A 192.0.2.61"])
    assert done.returncode != 0
    assert "REFUSED" in done.stdout + done.stderr, done.stdout + done.stderr
    assert server.dig(fqdn, "A").values("A") == ["192.0.2.60"]
    assert serial(server) == before
