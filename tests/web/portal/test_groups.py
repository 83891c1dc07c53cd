"""Groups in the portal: create (published or not, secret once), members, delete."""

from __future__ import annotations

import re

import sqlalchemy as sa

from homing.service import hosts
from homing.store.schema import journal, rrsets
from tests.web.portal.conftest import ZONE, Portal

SECRET_RE = re.compile(r'<code id="secret" class="secret-value">([^<]+)</code>')


async def host_ids(portal: Portal, *labels: str) -> list[int]:
    ids = []
    for label in labels:
        page = await portal.create_host(label)
        found = re.search(r'href="/hosts/(\d+)"', page.text)
        assert found
        ids.append(int(found.group(1)))
    return ids


async def update(portal: Portal, name: str, secret: str, address: str) -> str:
    """A dyndns2 update without hostname: every host the credentials stand for."""
    response = await portal.client.get("/nic/update", params={"myip": address}, auth=(name, secret))
    return response.text


async def records(portal: Portal, name: str) -> dict[str, str]:
    async with portal.homing.db.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(rrsets.c.rtype, rrsets.c.rdatas).where(rrsets.c.name == name)
        )
        return {r.rtype: r.rdatas for r in rows}


async def test_groups_need_a_login(portal: Portal) -> None:
    response = await portal.client.get("/groups")
    assert response.status_code == 303


async def test_published_group_follows_its_members(portal: Portal) -> None:
    await portal.sign_up("alice")
    cam, nas = await host_ids(portal, "cam", "nas")
    board = await portal.client.get("/dashboard")
    assert 'href="/groups"' in board.text
    # Give cam an address so the group has a live member from the start.
    await portal.post_form(
        f"/hosts/{cam}/address", {"ipv4": "192.0.2.1", "ipv6": ""}, page=f"/hosts/{cam}"
    )
    created = await portal.post_form("/groups", {"label": "all", "zone": ZONE, "members": str(cam)})
    assert created.status_code == 201, created.text
    found = SECRET_RE.search(created.text)
    assert found
    secret = found.group(1)
    group = f"all.{ZONE}"
    assert (await records(portal, group)) == {"A": "192.0.2.1"}
    listing = await portal.client.get("/groups")
    assert group in listing.text and secret not in listing.text
    group_id = re.search(r'href="/groups/(\d+)"', listing.text)
    assert group_id
    gid = group_id.group(1)
    # Add nas, update both with the group secret: the group answers both addresses.
    added = await portal.post_form(
        f"/groups/{gid}/members", {"host_id": str(nas), "action": "add"}, page=f"/groups/{gid}"
    )
    assert added.status_code == 303
    assert (await update(portal, group, secret, "192.0.2.7")).startswith("good")
    assert (await records(portal, group)) == {"A": "192.0.2.7"}
    page = await portal.client.get(f"/groups/{gid}")
    assert f"cam.{ZONE}" in page.text and f"nas.{ZONE}" in page.text
    # Remove cam: still nas's address; the change is journaled.
    removed = await portal.post_form(
        f"/groups/{gid}/members", {"host_id": str(cam), "action": "remove"}, page=f"/groups/{gid}"
    )
    assert removed.status_code == 303
    after = await portal.client.get(f"/groups/{gid}")
    assert f"cam.{ZONE}</code>\n" not in after.text.split('id="members"')[1].split("</ul>")[0]
    # Delete: the records go, through the journal.
    deleted = await portal.post_form(f"/groups/{gid}/delete", {}, page=f"/groups/{gid}/delete")
    assert deleted.status_code == 303
    assert (await records(portal, group)) == {}
    async with portal.homing.db.engine.connect() as conn:
        last = (
            await conn.execute(
                sa.select(journal.c.new, journal.c.via)
                .where(journal.c.name == group)
                .order_by(journal.c.id.desc())
            )
        ).first()
    assert last is not None and last.new == "" and last.via == "web"
    assert (await update(portal, group, secret, "192.0.2.8")).startswith("nohost")


async def test_unpublished_group_updates_members(portal: Portal) -> None:
    await portal.sign_up("alice")
    (cam,) = await host_ids(portal, "cam")
    created = await portal.post_form(
        "/groups", {"label": "office.alice", "zone": "", "members": str(cam)}
    )
    assert created.status_code == 201, created.text
    found = SECRET_RE.search(created.text)
    assert found
    assert (await update(portal, "office.alice", found.group(1), "192.0.2.9")).startswith("good")
    assert (await records(portal, f"cam.{ZONE}")) == {"A": "192.0.2.9"}
    assert (await records(portal, "office.alice")) == {}


async def test_group_form_errors(portal: Portal) -> None:
    await portal.sign_up("alice")
    await host_ids(portal, "cam")
    taken = await portal.post_form("/groups", {"label": "cam", "zone": ZONE})
    assert taken.status_code == 409 and 'id="label-error"' in taken.text
    no_dot = await portal.post_form("/groups", {"label": "office", "zone": ""})
    assert no_dot.status_code == 422 and 'id="name-error"' in no_dot.text
    inside = await portal.post_form("/groups", {"label": f"x.{ZONE}", "zone": ""})
    assert inside.status_code == 422 and 'id="name-error"' in inside.text
    foreign = await portal.post_form("/groups", {"label": "g", "zone": ZONE, "members": "999"})
    assert foreign.status_code == 422 and 'id="members-error"' in foreign.text
    ok = await portal.post_form("/groups", {"label": "one", "zone": ZONE})
    assert ok.status_code == 201
    assert (await portal.post_form("/groups", {"label": "two", "zone": ZONE})).status_code == 201
    quota = await portal.post_form("/groups", {"label": "three", "zone": ZONE})  # free plan: 2
    assert quota.status_code == 422 and "Group limit reached" in quota.text


async def test_other_users_group_is_not_found(portal: Portal) -> None:
    await portal.sign_up("alice")
    await portal.post_form("/groups", {"label": "g", "zone": ZONE})
    listing = await portal.client.get("/groups")
    found = re.search(r'href="/groups/(\d+)"', listing.text)
    assert found
    gid = found.group(1)
    await portal.log_out()
    await portal.sign_up("bob")
    (bobs,) = await host_ids(portal, "bobcam")
    assert (await portal.client.get(f"/groups/{gid}")).status_code == 404
    add = await portal.post_form(
        f"/groups/{gid}/members", {"host_id": str(bobs), "action": "add"}, page="/groups"
    )
    assert add.status_code == 404
    delete = await portal.post_form(f"/groups/{gid}/delete", {}, page="/groups")
    assert delete.status_code == 404


async def test_cannot_add_someone_elses_host(portal: Portal) -> None:
    await portal.sign_up("alice")
    other = await hosts.add_host(portal.homing.db, f"x.{ZONE}", "alice")
    await portal.log_out()
    await portal.sign_up("bob")
    await portal.post_form("/groups", {"label": "g", "zone": ZONE})
    listing = await portal.client.get("/groups")
    found = re.search(r'href="/groups/(\d+)"', listing.text)
    assert found
    response = await portal.post_form(
        f"/groups/{found.group(1)}/members",
        {"host_id": str(other.id), "action": "add"},
        page=f"/groups/{found.group(1)}",
    )
    assert response.status_code == 422 and 'id="members-error"' in response.text


async def test_new_group_secret_replaces_the_old(portal: Portal) -> None:
    await portal.sign_up("alice")
    (cam,) = await host_ids(portal, "cam")
    created = await portal.post_form("/groups", {"label": "all", "zone": ZONE, "members": str(cam)})
    first = SECRET_RE.search(created.text)
    assert first
    group = f"all.{ZONE}"
    listing = await portal.client.get("/groups")
    found = re.search(r'href="/groups/(\d+)"', listing.text)
    assert found
    gid = found.group(1)
    page = await portal.client.get(f"/groups/{gid}")
    assert f'action="/groups/{gid}/secret"' in page.text
    renewed = await portal.post_form(f"/groups/{gid}/secret", {}, page=f"/groups/{gid}")
    assert renewed.status_code == 200 and "New secret for" in renewed.text
    second = SECRET_RE.search(renewed.text)
    assert second and second.group(1) != first.group(1)
    # Shown once: the group page never carries it.
    assert second.group(1) not in (await portal.client.get(f"/groups/{gid}")).text
    assert (await update(portal, group, first.group(1), "192.0.2.20")).strip() == "badauth"
    assert (await update(portal, group, second.group(1), "192.0.2.21")).startswith("good")
    assert (await records(portal, f"cam.{ZONE}")) == {"A": "192.0.2.21"}
    # Someone else's group: not found, and its secret is unchanged.
    await portal.log_out()
    await portal.sign_up("bob")
    other = await portal.post_form(f"/groups/{gid}/secret", {}, page="/groups")
    assert other.status_code == 404
    assert (await update(portal, group, second.group(1), "192.0.2.22")).startswith("good")
