"""The operator overview's chart of DNS queries over the last 24 hours, from the counts
every node's workers store."""

from __future__ import annotations

import re
import time

import sqlalchemy as sa

from homing.service import querycounts
from homing.store.schema import query_counts
from tests.web.portal.conftest import Portal
from tests.web.portal.test_admin import as_admin


async def test_overview_draws_queries_per_hour_over_nodes(portal: Portal) -> None:
    await as_admin(portal)
    db = portal.homing.db
    now = querycounts.bucket_of(time.time())
    await querycounts.add(db, "node-b", now - 30 * 3600, 999)  # older than the day
    await querycounts.add(db, "node-a", now, 120)  # ... pruned by this write
    await querycounts.add(db, "node-a", now, 30)  # another worker of the same node
    await querycounts.add(db, "node-b", now, 7)
    await querycounts.add(db, "node-b", now - 3 * 3600, 500)
    stored = await db.read(
        lambda conn: conn.scalar(sa.select(sa.func.count()).select_from(query_counts))
    )
    assert stored == 3  # one row per node and bucket, the old one gone
    hourly, nodes = await querycounts.queries_by_hour(db)
    assert nodes == {"node-a": 150, "node-b": 507}
    assert hourly.counts[-1] == 157 and hourly.counts[-4] == 500 and sum(hourly.counts) == 657

    page = await portal.client.get("/admin")
    assert page.status_code == 200
    section = re.search(r'<section class="card" id="queries-chart">.*?</section>', page.text, re.S)
    assert section is not None
    svg = section.group(0)
    assert "<script" not in svg and 'role="img"' in svg
    assert "highest 500 per hour" in svg
    titles = re.findall(r"<title>(\d\d):00 UTC: (\d+)</title>", svg)
    assert [int(count) for _hour, count in titles] == hourly.counts
    assert "per node: node-a: 150, node-b: 507" in svg
