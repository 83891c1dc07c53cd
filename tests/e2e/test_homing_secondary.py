"""A second homing node as a DNS secondary of another: two `homing serve` processes, each
with its own store, the secondary pulling the zone by SOA check, AXFR and IXFR (TSIG),
woken by the primary's signed NOTIFY.

The delay from the primary's `good` to the secondary answering the new address is
printed and appended to bench/results/freshness.jsonl.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import pytest
from typer.testing import CliRunner

from homing.cli import app
from tests.e2e.conftest import (
    LOOPBACK,
    POSTGRES_URL,
    START_ATTEMPTS,
    Server,
    ServerError,
    _drop_schema,
    _free_tcp_port,
    free_dns_port,
)
from tests.e2e.test_hidden_primary import START_TIMEOUT, KnotPrimary
from tests.e2e.test_secondaries import nic_update, record_freshness

ZONE = "pair.example.org"
SYNC_TIMEOUT = 30.0  # the secondary's first AXFR, right after it starts
FRESH_TIMEOUT = 10.0  # NOTIFY, SOA check, IXFR after an update
POLL_INTERVAL = 0.01
KEY_NAME = "xfr-pair"


@dataclass
class Pair:
    primary: Server
    secondary: Server
    key: str  # ALG:NAME:SECRET, as `homing key add` printed it on the primary
    backend: str


def cli(server: Server, *args: str, check: bool = True, input_text: str | None = None) -> str:
    """`homing ARGS` against the server's store, run in this process: the same commands
    as the real CLI without a Python start each (this test runs many)."""
    result = CliRunner().invoke(
        app, list(args), env=server.env, input=input_text, catch_exceptions=False
    )
    if check:
        assert result.exit_code == 0, f"homing {' '.join(args)}: {result.output}"
    else:
        assert result.exit_code != 0, f"homing {' '.join(args)} succeeded: {result.output}"
    return result.output


def _make_server(base: Path, name: str, dig_path: str, env_extra: dict[str, str]) -> Server:
    """A `homing serve` of our own on free loopback ports, not started yet."""
    data_dir = base / name / "data"
    log_dir = base / name / "logs"
    data_dir.mkdir(parents=True)
    log_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMING_")}
    if "HOMING_REQUIRE_PEERS" in os.environ:
        env["HOMING_REQUIRE_PEERS"] = os.environ["HOMING_REQUIRE_PEERS"]
    env.update(env_extra)
    dns_port = free_dns_port()
    http_port = _free_tcp_port()
    env.update(
        HOMING_DATA_DIR=str(data_dir),
        HOMING_DNS_LISTEN=f"{LOOPBACK}:{dns_port}",
        HOMING_HTTP_LISTEN=f"{LOOPBACK}:{http_port}",
        PYTHONUNBUFFERED="1",
    )
    return Server(data_dir, dns_port, http_port, log_dir, dig_path, env=env)


def _start(make: Callable[[int], Server]) -> Server:
    """Start a server; another machine's process may take a probed port first: retry with
    a fresh one (`make` builds and configures each attempt's)."""
    for attempt in range(1, START_ATTEMPTS + 1):
        srv = make(attempt)
        try:
            srv.start()
        except ServerError as exc:
            if "cannot listen" in str(exc) and attempt < START_ATTEMPTS:
                continue
            raise
        return srv
    raise AssertionError("unreachable")


@pytest.fixture
def pair(request: pytest.FixtureRequest, tmp_path: Path, dig_path: str) -> Iterator[Pair]:
    """A primary homing (SQLite or PostgreSQL store) with ZONE, and a secondary homing
    (its own SQLite store) configured for it; both stopped by PID at teardown.

    The primary's store holds the zone, its key and notify key and the user before the
    primary starts, so it signs its first NOTIFY (a running server also reads settings
    changes within its follow interval; tests/e2e/test_settings_reload.py tests that)."""
    backend = getattr(request, "param", "sqlite")
    schemas: list[str] = []
    # The secondary's ports are known before it starts: the primary notifies it.
    secondary = _make_server(tmp_path, "secondary", dig_path, {})
    keys: list[str] = []  # each attempt's; the last is the started primary's

    def configured_primary(attempt: int) -> Server:
        """Each attempt's primary has a store of its own (a fresh data dir or schema)."""
        env: dict[str, str] = {}
        if backend == "postgresql":
            schemas.append(f"homing_pair_{os.getpid()}_{secrets.token_hex(4)}")
            env = {"HOMING_DATABASE_URL": POSTGRES_URL, "HOMING_DATABASE_SCHEMA": schemas[-1]}
        primary = _make_server(tmp_path, f"primary-{attempt}", dig_path, env)
        cli(
            primary, "zone", "add", ZONE, "--ns", "ns1.example.org", "--ns", "ns2.example.org",
            "--notify", f"{LOOPBACK}:{secondary.dns_port}",
        )  # fmt: skip
        keys.append(cli(primary, "key", "add", KEY_NAME, "--zone", ZONE).strip().splitlines()[-1])
        cli(primary, "zone", "set", ZONE, "--notify-key", KEY_NAME)  # NOTIFYs signed too
        cli(primary, "user", "add", "alice", "--email", "a@example.org", "--password-stdin",
            input_text="correct horse battery staple\n")  # fmt: skip
        return primary

    started: list[Server] = []
    try:
        primary = _start(configured_primary)
        started.append(primary)
        key = keys[-1]
        algorithm, name, secret = key.split(":")
        where = f"{LOOPBACK}:{primary.dns_port}"
        cli(secondary, "zone", "add", ZONE, "--primary", where)
        cli(secondary, "key", "add", name, "--zone", ZONE, "--algorithm", algorithm,
            "--secret", secret)  # fmt: skip
        cli(secondary, "zone", "set", ZONE, "--primary", where, "--primary-key", name)
        started.append(secondary)
        yield Pair(primary, secondary, key, backend)
    finally:
        for srv in started:
            srv.stop()
        for schema in schemas:
            _drop_schema(schema)


def addresses(server: Server, fqdn: str) -> list[str] | None:
    """The A records the server answers (None: not NOERROR), by one dnspython query."""
    query = dns.message.make_query(fqdn, "A")
    try:
        response = dns.query.udp(query, LOOPBACK, port=server.dns_port, timeout=0.5)
    except dns.exception.Timeout:
        return None
    if response.rcode() != dns.rcode.NOERROR:
        return None
    return sorted(r.to_text() for rrset in response.answer for r in rrset)


def wait_for(what: str, done: Callable[[], bool], timeout: float, server: Server) -> float:
    """Poll until `done()`, bounded; seconds taken. The secondary announces nothing a test
    could wait on, so this polls every 10 ms."""
    started = time.monotonic()
    while not done():
        assert server.running, f"server exited:\n{server.stderr_text()[-4000:]}"
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s\n{server.stderr_text()[-4000:]}")
        time.sleep(POLL_INTERVAL)  # polling interval: no event exists (see docstring)
    return time.monotonic() - started


def soa_serial(server: Server) -> int:
    return int(server.kdig(ZONE, "SOA").values("SOA")[0].split()[2])


def record(backend: str, phase: str, seconds: float) -> None:
    version = f"homing (primary on {backend})"
    test = "tests/e2e/test_homing_secondary.py"
    record_freshness(f"homing ({backend} primary)", version, test, phase, seconds)


def first_copy(pair: Pair) -> tuple[str, str]:
    """A host at the primary with 192.0.2.1; the secondary started and holding it (its
    first transfer, an AXFR: it has no copy). The host's name and update secret."""
    primary, secondary = pair.primary, pair.secondary
    fqdn = f"cam.{ZONE}"
    secret = cli(primary, "host", "add", fqdn, "--owner", "alice").strip().splitlines()[-1]
    primary.wait_dns(ZONE, "SOA", lambda a: a.status == "NOERROR", timeout=10)
    nic_update(primary, fqdn, secret, "192.0.2.1")
    secondary.start()
    wait_for("first AXFR", lambda: addresses(secondary, fqdn) == ["192.0.2.1"], SYNC_TIMEOUT,
             secondary)  # fmt: skip
    return fqdn, secret


def transfers(server: Server, kind: str, *, this_start_only: bool = False) -> int:
    text = server.stderr_path.read_text() if this_start_only else server.stderr_text()
    return len(re.findall(rf"secondary zone {re.escape(ZONE)}: {kind} from ", text))


def logged_transfers(
    server: Server, kind: str, *, at_least: int = 1, this_start_only: bool = False
) -> int:
    """The transfers of `kind` the server has logged, once it has logged `at_least`: its
    log lines are written at the end of the event loop's turn, so an answer sent in the
    turn that installed a transfer can reach the test before the transfer's line."""
    wait_for(f"{at_least} {kind} logged",
             lambda: transfers(server, kind, this_start_only=this_start_only) >= at_least,
             FRESH_TIMEOUT, server)  # fmt: skip
    return transfers(server, kind, this_start_only=this_start_only)


@pytest.mark.parametrize("pair", ["sqlite", "postgresql"], indirect=True)
def test_second_homing_node_follows_and_survives_the_primary(pair: Pair) -> None:
    primary, secondary = pair.primary, pair.secondary
    fqdn, secret = first_copy(pair)
    assert logged_transfers(secondary, "AXFR") == 1
    answer = secondary.dig(fqdn, "A")
    assert answer.status == "NOERROR" and answer.aa and answer.values("A") == ["192.0.2.1"]
    assert soa_serial(secondary) == soa_serial(primary)  # the primary's serial, exactly
    assert secondary.kdig(ZONE, "NS").values("NS") == ["ns1.example.org.", "ns2.example.org."]

    # An update at the primary: its signed NOTIFY makes the secondary fetch it by IXFR.
    nic_update(primary, fqdn, secret, "192.0.2.2")
    acked = time.monotonic()
    took = wait_for("NOTIFY + IXFR", lambda: addresses(secondary, fqdn) == ["192.0.2.2"],
                    FRESH_TIMEOUT, secondary)  # fmt: skip
    record(pair.backend, "notify+ixfr", took)
    assert secondary.kdig(fqdn, "A").values("A") == ["192.0.2.2"]
    assert time.monotonic() >= acked
    assert logged_transfers(secondary, "IXFR") == 1
    assert soa_serial(secondary) == soa_serial(primary)

    # The secondary serves the zone on to its own secondaries (AXFR with the key).
    algorithm, name, key_secret = pair.key.split(":")
    keyring = dns.tsigkeyring.from_text({name: (algorithm, key_secret)})
    axfr = dns.message.make_query(ZONE, dns.rdatatype.AXFR)
    axfr.use_tsig(keyring, keyname=name)
    records = [
        (rrset.name.to_text(), rrset.rdtype)
        for message in dns.query.xfr(
            LOOPBACK,
            ZONE,
            port=secondary.dns_port,
            keyring=keyring,
            keyname=name,
            timeout=5,
            relativize=False,
        )
        for rrset in message.answer
    ]
    assert (f"{fqdn}.", dns.rdatatype.A) in records and records[0][1] == dns.rdatatype.SOA

    # Its own writes never touch the zone: no host there, a signed UPDATE is refused.
    assert "not in a zone" in cli(secondary, "host", "add", f"new.{ZONE}", "--owner", "x",
                                  check=False)  # fmt: skip
    update = dns.update.UpdateMessage(ZONE, keyring=keyring, keyname=name)
    update.replace("cam", 60, "A", "198.51.100.9")
    response = dns.query.tcp(update, LOOPBACK, port=secondary.dns_port, timeout=5)
    assert response.rcode() == dns.rcode.REFUSED
    assert addresses(secondary, fqdn) == ["192.0.2.2"]

    # The primary stops (SIGTERM by PID): the secondary keeps answering.
    primary.stop()
    assert secondary.dig(fqdn, "A").values("A") == ["192.0.2.2"]

    # The secondary restarts while the primary is down: its stored copy is answered at
    # once, without a transfer.
    secondary.restart()
    assert secondary.dig(fqdn, "A").values("A") == ["192.0.2.2"]
    assert secondary.kdig(ZONE, "SOA").status == "NOERROR"
    restarted = secondary.stderr_path.read_text()
    assert f"secondary zone {ZONE} loaded at serial" in restarted
    assert transfers(secondary, "AXFR", this_start_only=True) == 0

    # The primary is back with more updates: the secondary catches up by IXFR.
    primary.start()
    nic_update(primary, fqdn, secret, "192.0.2.3")
    nic_update(primary, fqdn, secret, "192.0.2.4")
    acked = time.monotonic()
    took = wait_for("catch-up", lambda: addresses(secondary, fqdn) == ["192.0.2.4"],
                    FRESH_TIMEOUT, secondary)  # fmt: skip
    record(pair.backend, "after-restart", took)
    wait_for("same serial", lambda: soa_serial(secondary) == soa_serial(primary), FRESH_TIMEOUT,
             secondary)  # fmt: skip
    assert logged_transfers(secondary, "IXFR", this_start_only=True) >= 1
    assert transfers(secondary, "AXFR", this_start_only=True) == 0


def test_wrong_key_is_refused_and_the_copy_kept(pair: Pair) -> None:
    primary, secondary = pair.primary, pair.secondary
    fqdn, secret = first_copy(pair)
    serial = soa_serial(secondary)

    # The secondary now uses a key the primary does not have (same algorithm, other secret
    # under another name); the zone set makes it check at once.
    wrong = "xfr-wrong"
    fake = "A" * 43 + "="
    cli(secondary, "key", "add", wrong, "--zone", ZONE, "--secret", fake)
    cli(secondary, "zone", "set", ZONE, "--primary", f"{LOOPBACK}:{primary.dns_port}",
        "--primary-key", wrong)  # fmt: skip
    wait_for(
        "a refused check in the log",
        lambda: "the primary refused our TSIG key xfr-wrong: BADKEY" in secondary.stderr_text(),
        FRESH_TIMEOUT,
        secondary,
    )
    # An update at the primary: its NOTIFY (signed with the primary's key) is refused, as
    # it is not signed with the configured key; the old copy is still answered.
    nic_update(primary, fqdn, secret, "192.0.2.2")
    refused = f"NOTIFY of {ZONE} from {LOOPBACK} refused: not signed with key {wrong}"
    wait_for("the refused NOTIFY", lambda: refused in secondary.stderr_text(), FRESH_TIMEOUT,
             secondary)  # fmt: skip
    assert addresses(secondary, fqdn) == ["192.0.2.1"]
    assert soa_serial(secondary) == serial
    assert soa_serial(primary) != serial


def test_a_secondary_with_two_workers_takes_every_notify(pair: Pair) -> None:
    """The kernel spreads NOTIFYs over the workers; each must reach worker 0."""
    primary, secondary = pair.primary, pair.secondary
    secondary.args = ("--workers", "2")
    fqdn, secret = first_copy(pair)
    for n in range(2, 6):
        address = f"192.0.2.{n}"
        nic_update(primary, fqdn, secret, address)
        # Both workers answer it: ask several times, any of them may take a query.
        wait_for(f"NOTIFY + IXFR of {address}",
                 lambda a=address: all(addresses(secondary, fqdn) == [a] for _ in range(4)),
                 FRESH_TIMEOUT, secondary)  # fmt: skip
    assert logged_transfers(secondary, "IXFR", at_least=4) == 4
    # Worker 1 reloads the copy after worker 0's commit wakes it: wait for both.
    serial = soa_serial(primary)
    wait_for("both workers at the primary's serial",
             lambda: all(soa_of(secondary, ZONE) == serial for _ in range(8)),
             FRESH_TIMEOUT, secondary)  # fmt: skip


@dataclass
class KnotNotifyingPrimary(KnotPrimary):
    """Knot as a standard primary of a homing secondary: it takes signed UPDATEs,
    notifies homing (signed) and lets it transfer with the same key."""

    secondary_port: int = 0

    def configure(self, zone: str, key: str) -> None:
        super().configure(zone, key)
        key_name = key.split(":")[1]
        path = self.directory / "knot.conf"
        conf = path.read_text()
        conf = conf.replace(
            "acl:\n",
            f"remote:\n  - id: homing-secondary\n    address: {LOOPBACK}@{self.secondary_port}\n"
            f"    key: {key_name}\nacl:\n  - id: transfer-to-homing\n    address: {LOOPBACK}\n"
            f"    key: {key_name}\n    action: transfer\n",
            1,
        )
        conf = conf.replace(
            "    acl: update-from-homing\n",
            "    acl: [update-from-homing, transfer-to-homing]\n    notify: homing-secondary\n",
        )
        path.write_text(conf)


def test_homing_follows_a_knot_primary(tmp_path: Path, dig_path: str) -> None:
    """The same secondary code against a standard primary: Knot DNS notifies, homing
    transfers by AXFR, then IXFR after an RFC 2136 update at Knot, and keeps answering
    when Knot stops."""
    zone = "knot.example.org"
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    key = f"hmac-sha256:{KEY_NAME}:{secret}"
    secondary = _make_server(tmp_path, "secondary", dig_path, {})
    (tmp_path / "knot").mkdir()
    knot = KnotNotifyingPrimary(directory=tmp_path / "knot", secondary_port=secondary.dns_port)
    knot.version()  # a missing peer skips (or fails under HOMING_REQUIRE_PEERS=1) up front
    try:
        knot.configure(zone, key)
        knot.start()
        knot.wait_for("its zone", lambda: knot.serial(zone) == 1, START_TIMEOUT)
        where = f"{LOOPBACK}:{knot.port}"
        cli(secondary, "zone", "add", zone, "--primary", where)
        cli(secondary, "key", "add", KEY_NAME, "--zone", zone, "--secret", secret)
        cli(secondary, "zone", "set", zone, "--primary", where, "--primary-key", KEY_NAME)
        secondary.start()
        wait_for("first AXFR", lambda: soa_of(secondary, zone) == 1, SYNC_TIMEOUT, secondary)
        assert secondary.kdig(zone, "NS").values("NS") == ["ns1.example.org."]

        keyring = dns.tsigkeyring.from_text({KEY_NAME: ("hmac-sha256", secret)})
        update = dns.update.UpdateMessage(zone, keyring=keyring, keyname=KEY_NAME)
        update.replace("cam", 60, "A", "192.0.2.7")
        response = dns.query.tcp(update, LOOPBACK, port=knot.port, timeout=5)
        assert response.rcode() == dns.rcode.NOERROR
        serial = knot.serial(zone)
        assert serial is not None and serial > 1
        took = wait_for("NOTIFY + IXFR from Knot",
                        lambda: addresses(secondary, f"cam.{zone}") == ["192.0.2.7"],
                        FRESH_TIMEOUT, secondary)  # fmt: skip
        record_freshness("homing (Knot primary)", knot.version(),
                         "tests/e2e/test_homing_secondary.py", "notify+ixfr", took)  # fmt: skip
        assert soa_of(secondary, zone) == serial  # Knot's serial, exactly
        log = secondary.stderr_text()
        assert len(re.findall(rf"secondary zone {re.escape(zone)}: IXFR from ", log)) == 1, log

        knot.stop()
        assert secondary.dig(f"cam.{zone}", "A").values("A") == ["192.0.2.7"]
    finally:
        knot.stop()
        secondary.stop()


def soa_of(server: Server, zone: str) -> int | None:
    """The zone's SOA serial as the server answers it (None: not NOERROR)."""
    query = dns.message.make_query(zone, "SOA")
    try:
        response = dns.query.udp(query, LOOPBACK, port=server.dns_port, timeout=0.5)
    except dns.exception.Timeout:
        return None
    if response.rcode() != dns.rcode.NOERROR or not response.answer:
        return None
    return int(response.answer[0][0].serial)
