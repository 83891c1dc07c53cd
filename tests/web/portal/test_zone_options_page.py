"""The admin page for a zone's options: name servers with their addresses, secondaries
notified, who may transfer; bad lines change nothing and are said in words."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.service import zoneoptions
from homing.store.schema import zones
from tests.web.portal.conftest import ZONE, Portal, field_error
from tests.web.portal.test_admin import as_admin


async def zone_id(portal: Portal) -> int:
    async def read(conn: AsyncConnection) -> int:
        return int(await conn.scalar(sa.select(zones.c.id).where(zones.c.name == ZONE)))

    return await portal.homing.db.read(read)


async def test_options_page_changes_the_zone(portal: Portal) -> None:
    await as_admin(portal)
    listing = await portal.client.get("/admin/zones")
    number = await zone_id(portal)
    assert f'href="/admin/zones/{number}/options"' in listing.text
    path = f"/admin/zones/{number}/options"
    page = await portal.client.get(path)
    assert page.status_code == 200
    assert f"ns1.{ZONE}</code> is inside the zone and has no address" in page.text
    saved = await portal.post_form(
        path,
        {
            "ns": f"ns1.{ZONE}=192.0.2.53\nns2.example.org",
            "notify": "192.0.2.53:53\n[2001:db8::53]:53",
            "allow_transfer": "192.0.2.0/24",
        },
    )
    assert saved.status_code == 303
    view = await zoneoptions.read_options(portal.homing.db, number)
    assert view.nameservers == [f"ns1.{ZONE}=192.0.2.53", "ns2.example.org"]
    assert view.notify == ["192.0.2.53:53", "[2001:db8::53]:53"]
    assert view.allow_transfer == ["192.0.2.0/24"]
    page = await portal.client.get(path)
    assert "has no address" not in page.text
    assert "192.0.2.0/24" in page.text


async def test_a_bad_line_changes_nothing(portal: Portal) -> None:
    await as_admin(portal)
    number = await zone_id(portal)
    path = f"/admin/zones/{number}/options"
    before = await zoneoptions.read_options(portal.homing.db, number)
    refused = await portal.post_form(
        path, {"ns": "ns.example.org", "notify": "192.0.2.53", "allow_transfer": "10.0.0.0/8"}
    )
    assert refused.status_code == 422
    error = field_error(refused, "notify")
    assert error is not None and error.startswith("Not saved") and "ADDRESS:PORT" in error
    assert await zoneoptions.read_options(portal.homing.db, number) == before
    refused = await portal.post_form(path, {"ns": "", "notify": "", "allow_transfer": ""})
    assert refused.status_code == 422
    assert "at least one name server" in (field_error(refused, "ns") or "")
    missing = await portal.client.get("/admin/zones/999/options")
    assert missing.status_code == 404


async def test_every_bad_field_is_shown_at_once(portal: Portal) -> None:
    await as_admin(portal)
    number = await zone_id(portal)
    path = f"/admin/zones/{number}/options"
    before = await zoneoptions.read_options(portal.homing.db, number)
    form = {
        "ns": "bad..name",
        "notify": "nowhere",
        "allow_transfer": "10.0.0.0/33",
        "rname": "ops.example.org",
        "ttl": "0",
        "negative_ttl": "ten",
        "refresh": "3600",
        "retry": "600",
        "expire": "1209600",
    }
    refused = await portal.post_form(path, form)
    assert refused.status_code == 422
    for field in ("ns", "notify", "allow_transfer", "ttl", "negative_ttl"):
        error = field_error(refused, field)
        assert error is not None and error.startswith("Not saved"), field
    assert field_error(refused, "rname") is None and field_error(refused, "refresh") is None
    assert 'id="form-error"' not in refused.text
    assert "ZONE_OPTIONS" not in re.sub(r'data-code="[^"]*"', "", refused.text)
    assert await zoneoptions.read_options(portal.homing.db, number) == before
    # The SOA's values are saved like the rest.
    good = {**form, "ns": "ns.example.org", "notify": "", "allow_transfer": "",
            "ttl": "300", "negative_ttl": "30"}  # fmt: skip
    saved = await portal.post_form(path, good)
    assert saved.status_code == 303
    soa = (await zoneoptions.read_options(portal.homing.db, number)).soa
    assert soa == zoneoptions.Soa("ops.example.org", 300, 30, 3600, 600, 1209600)


async def test_where_changes_go_is_set_on_the_page(portal: Portal) -> None:
    await as_admin(portal)
    number = await zone_id(portal)
    path = f"/admin/zones/{number}/options"
    base = {"ns": "ns.example.org", "notify": "", "allow_transfer": ""}
    refused = await portal.post_form(path, {**base, "push": "192.0.2.1:53"})
    assert refused.status_code == 422
    assert "go together" in (field_error(refused, "push") or "")
    # A NOTIFY key that is not one of the zone's: refused whole, nothing saved.
    before = await zoneoptions.read_options(portal.homing.db, number)
    refused = await portal.post_form(path, {**base, "ns": "ns2.example.org", "notify_key": "nokey"})
    assert refused.status_code == 422 and "no key nokey" in refused.text
    assert await zoneoptions.read_options(portal.homing.db, number) == before
    saved = await portal.post_form(path, {**base, "push": "192.0.2.1:53", "push_key": "pusher"})
    assert saved.status_code == 303
    routes = (await zoneoptions.read_options(portal.homing.db, number)).routes
    assert (routes.push, routes.push_key, routes.notify_key) == ("192.0.2.1:53", "pusher", None)
    page = await portal.client.get(path)
    assert 'value="192.0.2.1:53"' in page.text
    saved = await portal.post_form(path, base)  # emptied: pushes nowhere again
    routes = (await zoneoptions.read_options(portal.homing.db, number)).routes
    assert saved.status_code == 303 and routes.push is None and routes.push_key is None
