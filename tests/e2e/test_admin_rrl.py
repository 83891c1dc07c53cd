"""Response rate limiting in a real `homing serve`: a burst from one source over the
configured rate is held back, another /24 is answered in full, and the operator's
overview counts what was held back."""

from __future__ import annotations

import asyncio
import re
import socket
import time

import dns.flags
import dns.message
import httpx
import pytest

from tests.e2e.conftest import LOOPBACK, PASSWORD, ZONE, Server
from tests.e2e.test_admin_dns_rate import _log_in

RATE = 5
BURST = 200
OTHER = "127.0.1.1"  # another /24 of loopback
DEADLINE = 30.0
LIMITED = re.compile(r'data-figure="rrl"><span class="rrl-limited">([\d,]+)</span>')


def _socket(source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    return sock


async def _replies_until(sock: socket.socket, ident: int) -> list[dns.message.Message]:
    loop = asyncio.get_running_loop()
    out = []

    async def read() -> None:
        while True:
            reply = dns.message.from_wire(await loop.sock_recv(sock, 4096))
            out.append(reply)
            if reply.id == ident:
                return

    await asyncio.wait_for(read(), DEADLINE)
    return out


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
async def test_a_burst_over_the_rate_is_held_back_and_counted(server: Server) -> None:
    server.ensure_zone()
    server.cli(
        "user", "add", "root", "--email", "root@example.net", "--password-stdin", "--admin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    server.stop()
    server.env["HOMING_RRL_RATE"] = str(RATE)
    server.env["HOMING_RRL_SLIP"] = "1"  # every held-back answer comes back truncated
    server.start()
    flooder, other = _socket(LOOPBACK), _socket(OTHER)
    target = (LOOPBACK, server.dns_port)
    try:
        for ident in range(BURST):
            q = dns.message.make_query(ZONE, "SOA")
            q.id = ident
            flooder.sendto(q.to_wire(), target)
        # With slip 1 every query gets a reply, full or truncated: the last one ends it.
        replies = await _replies_until(flooder, BURST - 1)
        truncated = [r for r in replies if r.flags & dns.flags.Flag.TC]
        assert len(replies) == BURST
        assert len(truncated) >= BURST - 2 * RATE  # the burst may straddle two seconds
        assert all(not r.answer for r in truncated)
        q = dns.message.make_query(ZONE, "SOA")
        other.sendto(q.to_wire(), target)
        [reply] = await _replies_until(other, q.id)
        assert reply.answer and not reply.flags & dns.flags.Flag.TC
    finally:
        flooder.close()
        other.close()
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as client:
        await _log_in(client, "root")
        while True:
            page = await client.get("/admin")
            found = LIMITED.search(page.text)
            assert found, page.text
            assert f"{RATE} per second per source" in page.text
            shown = int(found.group(1).replace(",", ""))
            if shown == len(truncated):
                break
            assert shown < len(truncated), (shown, len(truncated))
            assert time.monotonic() - started < DEADLINE, (shown, len(truncated))
            await asyncio.sleep(0.2)  # the meter's next reading has no event to await
