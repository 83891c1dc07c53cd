"""Certificates for a host and its wildcard from a real ACME CA (Debian's pebble, validating
DNS-01 against homing's DNS port), by real clients with the host's own credentials:
lego and certbot over RFC 2136 with the host's TSIG key, and lego's acme-dns provider
against homing's acme-dns compatible API. The challenge records are gone afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests import peers
from tests.e2e.conftest import (
    LOOPBACK,
    ZONE,
    Server,
    module_server,
)
from tests.e2e.secondaries import Nsd
from tests.e2e.test_rfc2136 import nsupdate, serial, zone_key
from tests.pebble import Pebble, running

ACME_DNS = f"acme-dns.{ZONE}"  # inside the zone: a host's CNAME to it is answered whole
CLIENT_TIMEOUT = 180.0

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def homing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `homing serve` for the module, with the acme-dns API on."""
    with module_server(tmp_path_factory.mktemp("homing"), HOMING_ACME_DNS_ZONE=ACME_DNS) as server:
        yield server


@pytest.fixture(scope="module")
def pebble(homing: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """Debian's pebble, resolving (and so validating DNS-01) at homing's DNS port only."""
    with running(tmp_path_factory.mktemp("pebble"), homing.dns_port) as ca:
        yield ca


def names_of(pem: bytes) -> set[str]:
    cert = x509.load_pem_x509_certificate(pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName))


def host_key(server: Server, fqdn: str, name: str) -> tuple[str, str, str]:
    out = server.cli("key", "add", name, "--host", fqdn).stdout
    algorithm, key_name, secret = out.strip().splitlines()[-1].split(":", 2)
    return algorithm, key_name, secret


def no_challenge_left(server: Server, fqdn: str) -> None:
    assert server.dig(f"_acme-challenge.{fqdn}", "TXT").values("TXT") == []


def lego(
    pebble: Pebble, server: Server, base: Path, fqdn: str, provider: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    args = [
        peers.program("lego"),
        "--server", pebble.directory, "--accept-tos", "--email", "acme@example.org",
        "--path", str(base), "--dns", provider, "--dns.disable-cp",
        "--dns.resolvers", f"{LOOPBACK}:{server.dns_port}",
        "--domains", fqdn, "--domains", f"*.{fqdn}", "run",
    ]  # fmt: skip
    return subprocess.run(
        args,
        env=dict(os.environ, LEGO_CA_CERTIFICATES=str(pebble.ca), **env),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
    )


def test_lego_rfc2136_with_the_hosts_own_key(
    homing: Server, pebble: Pebble, tmp_path: Path
) -> None:
    fqdn, _ = homing.new_host("lego1")
    algorithm, name, secret = host_key(homing, fqdn, "lego1-key")
    done = lego(
        pebble,
        homing,
        tmp_path,
        fqdn,
        "rfc2136",
        {
            "RFC2136_NAMESERVER": f"{LOOPBACK}:{homing.dns_port}",
            "RFC2136_TSIG_ALGORITHM": f"{algorithm}.",
            "RFC2136_TSIG_KEY": name,
            "RFC2136_TSIG_SECRET": secret,
            "RFC2136_POLLING_INTERVAL": "1",
            "RFC2136_PROPAGATION_TIMEOUT": "30",
            "RFC2136_TTL": "60",
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    issued = (tmp_path / "certificates" / f"{fqdn}.crt").read_bytes()
    assert names_of(issued) == {fqdn, f"*.{fqdn}"}
    no_challenge_left(homing, fqdn)


def debian_certbot() -> str:
    """Debian's certbot, which has python3-certbot-dns-rfc2136 (the venv's has dns-multi)."""
    found = shutil.which("certbot", path="/usr/bin")
    if found is None:
        peers.missing("certbot (Debian's, with python3-certbot-dns-rfc2136)")
        raise AssertionError("unreachable")
    return found


def test_certbot_rfc2136_with_the_hosts_own_key(
    homing: Server, pebble: Pebble, tmp_path: Path
) -> None:
    fqdn, _ = homing.new_host("certbot1")
    algorithm, name, secret = host_key(homing, fqdn, "certbot1-key")
    credentials = tmp_path / "rfc2136.ini"
    credentials.write_text(
        f"dns_rfc2136_server = {LOOPBACK}\n"
        f"dns_rfc2136_port = {homing.dns_port}\n"
        f"dns_rfc2136_name = {name}\n"
        f"dns_rfc2136_secret = {secret}\n"
        f"dns_rfc2136_algorithm = {algorithm.upper()}\n"
    )
    credentials.chmod(0o600)
    args = [
        debian_certbot(), "certonly", "--non-interactive", "--agree-tos",
        "--register-unsafely-without-email", "--server", pebble.directory,
        "--config-dir", str(tmp_path / "etc"), "--work-dir", str(tmp_path / "work"),
        "--logs-dir", str(tmp_path / "logs"),
        "--dns-rfc2136", "--dns-rfc2136-credentials", str(credentials),
        "--dns-rfc2136-propagation-seconds", "1",
        "--cert-name", "host", "-d", fqdn, "-d", f"*.{fqdn}",
    ]  # fmt: skip
    done = subprocess.run(
        args,
        env=dict(os.environ, REQUESTS_CA_BUNDLE=str(pebble.ca)),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    issued = (tmp_path / "etc" / "live" / "host" / "cert.pem").read_bytes()
    assert names_of(issued) == {fqdn, f"*.{fqdn}"}
    no_challenge_left(homing, fqdn)


EXPIRE_LATER = """
import asyncio, datetime, sys
from homing.config import Settings
from homing.service.challenges import expire
from homing.service.context import Homing

async def main() -> None:
    homing = Homing.from_settings(Settings())
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)
    print(await expire(homing.db, 3600, acme_dns_zone=sys.argv[1], now=later))
    await homing.db.close()

asyncio.run(main())
"""


def certbot_dns_multi(
    pebble: Pebble, base: Path, fqdn: str, credentials: Path
) -> subprocess.CompletedProcess[str]:
    """The venv's certbot (PyPI) with certbot-dns-multi: lego's acme-dns provider."""
    program = Path(sys.executable).parent / "certbot"
    if not program.exists():
        peers.missing("certbot with certbot-dns-multi in the venv (the dev extra)")
    args = [
        str(program), "certonly", "--non-interactive", "--agree-tos",
        "--register-unsafely-without-email", "--server", pebble.directory,
        "--config-dir", str(base / "etc"), "--work-dir", str(base / "work"),
        "--logs-dir", str(base / "logs"),
        "--authenticator", "dns-multi", "--dns-multi-credentials", str(credentials),
        "--dns-multi-propagation-seconds", "1",
        "--cert-name", "host", "-d", fqdn, "-d", f"*.{fqdn}",
    ]  # fmt: skip
    return subprocess.run(
        args,
        env=dict(os.environ, REQUESTS_CA_BUNDLE=str(pebble.ca)),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
    )


def test_acme_dns_client_through_homings_acme_dns_api(
    homing: Server, pebble: Pebble, tmp_path: Path
) -> None:
    fqdn, _ = homing.new_host("acmedns1")
    storage = tmp_path / "acme-dns.json"
    credentials = tmp_path / "multi.ini"
    credentials.write_text(
        "dns_multi_provider = acme-dns\n"
        f"ACME_DNS_API_BASE = {homing.http_url}\n"
        f"ACME_DNS_STORAGE_PATH = {storage}\n"
    )
    credentials.chmod(0o600)
    # The first run registers at POST /register and asks for the CNAME, as with acme-dns.
    first = certbot_dns_multi(pebble, tmp_path, fqdn, credentials)
    assert storage.exists(), first.stdout + first.stderr
    accounts = json.loads(storage.read_text())
    fulldomain = accounts[fqdn]["fulldomain"]
    assert fulldomain.endswith(f".{ACME_DNS}")
    if first.returncode != 0:
        operator = zone_key(homing, "acme-ops")
        cname = f"update add _acme-challenge.{fqdn} 60 CNAME {fulldomain}."
        done = nsupdate(homing, operator, [cname])
        assert done.returncode == 0, done.stderr
        second = certbot_dns_multi(pebble, tmp_path, fqdn, credentials)
        assert second.returncode == 0, second.stdout + second.stderr
    issued = (tmp_path / "etc" / "live" / "host" / "cert.pem").read_bytes()
    assert names_of(issued) == {fqdn, f"*.{fqdn}"}
    # acme-dns keeps the two latest values (its API deletes nothing): a name and its
    # wildcard validated together. homing's expiry removes them after their lifetime.
    assert len(homing.dig(fulldomain, "TXT").values("TXT")) == 2
    expired = subprocess.run(
        [sys.executable, "-c", EXPIRE_LATER, ACME_DNS],
        env=homing.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert expired.returncode == 0 and expired.stdout.strip() == "1", expired.stderr
    homing.wait_dns(fulldomain, "TXT", lambda a: a.status == "NXDOMAIN")
    # the registration's key sets its own name only
    with httpx.Client() as client:
        refused = client.post(
            f"{homing.http_url}/update",
            json={"subdomain": accounts[fqdn]["subdomain"], "txt": "x" * 43},
            headers={"X-Api-User": accounts[fqdn]["username"], "X-Api-Key": "y" * 40},
        )
    assert refused.status_code == 401


def test_the_hosts_key_sets_only_its_own_challenge(homing: Server) -> None:
    """What certbot and lego send, aimed elsewhere: refused, the zone unchanged."""
    fqdn, _ = homing.new_host("scope1")
    other, _ = homing.new_host("scope2")
    algorithm, name, secret = host_key(homing, fqdn, "scope1-key")
    key = f"{algorithm}:{name}:{secret}"
    before = serial(homing)
    for commands in (
        [f'update add _acme-challenge.{other} 60 TXT "x"'],  # another host's challenge
        [f'update add _acme-challenge.www.{fqdn} 60 TXT "x"'],  # a name below its own
        [f'update add _acme.{fqdn} 60 TXT "x"'],  # outside _acme-challenge
        [f'update add www.{fqdn} 60 TXT "x"'],
        [f"update add _acme-challenge.{fqdn} 60 CNAME evil.example.org."],  # another type
        [f"update delete _acme-challenge.{other} TXT"],
    ):
        done = nsupdate(homing, key, commands)
        assert done.returncode != 0, commands
        assert "REFUSED" in done.stdout + done.stderr, commands
    assert serial(homing) == before


SECONDARY_ZONE = "sec-acme.example.org"
FRESH_TIMEOUT = 10.0  # NOTIFY, SOA check, IXFR and reload


def test_challenge_values_reach_a_secondary_by_notify_and_ixfr(
    homing: Server, tmp_path: Path
) -> None:
    """A CA may ask any of the zone's servers: NSD, fed by homing, answers the value."""
    nsd = Nsd(directory=tmp_path)
    nsd.version()
    homing.cli(
        "zone", "add", SECONDARY_ZONE, "--ns", "ns1.example.org",
        "--notify", f"{LOOPBACK}:{nsd.port}", "--allow-transfer", f"{LOOPBACK}/32",
    )  # fmt: skip
    homing.ensure_user()
    fqdn = f"cam.{SECONDARY_ZONE}"
    secret = homing.cli("host", "add", fqdn, "--owner", "alice").stdout.strip().splitlines()[-1]
    homing.wait_dns(SECONDARY_ZONE, "SOA", lambda a: a.status == "NOERROR", timeout=10)
    nsd.configure(SECONDARY_ZONE, homing.dns_port)
    nsd.start()
    try:
        nsd.wait_for("the first transfer", lambda: nsd.serial(SECONDARY_ZONE) is not None, 30)

        def challenge() -> list[str]:
            answer = nsd.query(f"_acme-challenge.{fqdn}", "TXT")
            if answer is None:
                return []
            return sorted(r.to_text() for rrset in answer.answer for r in rrset)

        value = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
        url = f"{homing.http_url}/nic/update"
        set_it = httpx.get(url, params={"txt": value}, auth=(fqdn, secret), timeout=10)
        assert set_it.text == "good\n"
        nsd.wait_for("the challenge", lambda: challenge() == [f'"{value}"'], FRESH_TIMEOUT)
        cleared = httpx.get(url, params={"clear": "true"}, auth=(fqdn, secret), timeout=10)
        assert cleared.text == "good\n"
        nsd.wait_for("the challenge's removal", lambda: challenge() == [], FRESH_TIMEOUT)
    finally:
        nsd.stop()
