"""After an unblock, a host whose history shows updates does not read "waiting for the
first update" on the dashboard."""

from __future__ import annotations

import re

from tests.web.portal.conftest import Portal
from tests.web.portal.test_host_care import NAME, _block, _host, _set_plan, _update


def status_text(page: str) -> str:
    row = re.search(rf'<tr data-host="{re.escape(NAME)}">(.*?)</tr>', page, re.S)
    assert row is not None
    cell = re.search(r'<td class="status">(.*?)</td>', row.group(1), re.S)
    assert cell is not None
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell.group(1))).strip()


async def test_status_after_an_unblock(portal: Portal) -> None:
    await _set_plan(portal, self_unblock_days=2)
    host_id, secret = await _host(portal)
    assert "waiting for the first update" in status_text(
        (await portal.client.get("/dashboard")).text
    )
    await _update(portal, secret, "192.0.2.1")
    await _block(portal)
    done = await portal.post_form(f"/hosts/{host_id}/unblock", {}, f"/hosts/{host_id}")
    assert done.status_code == 303
    shown = status_text((await portal.client.get("/dashboard")).text)
    assert "first update" not in shown
    assert "waiting for its next update" in shown
