"""DNS queries answered by running servers reach the store per node and bucket, and the
24-hour chart's data adds them up across workers and nodes."""

from __future__ import annotations

import re
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from homing.service import querycounts
from homing.service.activity import Hourly
from homing.store.db import Database
from homing.web.portal.charts import queries_chart
from tests.e2e.conftest import LOOPBACK, Server, module_server

pytestmark = pytest.mark.timeout(300)


async def _ask(server: Server, count: int) -> None:
    """`count` queries over UDP, each answered (REFUSED: the name is in no zone here)."""
    for i in range(count):
        query = dns.message.make_query(f"q{i}.example.org", "A")
        answer = await dns.asyncquery.udp(query, LOOPBACK, port=server.dns_port, timeout=5)
        assert answer.rcode() == dns.rcode.REFUSED


async def _stored(data_dir: Path) -> tuple[Hourly, dict[str, int]]:
    db = Database(f"sqlite+aiosqlite:///{data_dir / 'homing.db'}")
    try:
        return await querycounts.queries_by_hour(db)
    finally:
        await db.close()


async def test_queries_reach_the_chart_across_workers_and_nodes(tmp_path: Path) -> None:
    with module_server(tmp_path, HOMING_NODE_NAME="node-a") as server:
        await _ask(server, 23)
        server.stop()  # the bucket in progress is stored as the process stops
        hourly, nodes = await _stored(server.data_dir)
        assert sum(hourly.counts) == 23 and nodes == {"node-a": 23}
        # The same store as another node, with two workers: each adds its own count.
        server.env["HOMING_NODE_NAME"] = "node-b"
        server.args = ("--workers", "2")
        server.start()
        await _ask(server, 40)
        server.stop()
    hourly, nodes = await _stored(server.data_dir)
    assert nodes == {"node-a": 23, "node-b": 40}
    assert sum(hourly.counts) == 63 and len(hourly.counts) == 24
    svg = str(queries_chart(hourly, nodes))
    titles = re.findall(r"<title>(\d\d):00 UTC: (\d+)</title>", svg)
    assert [int(n) for _hour, n in titles] == hourly.counts
    assert "node-a: 23, node-b: 40" in svg


def test_buckets_count_each_query_once() -> None:
    buckets = querycounts.Buckets(at=1000.0, total=5)  # bucket 900
    assert buckets.closed(1100.0, 9) is None  # still in bucket 900
    assert buckets.closed(1201.0, 12) == (900, 7)
    assert buckets.closed(1250.0, 15) is None
    assert buckets.rest(20) == (1200, 8)
    assert buckets.rest(20) == (1200, 0)
