"""Response rate limiting: the limiter's rules, then a flood from one source against the
real server (both UDP paths) while another source is answered in full."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import pytest

from homing.dns.cookies import ServerCookies, load_secret
from homing.dns.index import ZoneIndex
from homing.dns.rrl import ANSWER, DROP, SLIP, RateLimiter, prefix_of
from homing.dns.server import DnsServer, limited_count, start_dns
from homing.dns.udp import batch_receiver_available
from tests.dns.test_server import TIMEOUT
from tests.dns.zone import name

A, B = prefix_of("192.0.2.1"), prefix_of("198.51.100.1")


def test_answers_up_to_the_rate_then_every_other_slips() -> None:
    limiter = RateLimiter(3, 2)
    verdicts = [limiter.check(A, 7) for _ in range(9)]
    assert verdicts == [ANSWER] * 3 + [DROP, SLIP, DROP, SLIP, DROP, SLIP]
    assert limiter.check(B, 7) == ANSWER, "another prefix has its own budget"
    assert limiter.check(A, 8) == ANSWER, "a new second, a new budget"
    assert (limiter.dropped, limiter.slipped) == (0, 0), "only what the transport did counts"
    limiter.held(SLIP)
    limiter.held(DROP)
    limiter.held(DROP)
    assert (limiter.dropped, limiter.slipped, limiter.limited) == (2, 1, 3)


@pytest.mark.parametrize(("slip", "limited"), [(0, DROP), (1, SLIP)])
def test_slip_zero_drops_all_and_one_slips_all(slip: int, limited: int) -> None:
    limiter = RateLimiter(1, slip)
    assert [limiter.check(A, 0) for _ in range(4)] == [ANSWER] + [limited] * 3


def test_the_table_stays_bounded_under_random_prefixes() -> None:
    limiter = RateLimiter(1, 2, table_size=64)
    for i in range(10_000):
        assert limiter.check(i, 7) == ANSWER
        assert len(limiter) <= 64
    # A prefix over its rate is held back again as soon as it is over it again.
    assert limiter.check(A, 7) == ANSWER
    assert limiter.check(A, 7) == DROP


@pytest.mark.parametrize(
    ("host", "prefix"),
    [
        ("192.0.2.77", "192.0.2.1"),
        ("2001:db8:1234:5678::1", "2001:db8:1234:5600::"),
        ("2001:db8:1234:56ff:1::9", "2001:db8:1234:5600::"),  # the same /56
    ],
)
def test_addresses_of_one_prefix_share_a_key(host: str, prefix: str) -> None:
    assert prefix_of(host) == prefix_of(prefix)


@pytest.mark.parametrize(
    ("host", "other"),
    [("192.0.2.77", "192.0.3.77"), ("2001:db8:1234:5678::1", "2001:db8:1234:5778::1")],
)
def test_addresses_of_other_prefixes_do_not(host: str, other: str) -> None:
    assert prefix_of(host) != prefix_of(other)


@pytest.mark.parametrize(
    "kwargs",
    [{"rate": 0, "slip": 2}, {"rate": 5, "slip": -1}, {"rate": 5, "slip": 2, "table_size": 0}],
)
def test_bad_settings_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**kwargs)


# --- against the real server -------------------------------------------------------------

RATE = 20
FLOOD = 400
FLOODER = "127.0.0.1"
OTHER = "127.0.1.1"  # another /24 of loopback
CLIENT_COOKIE = bytes(range(8))


@pytest.fixture(params=["batches", "protocol"])
async def limited(
    request: pytest.FixtureRequest, index: ZoneIndex, tmp_path: Path
) -> AsyncIterator[tuple[DnsServer, RateLimiter]]:
    batches = request.param == "batches"
    if batches and not batch_receiver_available():
        pytest.skip("no recvmmsg/sendmmsg on this platform")
    limiter = RateLimiter(RATE, 2)
    server = await start_dns(
        index,
        FLOODER,
        0,
        udp_batches=batches,
        rrl=limiter,
        cookies=ServerCookies(load_secret(tmp_path)),
    )
    try:
        yield server, limiter
    finally:
        await server.close()


def udp_socket(source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    return sock


def query(ident: int, cookie: bytes | None = None) -> bytes:
    q = dns.message.make_query(name("host"), "A", use_edns=0)
    if cookie is not None:
        q.use_edns(0, options=[dns.edns.CookieOption(CLIENT_COOKIE, cookie)])
    q.id = ident
    return q.to_wire()


async def replies_until(sock: socket.socket, ident: int) -> list[dns.message.Message]:
    """Every reply up to and including the one with `ident` (loopback keeps their order)."""
    loop = asyncio.get_running_loop()
    out = []

    async def read() -> None:
        while True:
            r = dns.message.from_wire(await loop.sock_recv(sock, 4096))
            out.append(r)
            if r.id == ident:
                return

    await asyncio.wait_for(read(), TIMEOUT)
    return out


async def test_a_flood_from_one_prefix_is_limited_and_others_are_not(
    limited: tuple[DnsServer, RateLimiter],
) -> None:
    server, limiter = limited
    before = limited_count()
    flooder, other = udp_socket(FLOODER), udp_socket(OTHER)
    address = (server.host, server.port)
    try:
        # A cookie first (one answer of the budget), to prove the address with at the end.
        flooder.sendto(query(0, b""), address)
        [first] = await replies_until(flooder, 0)
        [option] = [o for o in first.options if isinstance(o, dns.edns.CookieOption)]
        for ident in range(1, FLOOD + 1):
            flooder.sendto(query(ident), address)
        # The last query shows the server cookie: answered whatever the rate.
        flooder.sendto(query(FLOOD + 1, option.server), address)
        replies = await replies_until(flooder, FLOOD + 1)
        assert replies[-1].answer and not replies[-1].flags & dns.flags.Flag.TC
        flood = replies[:-1]
        full = [r for r in flood if not r.flags & dns.flags.Flag.TC]
        slipped = [r for r in flood if r.flags & dns.flags.Flag.TC]
        assert len(full) + len(slipped) + limiter.dropped == FLOOD
        assert len(slipped) == limiter.slipped > 0
        assert limiter.dropped > 0
        assert limited_count() - before == limiter.limited
        assert len(full) >= RATE - 1
        for r in slipped:  # empty, truncated, the question echoed: a resolver retries over TCP
            assert r.rcode() == dns.rcode.Rcode.NOERROR
            assert not r.answer and not r.authority
            assert r.question[0].name == dns.name.from_text(name("host"))
        # Meanwhile another source is answered in full.
        for ident in range(5):
            other.sendto(query(ident), address)
        answers = await replies_until(other, 4)
        assert len(answers) == 5
        assert all(r.answer and not r.flags & dns.flags.Flag.TC for r in answers)
    finally:
        flooder.close()
        other.close()


async def test_tcp_is_never_limited(limited: tuple[DnsServer, RateLimiter]) -> None:
    import dns.asyncquery

    server, limiter = limited
    for _ in range(RATE * 2):
        q = dns.message.make_query(name("host"), "A")
        r = await dns.asyncquery.tcp(q, server.host, port=server.port, timeout=TIMEOUT)
        assert r.answer
    assert limiter.limited == 0


async def test_ipv6_sources_are_limited_by_their_prefix(index: ZoneIndex) -> None:
    limiter = RateLimiter(RATE, 1)
    try:
        server = await start_dns(index, "::1", 0, rrl=limiter)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::1", 0))
    sock.setblocking(False)
    try:
        for ident in range(RATE * 3):
            sock.sendto(query(ident), (server.host, server.port))
        replies = await replies_until(sock, RATE * 3 - 1)  # slip 1: every query is answered
        truncated = [r for r in replies if r.flags & dns.flags.Flag.TC]
        assert len(replies) == RATE * 3
        assert len(truncated) == limiter.slipped >= RATE
    finally:
        sock.close()
        await server.close()
