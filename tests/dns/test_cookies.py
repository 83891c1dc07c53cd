"""DNS Cookies (RFC 7873, RFC 9018 server cookies): the cookie itself, the answers that
carry it, the secret's file, and dig and kdig talking to the real server."""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

from homing.dns.answer import Responder
from homing.dns.cookies import (
    SECRET_FILE,
    CookieError,
    ServerCookies,
    load_secret,
    split_cookie,
)
from homing.dns.index import ZoneIndex
from homing.dns.server import DnsServer, start_dns
from tests.dns.test_server import LOCALHOST, run
from tests.dns.zone import ZONE, name
from tests.peers import program

Rcode = dns.rcode.Rcode
SECRET = bytes.fromhex("e5e973e5a6b2a43f48e7dc849e37bfcf")
CLIENT = bytes.fromhex("2464c4abcf10c957")
HERE = ipaddress.ip_address("198.51.100.100").packed
THERE = ipaddress.ip_address("203.0.113.203").packed
NOW = 1559731985


def cookies(now: float = NOW) -> ServerCookies:
    return ServerCookies(SECRET, clock=lambda: now)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # RFC 9018 appendix A.1 and A.2: the same client, a first and a renewed cookie.
        (1559731985, "010000005cf79f111f8130c3eee29480"),
        (0x5CF7A871, "010000005cf7a871d4a564a1442aca77"),
    ],
)
def test_server_cookies_are_rfc_9018s(now: int, expected: str) -> None:
    assert cookies(now).make(CLIENT, HERE).hex() == expected


def test_a_cookie_is_valid_for_its_client_and_an_hour() -> None:
    server = cookies().make(CLIENT, HERE)
    assert cookies().valid(CLIENT, server, HERE)
    assert cookies(NOW + 3600).valid(CLIENT, server, HERE)
    assert cookies(NOW - 300).valid(CLIENT, server, HERE), "a little clock skew is fine"
    assert not cookies(NOW + 3601).valid(CLIENT, server, HERE), "too old"
    assert not cookies(NOW - 301).valid(CLIENT, server, HERE), "from the future"
    assert not cookies().valid(CLIENT, server, THERE), "another address"
    assert not cookies().valid(bytes(8), server, HERE), "another client cookie"
    assert not cookies().valid(CLIENT, server[:-1] + bytes([server[-1] ^ 1]), HERE)
    assert not cookies().valid(CLIENT, b"\x02" + server[1:], HERE), "another version"
    assert not cookies().valid(CLIENT, server[:8], HERE)
    other = ServerCookies(bytes(16), clock=lambda: NOW)
    assert not other.valid(CLIENT, server, HERE), "another server's secret"


@pytest.mark.parametrize("length", [8, 16, 24, 40])
def test_well_formed_cookie_options(length: int) -> None:
    data = bytes(range(length))
    assert split_cookie(data) == (data[:8], data[8:])


@pytest.mark.parametrize("length", [0, 7, 9, 15, 41])
def test_malformed_cookie_options(length: int) -> None:
    with pytest.raises(CookieError):
        split_cookie(bytes(length))


def test_the_secret_is_made_once_and_private(tmp_path: Path) -> None:
    first = load_secret(tmp_path)
    assert len(first) == 16
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret(tmp_path) == first, "restarts and other workers read the same"
    assert [p.name for p in tmp_path.iterdir()] == [SECRET_FILE]


def test_a_damaged_secret_is_an_error(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("not hex\n")
    with pytest.raises(ValueError, match="hex digits"):
        load_secret(tmp_path)


# --- answers -----------------------------------------------------------------------------


def ask(
    responder: Responder,
    option: dns.edns.Option | None,
    client: bytes = HERE,
    qname: str = name("host"),
    rdtype: str = "A",
    *,
    payload: int = 1232,
    tcp: bool = False,
) -> dns.message.Message:
    q = dns.message.make_query(qname, rdtype, use_edns=0, payload=payload)
    if option is not None:
        q.use_edns(0, payload=payload, options=[option])
    reply = responder.answer(q.to_wire(), tcp=tcp, client=client)
    assert reply is not None
    r = dns.message.from_wire(reply)
    assert r.id == q.id
    return r


def cookie_of(r: dns.message.Message) -> dns.edns.CookieOption:
    [option] = [o for o in r.options if isinstance(o, dns.edns.CookieOption)]
    return option


@pytest.fixture
def responder(index: ZoneIndex) -> Responder:
    return Responder(index, cookies=cookies())


def test_a_client_cookie_gets_a_server_cookie(responder: Responder) -> None:
    r = ask(responder, dns.edns.CookieOption(CLIENT, b""))
    assert r.rcode() == Rcode.NOERROR and r.answer
    option = cookie_of(r)
    assert option.client == CLIENT
    assert cookies().valid(CLIENT, option.server, HERE)


def test_a_cookie_reply_is_never_kept_for_another_client(responder: Responder) -> None:
    # The same bytes from two addresses: each gets a cookie for its own.
    for client in (HERE, THERE, HERE):
        option = cookie_of(ask(responder, dns.edns.CookieOption(CLIENT, b""), client))
        assert cookies().valid(CLIENT, option.server, client)


@pytest.mark.parametrize(
    "server_cookie",
    [bytes(16), bytes(8), bytes(32), b"\x01" + bytes(15)],
    ids=["zeros", "short", "long", "forged"],
)
def test_a_bad_server_cookie_is_answered_with_a_new_one(
    responder: Responder, server_cookie: bytes
) -> None:
    r = ask(responder, dns.edns.CookieOption(CLIENT, server_cookie))
    assert r.rcode() == Rcode.NOERROR and r.answer, "RFC 7873 5.2.3: answered normally"
    assert cookies().valid(CLIENT, cookie_of(r).server, HERE)


@pytest.mark.parametrize("length", [4, 9, 15, 41])
def test_a_malformed_cookie_is_formerr(responder: Responder, length: int) -> None:
    r = ask(responder, dns.edns.GenericOption(dns.edns.OptionType.COOKIE, bytes(length)))
    assert r.rcode() == Rcode.FORMERR
    assert not r.answer


def test_a_cookie_too_many_for_the_payload_truncates(responder: Responder) -> None:
    # forty's answer fits 512 bytes only without the cookie's 28.
    r = ask(responder, dns.edns.CookieOption(CLIENT, b""), qname=name("forty"), payload=512)
    assert r.flags & dns.flags.Flag.TC and not r.answer
    assert cookies().valid(CLIENT, cookie_of(r).server, HERE)
    r = ask(responder, dns.edns.CookieOption(CLIENT, b""), qname=name("forty"), tcp=True)
    assert not r.flags & dns.flags.Flag.TC and r.answer


def test_the_slow_path_carries_the_cookie_too(responder: Responder) -> None:
    r = ask(responder, dns.edns.CookieOption(CLIENT, b""), qname=ZONE, rdtype="SOA")
    assert r.answer and cookies().valid(CLIENT, cookie_of(r).server, HERE)


def question_less(option: dns.edns.Option) -> bytes:
    q = dns.message.make_query(ZONE, "SOA", use_edns=0, options=[option])
    q.question = []
    return q.to_wire()


def test_a_query_without_a_question_asks_for_a_cookie(responder: Responder) -> None:
    for server_cookie, rcode in [
        (b"", Rcode.NOERROR),
        (cookies().make(CLIENT, HERE), Rcode.NOERROR),
        (bytes(16), Rcode.BADCOOKIE),  # RFC 7873 5.4
    ]:
        reply = responder.answer(
            question_less(dns.edns.CookieOption(CLIENT, server_cookie)), tcp=False, client=HERE
        )
        assert reply is not None
        r = dns.message.from_wire(reply)
        assert r.rcode() == rcode
        assert cookies().valid(CLIENT, cookie_of(r).server, HERE)


def test_proven_takes_only_a_valid_server_cookie(responder: Responder) -> None:
    def wire(option: dns.edns.Option | None) -> bytes:
        options = [] if option is None else [option]
        return dns.message.make_query(name("host"), "A", use_edns=0, options=options).to_wire()

    good = cookies().make(CLIENT, HERE)
    assert responder.proven(wire(dns.edns.CookieOption(CLIENT, good)), HERE)
    assert not responder.proven(wire(dns.edns.CookieOption(CLIENT, good)), THERE)
    assert not responder.proven(wire(dns.edns.CookieOption(CLIENT, b"")), HERE)
    assert not responder.proven(wire(None), HERE)


def test_without_cookies_the_option_is_ignored(index: ZoneIndex) -> None:
    r = ask(Responder(index), dns.edns.CookieOption(CLIENT, b""))
    assert r.rcode() == Rcode.NOERROR and r.answer
    assert not [o for o in r.options if isinstance(o, dns.edns.CookieOption)]


# --- the real clients --------------------------------------------------------------------


@pytest.fixture
async def server(index: ZoneIndex, tmp_path: Path) -> AsyncIterator[DnsServer]:
    server = await start_dns(index, LOCALHOST, 0, cookies=ServerCookies(load_secret(tmp_path)))
    try:
        yield server
    finally:
        await server.close()


COOKIE_LINE = re.compile(r"COOKIE: ([0-9a-f]+)(?: \((\w+)\))?", re.IGNORECASE)


@pytest.mark.peer("dig")
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_dig_gets_a_good_cookie_and_shows_it_back(server: DnsServer, tcp: bool) -> None:
    base = [program("dig"), f"@{server.host}", "-p", str(server.port), "+norec", "+time=3"]
    base += ["+tries=1", "+tcp" if tcp else "+notcp"]
    out = await run(*base, "+cookie", name("host"), "A")
    match = COOKIE_LINE.search(out)
    assert match, out
    assert "status: NOERROR" in out and "192.0.2.1" in out
    sent = match[1]
    assert len(sent) == 48, "the client cookie and our 16-byte server cookie"
    assert match[2] == "good", out  # dig checks the client cookie came back
    # Asking again with the server cookie it learnt: answered, and it is still good.
    out = await run(*base, f"+cookie={sent}", name("host"), "A")
    again = COOKIE_LINE.search(out)
    assert again and again[2] == "good" and "status: NOERROR" in out, out


@pytest.mark.peer("kdig")
async def test_kdig_gets_a_cookie(server: DnsServer) -> None:
    out = await run(
        program("kdig"),
        f"@{server.host}",
        "-p",
        str(server.port),
        "+norec",
        "+timeout=3",
        "+retry=0",
        "+cookie",
        name("host"),
        "A",
    )
    match = COOKIE_LINE.search(out)
    assert match and len(match[1]) == 48, out
    assert "NOERROR" in out and "192.0.2.1" in out


@pytest.mark.parametrize("ask_over", [dns.asyncquery.udp, dns.asyncquery.tcp], ids=["udp", "tcp"])
async def test_a_cookie_over_the_wire_is_for_its_sender(
    server: DnsServer, tmp_path: Path, ask_over: Any
) -> None:
    q = dns.message.make_query(name("host"), "A", use_edns=0)
    q.use_edns(0, options=[dns.edns.CookieOption(CLIENT, b"")])
    r = await ask_over(q, LOCALHOST, port=server.port, timeout=10)
    assert r.answer
    loopback = ipaddress.ip_address(LOCALHOST).packed
    assert ServerCookies(load_secret(tmp_path)).valid(CLIENT, cookie_of(r).server, loopback)


async def test_a_cookie_over_ipv6_is_for_its_sender(index: ZoneIndex, tmp_path: Path) -> None:
    try:
        server = await start_dns(index, "::1", 0, cookies=ServerCookies(load_secret(tmp_path)))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        q = dns.message.make_query(name("host"), "A", use_edns=0)
        q.use_edns(0, options=[dns.edns.CookieOption(CLIENT, b"")])
        r = await dns.asyncquery.udp(q, "::1", port=server.port, timeout=10)
        assert r.answer
        loopback = ipaddress.ip_address("::1").packed
        assert ServerCookies(load_secret(tmp_path)).valid(CLIENT, cookie_of(r).server, loopback)
    finally:
        await server.close()


def test_a_cookie_query_answered_without_an_address_is_not_kept(responder: Responder) -> None:
    q = dns.message.make_query(name("host"), "A", use_edns=0)
    q.use_edns(0, options=[dns.edns.CookieOption(CLIENT, b"")])
    assert responder.answer(q.to_wire(), tcp=False) is not None  # no address known
    r = ask(responder, dns.edns.CookieOption(CLIENT, b""))  # the same bytes, from HERE
    assert cookies().valid(CLIENT, cookie_of(r).server, HERE)
