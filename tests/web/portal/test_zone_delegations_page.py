"""The admin page for a zone's delegations: delegate a subzone, see it, remove it; a bad
form changes nothing and says why in words."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.service import delegations
from homing.store.schema import zones
from tests.web.portal.conftest import ZONE, Portal
from tests.web.portal.test_admin import as_admin


async def zone_id(portal: Portal) -> int:
    async def read(conn: AsyncConnection) -> int:
        return int(await conn.scalar(sa.select(zones.c.id).where(zones.c.name == ZONE)))

    return await portal.homing.db.read(read)


async def test_delegate_list_and_remove(portal: Portal) -> None:
    await as_admin(portal)
    number = await zone_id(portal)
    listing = await portal.client.get("/admin/zones")
    assert f'href="/admin/zones/{number}/delegations"' in listing.text
    path = f"/admin/zones/{number}/delegations"
    page = await portal.client.get(path)
    assert page.status_code == 200 and "No subzone is delegated" in page.text
    saved = await portal.post_form(
        path, {"child": f"office.{ZONE}", "ns": f"ns1.office.{ZONE}=192.0.2.10\nns.example.org"}
    )
    assert saved.status_code == 303
    view = await delegations.list_delegations(portal.homing.db, number)
    assert view.cuts == [(f"office.{ZONE}", ["ns.example.org", f"ns1.office.{ZONE}=192.0.2.10"])]
    page = await portal.client.get(path)
    assert f"ns1.office.{ZONE}=192.0.2.10" in page.text
    removed = await portal.post_form(f"{path}/remove", {"child": f"office.{ZONE}"}, page=path)
    assert removed.status_code == 303
    assert (await delegations.list_delegations(portal.homing.db, number)).cuts == []


async def test_a_bad_delegation_changes_nothing(portal: Portal) -> None:
    await as_admin(portal)
    number = await zone_id(portal)
    path = f"/admin/zones/{number}/delegations"
    refused = await portal.post_form(path, {"child": f"office.{ZONE}", "ns": f"ns1.office.{ZONE}"})
    assert refused.status_code == 422
    alert = re.search(r'id="form-error"[^>]*>(.*?)</p>', refused.text, re.S)
    assert alert is not None and "give its address" in alert.group(1)
    refused = await portal.post_form(path, {"child": "elsewhere.example", "ns": "ns.example.org"})
    assert refused.status_code == 422 and "not a name below" in refused.text
    assert (await delegations.list_delegations(portal.homing.db, number)).cuts == []
    missing = await portal.client.get("/admin/zones/999/delegations")
    assert missing.status_code == 404
