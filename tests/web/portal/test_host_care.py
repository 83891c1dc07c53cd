"""A user's own host page: new secret, address by hand, history from the journal, unblocking."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.service import hostcare, hosts
from homing.store.db import Txn
from homing.store.schema import hosts as hosts_table
from homing.store.schema import journal, plans
from tests.web.portal.conftest import ZONE, Portal, browser, field_error

SECRET_RE = re.compile(r'<code id="secret" class="secret-value">([^<]+)</code>')
NAME = f"cam.{ZONE}"


async def _host(portal: Portal, user: str = "alice") -> tuple[int, str]:
    """Sign up `user` (logged in after) and create cam.ZONE; its id and secret."""
    await portal.sign_up(user)
    created = await portal.create_host("cam")
    assert created.status_code == 201
    secret = SECRET_RE.search(created.text)
    assert secret is not None
    host_id = await portal.homing.db.read(
        lambda conn: conn.scalar(sa.select(hosts_table.c.id).where(hosts_table.c.name == NAME))
    )
    return int(host_id), secret.group(1)


async def _update(portal: Portal, secret: str, address: str) -> str:
    async with browser(portal.homing, source="203.0.113.9") as device:
        answer = await device.get(
            "/nic/update", params={"hostname": NAME, "myip": address}, auth=(NAME, secret)
        )
    return answer.text


def _history_rows(page: httpx.Response) -> list[str]:
    rows = re.findall(r"<tr data-serial=\"\d+\">(.*?)</tr>", page.text, re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]


async def test_host_page_links_from_the_dashboard(portal: Portal) -> None:
    host_id, _ = await _host(portal)
    board = await portal.client.get("/dashboard")
    assert f'href="/hosts/{host_id}"' in board.text
    page = await portal.client.get(f"/hosts/{host_id}")
    assert page.status_code == 200 and f"<code>{NAME}</code>" in page.text
    assert 'id="no-history"' in page.text and 'id="blocked"' not in page.text


async def test_pages_of_someone_elses_host_are_not_found(portal: Portal) -> None:
    host_id, _ = await _host(portal)
    await portal.log_out()
    await portal.sign_up("mallory")
    assert (await portal.client.get(f"/hosts/{host_id}")).status_code == 404
    for action in ("secret", "address", "unblock"):
        response = await portal.post_form(
            f"/hosts/{host_id}/{action}", {"ipv4": "192.0.2.66"}, "/dashboard"
        )
        assert response.status_code == 404, action
    await portal.log_out()
    anonymous = await portal.client.get(f"/hosts/{host_id}")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"


async def test_new_secret_is_shown_once_and_replaces_the_old(portal: Portal) -> None:
    host_id, old = await _host(portal)
    page = await portal.post_form(f"/hosts/{host_id}/secret", {}, f"/hosts/{host_id}")
    assert page.status_code == 200
    assert f"New secret for <code>{NAME}</code>" in page.text
    new = SECRET_RE.search(page.text)
    assert new is not None and new.group(1) != old
    assert f"login={NAME}" in page.text and new.group(1) in page.text
    assert page.headers["cache-control"] == "no-store"
    assert await _update(portal, old, "192.0.2.1") == "badauth\n"
    assert await _update(portal, new.group(1), "192.0.2.1") == "good 192.0.2.1\n"
    again = await portal.client.get(f"/hosts/{host_id}")
    assert new.group(1) not in again.text


async def test_set_address_by_hand_goes_through_the_journal(portal: Portal) -> None:
    host_id, _ = await _host(portal)
    done = await portal.post_form(
        f"/hosts/{host_id}/address",
        {"ipv4": "192.0.2.5", "ipv6": "2001:db8::5"},
        f"/hosts/{host_id}",
    )
    assert done.status_code == 303 and done.headers["location"] == f"/hosts/{host_id}"
    page = await portal.client.get(f"/hosts/{host_id}")
    assert f"{NAME} now points to 192.0.2.5, 2001:db8::5." in page.text
    assert 'class="badge ok">ACT' in page.text and "portal (set by hand)" in page.text
    rows = _history_rows(page)
    assert len(rows) == 2 and all("web user:alice" in row for row in rows)
    assert any("A none → 192.0.2.5" in row for row in rows)

    same = await portal.post_form(
        f"/hosts/{host_id}/address",
        {"ipv4": "192.0.2.5", "ipv6": "2001:db8::5"},
        f"/hosts/{host_id}",
    )
    page = await portal.client.get(same.headers["location"])
    assert "nothing changed" in page.text and len(_history_rows(page)) == 2

    removed = await portal.post_form(
        f"/hosts/{host_id}/address", {"ipv4": "192.0.2.6", "ipv6": ""}, f"/hosts/{host_id}"
    )
    page = await portal.client.get(removed.headers["location"])
    rows = _history_rows(page)
    assert rows[0].startswith(rows[0][:23]) and len(rows) == 4
    assert any("AAAA 2001:db8::5 → removed" in row for row in rows[:2])
    assert any("A 192.0.2.5 → 192.0.2.6" in row for row in rows[:2])

    async def serials(conn: AsyncConnection) -> list[str]:
        found = await conn.execute(
            sa.select(journal.c.via, journal.c.actor).where(journal.c.name == NAME)
        )
        return [f"{r.via} {r.actor}" for r in found]

    assert set(await portal.homing.db.read(serials)) == {"web user:alice"}

    for ipv4, ipv6, field in [
        ("not an address", "", "ipv4"),
        ("2001:db8::1", "", "ipv4"),
        ("", "192.0.2.1", "ipv6"),
        ("224.0.0.1", "", "ipv4"),
    ]:
        refused = await portal.post_form(
            f"/hosts/{host_id}/address", {"ipv4": ipv4, "ipv6": ipv6}, f"/hosts/{host_id}"
        )
        assert refused.status_code == 422, (ipv4, ipv6)
        assert (field_error(refused, field) or "").startswith("Address not accepted")
        assert f'value="{ipv4}"' in refused.text  # what was typed stays in the form


async def _set_plan(portal: Portal, **values: object) -> None:
    async def unit(txn: Txn) -> None:
        await txn.conn.execute(sa.update(plans).values(**values))

    await portal.homing.db.write(unit)


async def test_set_address_keeps_the_plans_minimum_interval(portal: Portal) -> None:
    await _set_plan(portal, min_interval=3600)
    host_id, _ = await _host(portal)
    first = await portal.post_form(
        f"/hosts/{host_id}/address", {"ipv4": "192.0.2.5"}, f"/hosts/{host_id}"
    )
    assert first.status_code == 303
    soon = await portal.post_form(
        f"/hosts/{host_id}/address", {"ipv4": "192.0.2.6"}, f"/hosts/{host_id}"
    )
    assert soon.status_code == 429
    assert "Too soon" in soon.text and "every 3600 s" in soon.text
    unchanged = await portal.post_form(
        f"/hosts/{host_id}/address", {"ipv4": "192.0.2.5"}, f"/hosts/{host_id}"
    )
    assert unchanged.status_code == 303  # no change, no interval to keep


async def test_history_is_paged_newest_first(portal: Portal) -> None:
    host_id, secret = await _host(portal)
    for i in range(hostcare.HISTORY_PAGE + 5):
        assert (await _update(portal, secret, f"192.0.2.{i + 1}")).startswith("good")
    first = await portal.client.get(f"/hosts/{host_id}")
    rows = _history_rows(first)
    assert len(rows) == hostcare.HISTORY_PAGE
    assert f"→ 192.0.2.{hostcare.HISTORY_PAGE + 5}" in rows[0]
    assert "dyndns2" in rows[0] and f"{NAME}@203.0.113.9" in rows[0]
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = await portal.client.get(f"/hosts/{host_id}", params={"page": "2"})
    rows = _history_rows(second)
    assert len(rows) == 5 and "none → 192.0.2.1" in rows[-1]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    beyond = await portal.client.get(f"/hosts/{host_id}", params={"page": "99"})
    assert "No older changes." in beyond.text
    odd = await portal.client.get(f"/hosts/{host_id}", params={"page": "-3"})
    assert odd.status_code == 200 and len(_history_rows(odd)) == hostcare.HISTORY_PAGE


async def test_history_starts_with_the_host(portal: Portal) -> None:
    """A name deleted and taken again shows its new owner nothing of the old one."""
    host_id, secret = await _host(portal)
    await _update(portal, secret, "192.0.2.1")
    deleted = await portal.post_form(f"/hosts/{host_id}/delete", {})
    assert deleted.status_code == 303
    await portal.log_out()

    async def backdate(txn: Txn) -> None:  # the old entries are older than the new host
        await txn.conn.execute(
            sa.update(journal)
            .where(journal.c.name == NAME)
            .values(at=txn.now - timedelta(minutes=5))
        )

    await portal.homing.db.write(backdate)
    new_id, _ = await _host(portal, "bob")
    page = await portal.client.get(f"/hosts/{new_id}")
    assert 'id="no-history"' in page.text and "192.0.2.1" not in page.text


async def _block(portal: Portal) -> None:
    async def unit(txn: Txn) -> None:
        await txn.conn.execute(
            sa.update(hosts_table)
            .where(hosts_table.c.name == NAME)
            .values(status="blocked", nochg_count=11, last_result="ABUSE")
        )

    await portal.homing.db.write(unit)


async def test_owner_unblocks_once_per_plan_period(portal: Portal) -> None:
    await _set_plan(portal, self_unblock_days=2)
    host_id, secret = await _host(portal)
    await _update(portal, secret, "192.0.2.1")
    await _block(portal)
    page = await portal.client.get(f"/hosts/{host_id}")
    assert 'id="blocked"' in page.text and 'id="unblock"' in page.text
    assert "once every 2 days" in page.text
    refused = await portal.post_form(
        f"/hosts/{host_id}/address", {"ipv4": "192.0.2.9"}, f"/hosts/{host_id}"
    )
    assert refused.status_code == 409 and "Host blocked" in refused.text
    assert await _update(portal, secret, "192.0.2.9") == "abuse\n"

    done = await portal.post_form(f"/hosts/{host_id}/unblock", {}, f"/hosts/{host_id}")
    assert done.status_code == 303
    page = await portal.client.get(f"/hosts/{host_id}")
    assert f"{NAME} is unblocked" in page.text and 'id="blocked"' not in page.text
    assert await _update(portal, secret, "192.0.2.9") == "good 192.0.2.9\n"

    await _block(portal)
    page = await portal.client.get(f"/hosts/{host_id}")
    assert 'id="unblock"' not in page.text and "allows it again from" in page.text
    too_soon = await portal.post_form(f"/hosts/{host_id}/unblock", {}, f"/hosts/{host_id}")
    assert too_soon.status_code == 429 and "Unblocked too recently" in too_soon.text

    async def long_ago(txn: Txn) -> None:
        await txn.conn.execute(
            sa.update(hosts_table).values(unblocked_at=txn.now - timedelta(days=2, seconds=1))
        )

    await portal.homing.db.write(long_ago)
    again = await portal.post_form(f"/hosts/{host_id}/unblock", {}, f"/hosts/{host_id}")
    assert again.status_code == 303
    not_blocked = await portal.post_form(f"/hosts/{host_id}/unblock", {}, f"/hosts/{host_id}")
    assert not_blocked.status_code == 409


async def test_plan_can_leave_unblocking_to_the_operator(portal: Portal) -> None:
    await _set_plan(portal, self_unblock_days=0)
    host_id, _ = await _host(portal)
    await _block(portal)
    page = await portal.client.get(f"/hosts/{host_id}")
    assert 'id="unblock"' not in page.text and "leaves unblocking to the operator" in page.text
    refused = await portal.post_form(f"/hosts/{host_id}/unblock", {}, f"/hosts/{host_id}")
    assert refused.status_code == 403 and "Unblocking not allowed" in refused.text
    status = await portal.homing.db.read(
        lambda conn: conn.scalar(sa.select(hosts_table.c.status).where(hosts_table.c.id == host_id))
    )
    assert status == "blocked"


async def test_set_address_refreshes_groups(portal: Portal) -> None:
    host_id, _ = await _host(portal)
    await hosts.add_group(portal.homing.db, f"all.{ZONE}", "alice", [NAME])
    await portal.post_form(f"/hosts/{host_id}/address", {"ipv4": "192.0.2.77"}, f"/hosts/{host_id}")

    async def group_entries(conn: AsyncConnection) -> list[str]:
        found = await conn.execute(
            sa.select(journal.c.new).where(journal.c.name == f"all.{ZONE}", journal.c.rtype == "A")
        )
        return [r.new for r in found]

    assert await portal.homing.db.read(group_entries) == ["192.0.2.77"]
