"""The operator's forms show every error at once, each next to its field and in words,
and save nothing."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa

from homing.store.schema import plans, zones
from tests.web.portal.conftest import Portal, field_error
from tests.web.portal.test_admin import PLAN, as_admin


async def count(portal: Portal, table: sa.Table) -> int:
    return int(
        await portal.homing.db.read(
            lambda conn: conn.scalar(sa.select(sa.func.count()).select_from(table))
        )
    )


def no_codes(page: httpx.Response) -> None:
    """Headings and messages in words: no internal code shows outside attributes."""
    text = re.sub(r"<[^>]+>", " ", page.text)
    for code in ("PLAN_INVALID", "ZONE_INVALID", "Plan invalid", "Zone invalid", "PLAN invalid"):
        assert code not in text, code


BAD_PLAN = {"price": "3.999", "currency": "EU", "max_hosts": "many"}


async def test_a_plan_form_with_three_bad_fields_shows_three_errors(portal: Portal) -> None:
    await as_admin(portal)
    before = await count(portal, plans)
    refused = await portal.post_form("/admin/plans", {**PLAN, **BAD_PLAN})
    assert refused.status_code == 422
    errors = {field: field_error(refused, field) for field in BAD_PLAN}
    assert all(e is not None and e.startswith("Plan not saved") for e in errors.values()), errors
    assert "3 or 3.50" in (errors["price"] or "")
    assert "3-letter code" in (errors["currency"] or "")
    assert "whole number" in (errors["max_hosts"] or "")
    assert field_error(refused, "name") is None and field_error(refused, "period") is None
    no_codes(refused)
    assert await count(portal, plans) == before
    # Editing a plan: the same, and the plan stays as it was.
    created = await portal.post_form("/admin/plans", PLAN)
    assert created.status_code == 303
    listing = await portal.client.get("/admin/plans")
    row = re.search(r'<tr data-plan="Plus">(.*?)</tr>', listing.text, re.S)
    assert row is not None
    found = re.search(r'<a href="/admin/plans/(\d+)">Edit</a>', row.group(1))
    assert found is not None
    path = f"/admin/plans/{found.group(1)}"
    refused = await portal.post_form(path, {**PLAN, **BAD_PLAN, "period": "week"})
    assert refused.status_code == 422
    for field in (*BAD_PLAN, "period"):
        assert (field_error(refused, field) or "").startswith("Plan not saved"), field
    no_codes(refused)
    page = await portal.client.get(path)
    assert 'value="3.50"' in page.text and 'value="USD"' in page.text


async def test_the_zone_form_names_the_name_and_the_name_servers(portal: Portal) -> None:
    await as_admin(portal)
    before = await count(portal, zones)
    refused = await portal.post_form(
        "/admin/zones", {"name": "bad..name", "ns": "ns1.example.net -x-..", "public": "on"}
    )
    assert refused.status_code == 422
    assert "bad..name" in (field_error(refused, "name") or "")
    ns = field_error(refused, "ns") or ""
    assert ns.startswith("Zone not accepted") and "-x-.." in ns and "ns1.example.net" not in ns
    no_codes(refused)
    assert await count(portal, zones) == before


async def test_the_inactivity_form_names_every_bad_field(portal: Portal) -> None:
    await as_admin(portal)
    form = {"warn_days": "x", "disable_days": "30", "delete_days": "-1", "notice_days": ""}
    refused = await portal.post_form("/admin/inactivity", form)
    assert refused.status_code == 422
    for field in ("warn_days", "delete_days", "notice_days"):
        assert (field_error(refused, field) or "").startswith("Policy not saved"), field
    assert field_error(refused, "disable_days") is None
    no_codes(refused)
