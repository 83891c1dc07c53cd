"""The sans-I/O core: decisions, back-off, answers, check-IP agreement, address filters."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from homing.client.cache import Cache, state_from_json, state_to_json
from homing.client.checkip import agree, parse_checkip
from homing.client.config import ConfigError, HostConfig, ServerConfig, SourceSpec, parse_config
from homing.client.netlink import (
    IFA_F_DEPRECATED,
    IFA_F_SECONDARY,
    IFA_F_TEMPORARY,
    IFA_F_TENTATIVE,
    Filter,
    InterfaceAddress,
    usable,
)
from homing.client.policy import (
    Halt,
    HostState,
    LastResult,
    Rules,
    Update,
    Wait,
    backoff_delay,
    choose,
    decide,
    record,
)
from homing.client.protocol import USER_AGENT, Verdict, build_request, parse_answer
from homing.client.sources import parse_command_output
from homing.client.status import render
from homing.domain.addresses import AddressSet

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
RULES = Rules(config_hash="h1", force_interval=1000.0, min_interval=10.0,
              retry_initial=30.0, retry_max=240.0)  # fmt: skip
A = AddressSet(ipv4=V4("192.0.2.1"))
B = AddressSet(ipv4=V4("192.0.2.2"))


# -- decide ------------------------------------------------------------------


def test_first_observation_updates() -> None:
    action = decide(HostState(), A, 100.0, RULES)
    assert isinstance(action, Update) and action.addresses == A


def test_no_address_waits_for_an_event() -> None:
    assert decide(HostState(), AddressSet(), 100.0, RULES) == Wait(
        None, "no usable address observed"
    )


def test_same_address_waits_until_the_forced_refresh() -> None:
    state = HostState(registered=A, registered_at=100.0, last_attempt_at=100.0)
    assert decide(state, A, 200.0, RULES) == Wait(1100.0, "up to date")
    forced = decide(state, A, 1100.0, RULES)
    assert isinstance(forced, Update) and forced.reason == "forced refresh"


def test_a_changed_address_respects_the_minimum_interval() -> None:
    state = HostState(registered=A, registered_at=100.0, last_attempt_at=100.0)
    action = decide(state, B, 105.0, RULES)
    assert (
        isinstance(action, Wait) and action.until == 110.0 and "minimum interval" in action.reason
    )
    assert isinstance(decide(state, B, 110.0, RULES), Update)


def test_a_family_not_observed_now_is_left_alone() -> None:
    both = AddressSet(ipv4=V4("192.0.2.1"), ipv6=V6("2001:db8::1"))
    state = HostState(registered=both, registered_at=100.0, last_attempt_at=100.0)
    assert isinstance(decide(state, A, 200.0, RULES), Wait)  # IPv6 gone: nothing to send
    moved = AddressSet(ipv6=V6("2001:db8::2"))
    action = decide(state, moved, 200.0, RULES)
    assert isinstance(action, Update) and action.addresses == moved


def test_back_off_delays_the_next_attempt() -> None:
    state = HostState(last_attempt_at=100.0, failures=2, retry_at=160.0)
    action = decide(state, A, 120.0, RULES)
    assert isinstance(action, Wait) and action.until == 160.0 and "backing off" in action.reason
    assert isinstance(decide(state, A, 160.0, RULES), Update)


def test_stopped_host_halts_until_its_config_changes() -> None:
    ok = parse_answer("dyndns2", 200, "badauth")
    state = record(HostState(), A, ok, 100.0, RULES, 0.5)
    assert state.stopped is not None and state.stopped.code == "badauth"
    assert isinstance(decide(state, B, 10_000.0, RULES), Halt)
    changed = Rules(config_hash="h2")
    lifted = state.for_config("h2")
    assert lifted.stopped is None
    assert isinstance(decide(lifted, B, 10_000.0, changed), Update)


# -- record and back-off -----------------------------------------------------


def test_success_records_the_address_and_clears_failures() -> None:
    failing = HostState(registered=A, failures=3, retry_at=500.0)
    state = record(failing, B, parse_answer("dyndns2", 200, "good 192.0.2.2"), 600.0, RULES, 0.1)
    assert state.registered == B and state.registered_at == 600.0
    assert state.failures == 0 and state.retry_at is None
    assert state.last is not None and state.last.status == "ACT"


def test_success_for_one_family_keeps_the_other() -> None:
    both = AddressSet(ipv4=V4("192.0.2.1"), ipv6=V6("2001:db8::1"))
    only6 = AddressSet(ipv6=V6("2001:db8::2"))
    state = record(
        HostState(registered=both), only6, parse_answer("dvr", 200, "ACT"), 1.0, RULES, 0
    )
    assert state.registered == AddressSet(ipv4=V4("192.0.2.1"), ipv6=V6("2001:db8::2"))


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [(1, 15, 30), (2, 30, 60), (3, 60, 120), (4, 120, 240), (5, 120, 240), (60, 120, 240)],
)
def test_backoff_schedule_is_exponential_jittered_and_capped(
    failures: int, low: float, high: float
) -> None:
    assert backoff_delay(failures, 30, 240, 0.0) == low
    assert low <= backoff_delay(failures, 30, 240, 0.5) <= high
    assert backoff_delay(failures, 30, 240, 0.999999) == pytest.approx(high, rel=1e-5)


def test_server_failures_grow_the_delay() -> None:
    state = HostState()
    delays = []
    for n in range(6):
        result = parse_answer("dyndns2", 200, "911")
        state = record(state, A, result, 1000.0 * n, RULES, 0.0)
        assert state.retry_at is not None
        delays.append(state.retry_at - 1000.0 * n)
    assert delays == [15, 30, 60, 120, 120, 120]
    assert state.failures == 6 and state.stopped is None


def test_too_soon_waits_at_least_the_minimum_interval() -> None:
    rules = Rules("h", min_interval=300.0, retry_initial=1.0, retry_max=10.0)
    state = record(HostState(), A, parse_answer("dvr", 200, "ERR 0x80008007"), 0.0, rules, 0.0)
    assert state.retry_at == 300.0


# -- answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "verdict", "code"),
    [
        (200, "good 192.0.2.1", Verdict.OK, "good"),
        (200, "nochg 192.0.2.1\n", Verdict.OK, "nochg"),
        (200, "good", Verdict.OK, "good"),
        (200, "badauth", Verdict.FATAL, "badauth"),
        (401, "badauth", Verdict.FATAL, "badauth"),
        (401, "Unauthorized", Verdict.FATAL, "badauth"),
        (200, "nohost", Verdict.FATAL, "nohost"),
        (200, "notfqdn", Verdict.FATAL, "notfqdn"),
        (200, "numhost", Verdict.FATAL, "numhost"),
        (200, "abuse", Verdict.FATAL, "abuse"),
        (200, "badagent", Verdict.FATAL, "badagent"),
        (200, "!donator", Verdict.FATAL, "!donator"),
        (200, "dnserr", Verdict.FAILOVER, "dnserr"),
        (200, "911", Verdict.FAILOVER, "911"),
        (502, "<html>bad gateway</html>", Verdict.FAILOVER, "HTTP 502"),
        (200, "<html>captive portal</html>", Verdict.FAILOVER, "HTTP 200"),
        (301, "", Verdict.FATAL, "HTTP 301"),
        (404, "not found", Verdict.FATAL, "HTTP 404"),
    ],
)
def test_dyndns2_answers(status: int, body: str, verdict: Verdict, code: str) -> None:
    result = parse_answer("dyndns2", status, body)
    assert (result.verdict, result.code) == (verdict, code)


@pytest.mark.parametrize(
    ("body", "verdict", "status"),
    [
        ("ACT", Verdict.OK, "ACT"),
        ("ERR 0x80008001", Verdict.FATAL, "ERR 0x80008001"),
        ("ERR 0x80008002", Verdict.FATAL, "ERR 0x80008002"),
        ("ERR 0x80008003", Verdict.FATAL, "ERR 0x80008003"),
        ("ERR 0x80008004", Verdict.FATAL, "ERR 0x80008004"),
        ("ERR 0x80008005", Verdict.FAILOVER, "ERR 0x80008005"),
        ("ERR 0x80008006", Verdict.FATAL, "ERR 0x80008006"),
        ("ERR 0x80008007", Verdict.RETRY, "ERR 0x80008007"),
        ("ERR 0x80008008", Verdict.FATAL, "ERR 0x80008008"),
        ("ERR 0x80008099", Verdict.FATAL, "ERR 0x80008099"),
        ("garbage", Verdict.FAILOVER, ""),
    ],
)
def test_dvr_answers(body: str, verdict: Verdict, status: str) -> None:
    result = parse_answer("dvr", 200, body)
    assert (result.verdict, result.status) == (verdict, status)


def test_dyndns2_status_uses_the_dvr_words() -> None:
    assert parse_answer("dyndns2", 200, "badauth").status == "ERR 0x80008002"
    assert parse_answer("dyndns2", 200, "good 192.0.2.1").address == "192.0.2.1"


def test_requests() -> None:
    host = HostConfig(name="cam.dyn.example.net", secret="s3cret")
    server = ServerConfig(url="https://ddns.example.net")
    both = AddressSet(ipv4=V4("192.0.2.1"), ipv6=V6("2001:db8::1"))
    request = build_request(host, server, both)
    assert request.url == "https://ddns.example.net/nic/update"
    assert request.params == {"hostname": "cam.dyn.example.net", "myip": "192.0.2.1,2001:db8::1"}
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Authorization"] == "Basic Y2FtLmR5bi5leGFtcGxlLm5ldDpzM2NyZXQ="
    other = build_request(
        HostConfig(name="me.example.org", secret="pw", username="acct"),
        ServerConfig(url="https://members.example.com/v3/update"),
        AddressSet(ipv4=V4("192.0.2.1")),
    )
    assert other.url == "https://members.example.com/v3/update"
    assert other.headers["Authorization"] == "Basic YWNjdDpwdw=="
    dvr = build_request(HostConfig(name="d.example.net", secret="pw", protocol="dvr"), server, both)
    assert dvr.url == "https://ddns.example.net/dvr/update"
    assert dvr.params == {"host": "d.example.net", "password": "pw", "ip": "192.0.2.1,2001:db8::1"}
    assert "Authorization" not in dvr.headers


# -- check-IP ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "family", "expected"),
    [
        ("<html><body>Current IP Address: 203.0.113.5</body></html>", 4, "203.0.113.5"),
        ('{"ip": "203.0.113.5"}', 4, "203.0.113.5"),
        ('{"ip": "2001:db8::5"}', 6, "2001:db8::5"),
        ("2001:db8:0:1::5\n", 6, "2001:db8:0:1::5"),
        ("Current IP Address: 2001:db8::7", 6, "2001:db8::7"),
        ("version 1.2.3.4.5 and 999.1.1.1", 4, None),
        ("203.0.113.5", 6, None),
        ("", 4, None),
    ],
)
def test_parse_checkip(body: str, family: int, expected: str | None) -> None:
    found = parse_checkip(body, family)  # type: ignore[arg-type]
    assert (str(found) if found else None) == expected


def test_sources_must_agree() -> None:
    a, b = V4("203.0.113.5"), V4("203.0.113.6")
    assert agree([a, a], 2).address == a
    assert agree([a, None, a], 2).address == a
    assert agree([a, b, a], 2).address == a
    assert agree([a, None], 2).address is None
    assert "disagree" in agree([a, b], 1).detail
    assert agree([None, None], 1).address is None
    assert agree([a], 1).address == a


# -- interface addresses -----------------------------------------------------


def _a(text: str, flags: int = 0, scope: int = 0) -> InterfaceAddress:
    return InterfaceAddress(ipaddress.ip_address(text), 64, scope, flags)


def test_interface_filter() -> None:
    found = [
        _a("10.0.0.5"),
        _a("192.0.2.9", IFA_F_SECONDARY),
        _a("93.184.216.34"),
        _a("127.0.0.1", scope=254),
        _a("fe80::1", scope=253),
        _a("2a00:1450::1", IFA_F_TEMPORARY),
        _a("2a00:1450::2", IFA_F_DEPRECATED),
        _a("2a00:1450::3", IFA_F_TENTATIVE),
        _a("fd00::4"),
        _a("2a00:1450::5"),
    ]
    strict = Filter()
    assert usable(found, 4, strict) == [V4("93.184.216.34")]
    assert usable(found, 6, strict) == [V6("2a00:1450::5")]
    loose = Filter(allow_private=True, allow_temporary=True, allow_deprecated=True)
    assert usable(found, 4, loose) == [V4("10.0.0.5"), V4("93.184.216.34"), V4("192.0.2.9")]
    assert usable(found, 6, loose) == [
        V6("2a00:1450::1"), V6("2a00:1450::2"), V6("fd00::4"), V6("2a00:1450::5"),
    ]  # fmt: skip


def test_the_registered_address_is_kept_while_present() -> None:
    first, second = V4("192.0.2.1"), V4("192.0.2.2")
    assert choose([first, second], second) == second
    assert choose([first, second], V4("192.0.2.9")) == first
    assert choose([], first) is None


def test_command_output() -> None:
    out = "eth0 UP 192.0.2.1/24 2001:db8::1/64\nnoise 300.1.1.1, 192.0.2.2;"
    assert parse_command_output(out, 4) == [V4("192.0.2.1"), V4("192.0.2.2")]
    assert parse_command_output(out, 6) == [V6("2001:db8::1")]


# -- configuration -----------------------------------------------------------


def _config(**host: object) -> dict[str, object]:
    return {
        "cache_dir": "/tmp/x",
        "server": [{"url": "https://a.example.net"}, {"url": "https://b.example.net", "name": "b"}],
        "host": [{"name": "Cam.Example.NET.", "secret": "s", "ipv4": "web"} | host],
    }


def test_config_defaults_and_durations() -> None:
    cfg = parse_config(_config(force_interval="2d", min_interval="90s", ipv6="interface:eth0"))
    (host,) = cfg.hosts
    assert host.name == "cam.example.net" and host.protocol == "dyndns2"
    assert host.force_interval == 172800 and host.min_interval == 90
    assert host.ipv6 == SourceSpec("interface", "eth0")
    assert cfg.checkip_urls == ("https://a.example.net/checkip", "https://b.example.net/checkip")
    assert cfg.checkip_agree == 2
    assert parse_config(_config()).hosts[0].force_interval == 25 * 86400
    assert cfg.servers_for(parse_config(_config(server="b")).hosts[0]) == (cfg.servers[1],)


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ({"protocol": "rfc2136"}, "hmac-sha256:NAME:BASE64SECRET"),
        ({"protocol": "rfc2136", "secret": "hmac-sha256:k:c2VjcmV0"}, "needs dns:// servers"),
        ({"protocol": "rfc2136", "secret": "hmac-nope:k:c2VjcmV0"}, "unknown TSIG algorithm"),
        ({"protocol": "rfc2136", "secret": "k:not base64!"}, "not base64"),
        ({"protocol": "dyndns2", "zone": "-bad-"}, "zone must be a domain name"),
        ({"protocol": "nsupdate"}, "protocol must be dyndns2, dvr or rfc2136"),
        ({"ipv4": "dhcp"}, "is not one of interface:NAME"),
        ({"ipv4": "none"}, "set ipv4 or ipv6"),
        ({"ipv4": "interface:"}, "interface:NAME needs"),
        ({"name": "nodots"}, "not a fully qualified host name"),
        ({"server": "c"}, "no [[server]] is named 'c'"),
        ({"min_interval": "soon"}, "expected a duration"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"retry_initial": 10, "retry_max": 5}, "retry_initial <= retry_max"),
        ({"allow_private": "yes"}, "allow_private must be true or false"),
    ],
)
def test_config_errors(host: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(_config(**host))


def test_config_hash_changes_with_the_secret_only_for_that_host() -> None:
    a = HostConfig(name="a.example.net", secret="one")
    assert a.config_hash == HostConfig(name="a.example.net", secret="one").config_hash
    assert a.config_hash != HostConfig(name="a.example.net", secret="two").config_hash


# -- cache and status --------------------------------------------------------


def test_cache_round_trip_and_damage(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    assert cache.load() == {}
    state = record(HostState(), A, parse_answer("dyndns2", 200, "badauth"), 5.0, RULES, 0.0)
    ok = record(HostState(), A, parse_answer("dyndns2", 200, "good 192.0.2.1"), 6.0, RULES, 0.0)
    cache.save({"a.example.net": state, "b.example.net": ok})
    assert cache.load() == {"a.example.net": state, "b.example.net": ok}
    assert state_from_json(state_to_json(state)) == state
    raw = json.loads(cache.path.read_text())
    raw["hosts"]["b.example.net"]["ipv4"] = "not an address"
    cache.path.write_text(json.dumps(raw))
    assert cache.load() == {"a.example.net": state}
    cache.path.write_text("{truncated")
    assert cache.load() == {}


def test_status_screen() -> None:
    good = HostConfig(name="a.example.net", secret="x")
    bad = HostConfig(name="b.example.net", secret="y", protocol="dvr")
    new = HostConfig(name="c.example.net", secret="z")
    ok = record(HostState(), A, parse_answer("dyndns2", 200, "good 192.0.2.1"), 0.0, RULES, 0)
    err = record(
        HostState(), A, parse_answer("dvr", 200, "ERR 0x80008004"), 0.0, Rules(bad.config_hash), 0
    )
    text, code = render([good, bad], {"a.example.net": ok, "b.example.net": err}, 10.0)
    assert code == 3
    assert "a.example.net (dyndns2)\n  status   ACT  updated (good)" in text
    assert "  address  192.0.2.1 (registered 1970-01-01 00:00:00 UTC)" in text
    assert "b.example.net (dvr)\n  status   ERR 0x80008004  host blocked for abuse\n" in text
    _, code = render([good, new], {"a.example.net": ok}, 10.0)
    assert code == 4
    retry = HostState(
        failures=2, retry_at=70.0, last=LastResult("timeout", "no answer within 10s", "", 5.0)
    )
    text, code = render([good], {"a.example.net": retry}, 10.0)
    assert code == 4 and "status   RETRY  timeout: no answer within 10s" in text
    assert "retry    #2 at 1970-01-01 00:01:10 UTC (in 60s)" in text
