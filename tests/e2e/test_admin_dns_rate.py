"""DNS queries per second on the admin overview, from a real `homing serve --workers 2`.

Real queries (dnspython, each from a fresh socket so the kernel spreads them over both
workers) while the operator reloads the overview: the figure comes from every worker's
count, so it rises above zero, and once the queries stop its total reaches every answer
sent, whichever worker answered and whichever serves the page.
"""

from __future__ import annotations

import asyncio
import re
import time

import dns.asyncquery
import dns.message
import httpx
import pytest

from tests.e2e.conftest import LOOPBACK, PASSWORD, ZONE, Server

BATCH = 40  # queries between two looks at the page
MAX_BATCHES = 100  # bounded: 4000 queries at most
DEADLINE = 60.0  # seconds, also a bound; a healthy run needs a few
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FIGURE = re.compile(r'data-figure="dns">.*?<p class="big[^"]*">([^<]+)</p>(.*?)</section>', re.S)


async def _log_in(client: httpx.AsyncClient, user: str) -> None:
    form = await client.get("/login")
    token = CSRF.search(form.text)
    assert token
    done = await client.post(
        "/login", data={"csrf_token": token.group(1), "user_id": user, "password": PASSWORD}
    )
    assert done.status_code == 303 and done.headers["location"] == "/dashboard"


async def _queries(server: Server, count: int) -> int:
    query = dns.message.make_query(ZONE, "SOA")
    replies = await asyncio.gather(
        *(
            dns.asyncquery.udp(query, LOOPBACK, port=server.dns_port, timeout=2)
            for _ in range(count)
        )
    )
    return sum(1 for r in replies if r.answer)


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
async def test_the_overview_sums_the_workers_dns_answers(server: Server) -> None:
    server.ensure_zone()
    server.cli(
        "user", "add", "root", "--email", "root@example.net", "--password-stdin", "--admin",
        input=PASSWORD + "\n",
    )  # fmt: skip
    server.stop()
    server.args = ("--workers", "2")
    server.start()
    sent = 0
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as client:
        await _log_in(client, "root")

        async def look() -> tuple[float | None, int]:
            """(queries per second, answered since start) as the page shows them."""
            page = await client.get("/admin")
            found = FIGURE.search(page.text)
            assert found, page.text
            figure, rest = found.group(1).strip(), found.group(2)
            assert figure != "n/a", rest  # homing serve measures
            total = re.search(r"([\d,]+) since start", rest)
            assert total, rest
            return float(figure.replace(",", "")), int(total.group(1).replace(",", ""))

        # Each worker publishes its count once a second: poll, bounded in count and time.
        for _ in range(MAX_BATCHES):
            sent += await _queries(server, BATCH)
            rate, _ = await look()
            if rate is not None and rate > 0:
                break
            assert time.monotonic() - started < DEADLINE, rate
        else:
            raise AssertionError(f"no DNS rate after {sent} queries")
        # Once the queries stop, the next samples catch up with every answer sent.
        while (answered := (await look())[1]) < sent:
            assert time.monotonic() - started < DEADLINE, (answered, sent)
            await asyncio.sleep(0.2)  # the workers' next sample has no event to await
