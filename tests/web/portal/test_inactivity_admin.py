"""The operator's inactivity page: admins only, the policy saved or refused per field, a run now."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from homing.service import hosts, inactivity
from tests.web.portal.conftest import ZONE, Portal, csrf_of, field_error
from tests.web.portal.test_admin import as_admin

POLICY = {"warn_days": "30", "disable_days": "60", "delete_days": "90", "notice_days": "7"}


def count(page_text: str, stage: str) -> int:
    found = re.search(rf'<dd id="count-{stage}">(\d+)</dd>', page_text)
    assert found, stage
    return int(found.group(1))


async def test_only_admins_see_or_change_the_policy(portal: Portal) -> None:
    assert (await portal.client.get("/admin/inactivity")).headers["location"] == "/login"
    await portal.sign_up("alice")
    board = await portal.client.get("/dashboard")
    assert (await portal.client.get("/admin/inactivity")).status_code == 403
    refused = await portal.client.post(
        "/admin/inactivity", data={"csrf_token": csrf_of(board), **POLICY}
    )
    assert refused.status_code == 403
    policy, saved_at = await inactivity.get_policy(portal.homing.db, portal.homing.settings)
    assert saved_at is None and not policy.active


async def test_save_refuse_and_run(portal: Portal) -> None:
    await as_admin(portal)
    page = await portal.client.get("/admin/inactivity")
    assert page.status_code == 200 and "Not saved yet" in page.text
    assert 'href="/admin/inactivity" aria-current="page"' in page.text
    saved = await portal.post_form("/admin/inactivity", POLICY)
    assert saved.status_code == 303
    db, settings = portal.homing.db, portal.homing.settings
    assert (await inactivity.get_policy(db, settings))[0] == inactivity.Policy(30, 60, 90, 7)
    bad = await portal.post_form("/admin/inactivity", {**POLICY, "delete_days": "45"})
    assert bad.status_code == 422
    assert field_error(bad, "delete_days") == (
        "Policy not saved Delete after more days than disable (or 0: never)."
    )
    assert 'value="45"' in bad.text  # what was typed stays; nothing was saved
    assert (await inactivity.get_policy(db, settings))[0].delete_days == 90

    await hosts.add_host(db, f"cam.{ZONE}", "root")
    ran = await portal.post_form("/admin/inactivity/run", {}, "/admin/inactivity")
    assert ran.status_code == 303
    after = await portal.client.get("/admin/inactivity")
    assert "Policy run: 0 warning step(s), 0 host(s) disabled, 0 deleted." in after.text
    assert count(after.text, "stale") == 0


async def test_the_owner_enables_a_host_disabled_for_inactivity(portal: Portal) -> None:
    await portal.sign_up("alice")
    created = await portal.create_host("cam")
    found = re.search(r'href="/hosts/(\d+)"', created.text)
    assert found
    host_id = int(found.group(1))
    db = portal.homing.db
    policy = inactivity.Policy(disable_days=60, notice_days=7)
    later = datetime.now(UTC) + timedelta(days=53)
    await inactivity.run_policy(db, policy, later, group_max_age=3600)
    report = await inactivity.run_policy(db, policy, later + timedelta(days=7), group_max_age=3600)
    assert report.disabled == 1
    page = await portal.client.get(f"/hosts/{host_id}")
    assert (
        "Disabled for inactivity" in page.text and "disabled: no update for too long" in page.text
    )
    enabled = await portal.post_form(f"/hosts/{host_id}/enable", {}, f"/hosts/{host_id}")
    assert enabled.status_code == 303
    after = await portal.client.get(f"/hosts/{host_id}")
    assert f"cam.{ZONE} is active again" in after.text
    assert "Disabled for inactivity" not in after.text
    again = await portal.post_form(f"/hosts/{host_id}/enable", {}, f"/hosts/{host_id}")
    assert again.status_code == 409
    assert "<strong>Nothing to enable</strong> This host was not disabled for inactivity." in (
        again.text
    )
