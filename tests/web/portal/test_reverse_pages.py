"""Reverse zones in the portal: the operator turns a reverse zone's PTRs on and off on the
zones page; a user sees each of their host's addresses with its PTR on the host page."""

from __future__ import annotations

import re

from homing.service import accounts, hosts, zonelist, zones
from tests.web.portal.conftest import PASSWORD, ZONE, Portal, browser, csrf_of

REV = "2.0.192.in-addr.arpa"


def row_text(page: str, zone: str) -> str:
    found = re.search(rf'<tr data-zone="{re.escape(zone)}">(.*?)</tr>', page, re.S)
    assert found is not None, f"no row {zone}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


async def test_operator_turns_ptrs_on_and_the_user_sees_them(portal: Portal) -> None:
    db = portal.homing.db
    rev = await zones.add_zone(db, REV)
    await accounts.create_account(db, "root", "root@example.org", PASSWORD, role="admin")
    await portal.sign_up("alice")
    created = await hosts.add_host(db, f"cam.{ZONE}", "alice")
    async with browser(portal.homing, source="203.0.113.9") as device:
        answer = await device.get(
            "/nic/update", params={"myip": "192.0.2.9"}, auth=(created.name, created.secret)
        )
    assert answer.text == "good 192.0.2.9\n"

    await portal.log_out()
    await portal.log_in("root")
    page = await portal.client.get("/admin/zones")
    assert "as set" in row_text(page.text, REV)
    assert "PTRs for hosts" not in row_text(page.text, ZONE)  # a forward zone has no toggle
    done = await portal.client.post(
        f"/admin/zones/{rev.id}/auto-ptr", data={"csrf_token": csrf_of(page), "auto_ptr": "1"}
    )
    assert done.status_code == 303
    page = await portal.client.get("/admin/zones")
    assert "1 PTRs written" in page.text
    assert "follow hosts" in row_text(page.text, REV)
    # Without the form's token: refused, nothing changed.
    refused = await portal.client.post(f"/admin/zones/{rev.id}/auto-ptr", data={"auto_ptr": "0"})
    assert refused.status_code == 403
    assert "follow hosts" in row_text((await portal.client.get("/admin/zones")).text, REV)

    await portal.log_out()
    await portal.log_in("alice")
    host_page = await portal.client.get(f"/hosts/{created.id}")
    ptrs = re.search(r'<dd class="ptrs" id="ptrs">(.*?)</dd>', host_page.text, re.S)
    assert ptrs is not None, host_page.text
    assert re.sub(r"<[^>]+>", "", ptrs.group(1)) == f"192.0.2.9 → cam.{ZONE}"


async def test_users_cannot_turn_ptrs_on(portal: Portal) -> None:
    db = portal.homing.db
    rev = await zones.add_zone(db, REV)
    await portal.sign_up("mallory")
    page = await portal.client.get("/dashboard")
    refused = await portal.client.post(
        f"/admin/zones/{rev.id}/auto-ptr", data={"csrf_token": csrf_of(page), "auto_ptr": "1"}
    )
    assert refused.status_code == 403
    listed = {row.name: row for row in await zonelist.list_zones(db)}
    assert listed[REV].reverse and not listed[REV].auto_ptr
