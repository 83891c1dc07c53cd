"""The operator overview's chart of address changes over the last 24 hours."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from homing.service import hosts
from homing.service.activity import address_changes_by_hour
from homing.store.db import as_utc, now
from homing.store.schema import journal
from tests.web.portal.conftest import ZONE, Portal, browser
from tests.web.portal.test_admin import as_admin


async def test_overview_draws_changes_per_hour(portal: Portal) -> None:
    await as_admin(portal)
    await portal.log_out()
    await portal.sign_up("alice")
    created = await hosts.add_host(portal.homing.db, f"cam.{ZONE}", "alice")
    async with browser(portal.homing, source="203.0.113.9") as device:
        for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
            answer = await device.get(
                "/nic/update", params={"myip": address}, auth=(created.name, created.secret)
            )
            assert answer.text == f"good {address}\n"
    # One change moved five hours back: the chart puts it in its own hour.
    async with portal.homing.db.engine.begin() as conn:
        first = (await conn.execute(sa.select(sa.func.min(journal.c.id)).where(
            journal.c.rtype == "A"))).scalar_one()  # fmt: skip
        await conn.execute(
            journal.update().where(journal.c.id == first).values(at=now() - timedelta(hours=5))
        )
        times = [
            as_utc(at)
            for at in (await conn.execute(sa.select(journal.c.at).where(journal.c.rtype == "A")))
            .scalars()
            .all()
        ]
    hourly = await address_changes_by_hour(portal.homing.db, now())
    assert len(hourly.counts) == 24 and sum(hourly.counts) == 3
    expected = [
        sum(1 for at in times if at is not None and start <= at < start + timedelta(hours=1))
        for start in hourly.starts
    ]
    assert hourly.counts == expected
    assert hourly.starts[-1] <= now() < hourly.starts[-1] + timedelta(hours=1)

    await portal.log_out()
    await portal.log_in("root")
    page = await portal.client.get("/admin")
    assert page.status_code == 200
    chart = re.search(r'<section class="card" id="changes-chart">.*?</section>', page.text, re.S)
    assert chart is not None
    svg = chart.group(0)
    assert "<script" not in svg and 'role="img"' in svg
    assert f"highest {max(hourly.counts)} per hour" in svg
    assert len(re.findall(r"<rect ", svg)) == 24
    titles = re.findall(r"<title>(\d\d):00 UTC: (\d+)</title>", svg)
    assert [int(count) for _hour, count in titles] == hourly.counts
