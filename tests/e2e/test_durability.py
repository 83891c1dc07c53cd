"""Acknowledged means durable: concurrent updaters, the server killed mid-way, restarted.

Every host is updated by its own client, one request at a time, with a new address
each round. The server is stopped (SIGKILL, or SIGTERM) once enough updates were
acknowledged. After a restart, DNS must answer for every host the last address
acknowledged with `good`, or an address sent after it (sent, committed, but the
answer was lost with the process); never an older one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import httpx
import pytest

from tests.e2e.conftest import LOOPBACK, Server

HOSTS = 20
MAX_ROUNDS = 30  # per host; HOSTS * MAX_ROUNDS must stay within _address()'s 750
STOP_AFTER_ACKS = 150  # stop the server once this many updates were acknowledged
RUN_TIMEOUT = 60.0
REQUEST_TIMEOUT = 10.0
_NETS = ("192.0.2", "198.51.100", "203.0.113")  # RFC 5737 documentation networks


def _address(host: int, round_: int) -> str:
    """A distinct documentation address for each (host, round)."""
    k = host * MAX_ROUNDS + round_
    return f"{_NETS[k // 250]}.{k % 250 + 1}"


@dataclass
class Updater:
    fqdn: str
    secret: str
    sent: list[str] = field(default_factory=list)
    acked: int = -1  # index into sent of the last `good`
    unexpected: list[str] = field(default_factory=list)

    @property
    def last_acked(self) -> str | None:
        return self.sent[self.acked] if self.acked >= 0 else None


async def _update_loop(
    client: httpx.AsyncClient,
    index: int,
    updater: Updater,
    on_ack: Callable[[], None],
    stopped: asyncio.Event,
) -> None:
    for round_ in range(MAX_ROUNDS):
        address = _address(index, round_)
        updater.sent.append(address)
        try:
            response = await client.get(
                "/nic/update",
                params={"hostname": updater.fqdn, "myip": address},
                auth=(updater.fqdn, updater.secret),
            )
        except httpx.TransportError as exc:
            if not stopped.is_set():
                updater.unexpected.append(f"{address}: {exc!r} before the server was stopped")
            return  # the server is gone: this last address is sent, not acknowledged
        body = response.text.strip()
        if response.status_code == 200 and body == f"good {address}":
            updater.acked = len(updater.sent) - 1
            on_ack()
        else:
            updater.unexpected.append(f"{address}: HTTP {response.status_code} {body!r}")
            return


async def _ask(server: Server, name: str) -> dns.message.Message:
    query = dns.message.make_query(name, dns.rdatatype.A)
    query.flags &= ~dns.flags.RD
    return await dns.asyncquery.udp(query, LOOPBACK, port=server.dns_port, timeout=3.0)


@pytest.mark.parametrize(
    ("server", "how"),
    [("sqlite", "sigkill"), ("sqlite", "sigterm"), ("postgresql", "sigkill")],
    indirect=["server"],
)
async def test_acknowledged_updates_survive_a_crash(server: Server, how: str) -> None:
    hosts = await asyncio.to_thread(server.new_hosts, [f"d{n}" for n in range(HOSTS)])
    updaters = [Updater(fqdn, secret) for fqdn, secret in hosts]

    acks = 0
    enough = asyncio.Event()
    stopped = asyncio.Event()

    def on_ack() -> None:
        nonlocal acks
        acks += 1
        if acks >= STOP_AFTER_ACKS:
            enough.set()

    limits = httpx.Limits(max_connections=HOSTS, max_keepalive_connections=HOSTS)
    async with httpx.AsyncClient(
        base_url=server.http_url, timeout=REQUEST_TIMEOUT, limits=limits
    ) as client:
        async with asyncio.timeout(RUN_TIMEOUT):
            tasks = [
                asyncio.create_task(_update_loop(client, n, u, on_ack, stopped))
                for n, u in enumerate(updaters)
            ]
            waiter = asyncio.create_task(enough.wait())
            all_done = asyncio.gather(*tasks)
            either: list[asyncio.Future[Any]] = [waiter, all_done]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            assert enough.is_set(), (
                f"only {acks} acknowledgements before the clients stopped: "
                f"{[u.unexpected for u in updaters if u.unexpected]}"
            )
            stopped.set()
            if how == "sigkill":
                server.kill()
            else:
                server.stop()
            await all_done

    unexpected = {u.fqdn: u.unexpected for u in updaters if u.unexpected}
    assert not unexpected, unexpected
    in_flight = sum(1 for u in updaters if u.acked < len(u.sent) - 1)
    assert acks >= STOP_AFTER_ACKS

    await asyncio.to_thread(server.restart)

    wrong = {}
    for u in updaters:
        response = await _ask(server, u.fqdn)
        assert response.flags & dns.flags.AA, f"{u.fqdn}: no AA\n{response}"
        assert response.rcode() == dns.rcode.NOERROR, f"{u.fqdn}: {response}"
        got = [rd.to_text() for rrset in response.answer for rd in rrset]
        acceptable = u.sent[u.acked :] if u.acked >= 0 else [*u.sent, None]
        answer = got[0] if len(got) == 1 else (None if not got else f"several: {got}")
        if answer not in acceptable:
            wrong[u.fqdn] = f"answers {got}; last acked {u.last_acked}, sent after: {acceptable}"
    assert not wrong, (
        f"{len(wrong)} hosts lost acknowledged updates ({in_flight} in flight): {wrong}"
    )

    # And the real dig agrees for the busiest host.
    sample = max(updaters, key=lambda u: u.acked)
    answer = server.dig(sample.fqdn, "A")
    assert answer.aa, answer
    assert len(answer.values("A")) == 1, answer
    assert answer.values("A")[0] in sample.sent[sample.acked :], answer
    print(f"{how}: {acks} acknowledged, {in_flight} in flight when stopped")
