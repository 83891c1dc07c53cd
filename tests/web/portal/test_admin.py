"""The operator's pages: access, zones, plans and prices, accounts, abuse blocks, figures."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.service import accounts, hosts
from homing.store.db import Txn
from homing.store.schema import accounts as accounts_table
from homing.store.schema import hosts as hosts_table
from homing.store.schema import plans
from tests.web.portal.conftest import PASSWORD, ZONE, Portal, browser, csrf_of, field_error

ADMIN_PAGES = ["/admin", "/admin/zones", "/admin/plans", "/admin/accounts", "/admin/hosts"]
PLAN = {
    "name": "Plus",
    "max_hosts": "25",
    "max_groups": "5",
    "min_interval": "60",
    "price": "3.50",
    "currency": "usd",
    "period": "year",
    "self_unblock_days": "7",
    "custom_ttl": "on",
}


def row_of(page: httpx.Response, attribute: str, key: str) -> str:
    found = re.search(rf'<tr data-{attribute}="{re.escape(key)}">(.*?)</tr>', page.text, re.S)
    assert found is not None, f"no row {key} on {page.url}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


async def as_admin(portal: Portal) -> None:
    await accounts.create_account(
        portal.homing.db, "root", "root@example.org", PASSWORD, role="admin"
    )
    response = await portal.log_in("root")
    assert response.status_code == 303


async def test_admin_pages_need_the_admin_role(portal: Portal) -> None:
    for path in ADMIN_PAGES:
        anonymous = await portal.client.get(path)
        assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    await portal.sign_up("alice")
    board = await portal.client.get("/dashboard")
    assert 'href="/admin"' not in board.text
    for path in ADMIN_PAGES:
        refused = await portal.client.get(path)
        assert refused.status_code == 403, path
        assert "Operators only" in refused.text
    token = csrf_of(board)
    for path in ["/admin/zones", "/admin/plans", "/admin/hosts/1/unblock"]:
        refused = await portal.client.post(path, data={"csrf_token": token, "name": "x.test"})
        assert refused.status_code == 403, path
    async with portal.homing.db.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(plans)) == 1


async def test_admin_forms_need_the_csrf_token(portal: Portal) -> None:
    await as_admin(portal)
    response = await portal.client.post("/admin/zones", data={"name": "new.example.net"})
    assert response.status_code == 403 and "This form has expired" in response.text
    zones = await portal.client.get("/admin/zones")
    assert "new.example.net" not in zones.text


async def test_overview_shows_live_figures(portal: Portal) -> None:
    await as_admin(portal)
    await portal.log_out()
    await portal.sign_up("alice")
    created = await hosts.add_host(portal.homing.db, f"cam.{ZONE}", "alice")
    async with browser(portal.homing, source="203.0.113.9") as device:
        answer = await device.get(
            "/nic/update", params={"myip": "192.0.2.1"}, auth=(created.name, created.secret)
        )
    assert answer.text == "good 192.0.2.1\n"
    await portal.log_out()
    await portal.log_in("root")
    page = await portal.client.get("/admin")
    assert page.status_code == 200
    assert 'href="/admin" aria-current="page"' in page.text  # the nav link for operators

    def figure(name: str) -> str:
        found = re.search(
            rf'data-figure="{name}">.*?<p class="big[^"]*">([^<]+)</p>', page.text, re.S
        )
        assert found is not None
        return found.group(1).strip()

    assert figure("accounts") == "2"
    assert figure("hosts") == "1"
    assert figure("updates") == "1"  # one A record changed in the journal this minute
    assert figure("dns") == "n/a"  # in process, without `homing serve` and its DNS meter
    assert "not served by" in page.text


async def test_create_zone_and_offer_it(portal: Portal) -> None:
    await as_admin(portal)
    created = await portal.post_form(
        "/admin/zones", {"name": "Home.Example.ORG", "ns": "ns1.example.org ns2.example.org"}
    )
    assert created.status_code == 303
    page = await portal.client.get("/admin/zones")
    assert "Zone home.example.org is created (not offered yet)." in page.text
    assert "hidden" in row_of(page, "zone", "home.example.org")
    new_host = await portal.client.get("/hosts/new")
    assert '<option value="home.example.org"' not in new_host.text

    offer = (
        r'action="/admin/zones/(\d+)/public"[^<]*<input[^>]*>\s*<input [^>]*name="public" value="1"'
    )
    zone_id = re.search(offer, page.text)
    assert zone_id is not None
    offered = await portal.client.post(
        f"/admin/zones/{zone_id.group(1)}/public", data={"csrf_token": csrf_of(page), "public": "1"}
    )
    assert offered.status_code == 303
    page = await portal.client.get("/admin/zones")
    assert "home.example.org is offered to users." in page.text
    assert "offered" in row_of(page, "zone", "home.example.org")
    new_host = await portal.client.get("/hosts/new")
    assert '<option value="home.example.org"' in new_host.text

    duplicate = await portal.post_form("/admin/zones", {"name": "home.example.org", "public": "on"})
    assert duplicate.status_code == 409
    assert (field_error(duplicate, "name") or "").startswith("Zone exists already")
    invalid = await portal.post_form("/admin/zones", {"name": "bad..name", "public": "on"})
    assert invalid.status_code == 422
    assert (field_error(invalid, "name") or "").startswith("Zone not accepted")
    bad_ns = await portal.post_form("/admin/zones", {"name": "z.example.org", "ns": "-x-.."})
    assert bad_ns.status_code == 422 and field_error(bad_ns, "ns") is not None


async def test_create_and_edit_a_plan_and_make_it_the_default(portal: Portal) -> None:
    await as_admin(portal)
    created = await portal.post_form("/admin/plans", PLAN)
    assert created.status_code == 303
    pricing = await portal.client.get("/pricing")
    assert row_of(pricing, "plan", "Plus") == "Plus 25 5 1 min yes 3.50 USD / year"

    duplicate = await portal.post_form("/admin/plans", {**PLAN, "name": "plus"})
    assert duplicate.status_code == 409
    assert (field_error(duplicate, "name") or "").startswith("Plan name taken")
    for field, value in [
        ("price", "3.999"),
        ("price", "-1"),
        ("price", "NaN"),
        ("currency", "EU"),
        ("period", "week"),
        ("max_hosts", "many"),
        ("min_interval", "999999"),
        ("self_unblock_days", "-1"),
        ("name", ""),
    ]:
        refused = await portal.post_form("/admin/plans", {**PLAN, "name": "Other", field: value})
        assert refused.status_code == 422, field
        assert (field_error(refused, field) or "").startswith("Plan not saved"), field
        assert 'value="Other"' in refused.text or field == "name"  # what was typed stays

    page = await portal.client.get("/admin/plans")
    plan_id = re.search(r'<a href="/admin/plans/(\d+)">Edit</a>', row_of_html(page, "Plus"))
    assert plan_id is not None
    edit = await portal.client.get(f"/admin/plans/{plan_id.group(1)}")
    assert 'value="3.50"' in edit.text and 'value="USD"' in edit.text
    saved = await portal.post_form(
        f"/admin/plans/{plan_id.group(1)}", {**PLAN, "price": "4", "max_hosts": "30"}
    )
    assert saved.status_code == 303
    pricing = await portal.client.get("/pricing")
    assert row_of(pricing, "plan", "Plus") == "Plus 30 5 1 min yes 4.00 USD / year"

    made = await portal.post_form(f"/admin/plans/{plan_id.group(1)}/default", {}, "/admin/plans")
    assert made.status_code == 303
    pricing = await portal.client.get("/pricing")
    assert "new accounts" in row_of(pricing, "plan", "Plus")
    assert "new accounts" not in row_of(pricing, "plan", "free")
    await portal.log_out()
    await portal.sign_up("newbie")
    board = await portal.client.get("/dashboard")
    assert "plan <strong>Plus</strong>" in board.text
    missing = await portal.client.get("/admin/plans/9999")
    assert missing.status_code == 403  # not an admin any more: the role check comes first


def row_of_html(page: httpx.Response, plan: str) -> str:
    found = re.search(rf'<tr data-plan="{plan}">(.*?)</tr>', page.text, re.S)
    assert found is not None
    return found.group(1)


async def _account_id(portal: Portal, user_id: str) -> int:
    async def query(conn: AsyncConnection) -> int:
        found = await conn.scalar(
            sa.select(accounts_table.c.id).where(accounts_table.c.user_id == user_id)
        )
        assert found is not None
        return int(found)

    return await portal.homing.db.read(query)


async def test_accounts_search_disable_enable_plan_and_role(portal: Portal) -> None:
    await portal.sign_up("alice")
    await portal.log_out()
    await portal.sign_up("bob", "bob@corp.example")
    await portal.log_out()
    created = await hosts.add_host(portal.homing.db, f"cam.{ZONE}", "alice")
    await as_admin(portal)

    found = await portal.client.get("/admin/accounts", params={"q": "CORP"})
    assert 'data-account="bob"' in found.text and 'data-account="alice"' not in found.text
    nothing = await portal.client.get("/admin/accounts", params={"q": "%"})
    assert 'id="no-accounts"' in nothing.text  # LIKE wildcards are matched literally
    every = await portal.client.get("/admin/accounts")
    assert all(f'data-account="{u}"' in every.text for u in ("alice", "bob", "root"))

    alice = await _account_id(portal, "alice")
    disabled = await portal.post_form(
        f"/admin/accounts/{alice}", {"action": "disable", "q": "ali"}, "/admin/accounts"
    )
    assert disabled.status_code == 303 and disabled.headers["location"] == "/admin/accounts?q=ali"
    page = await portal.client.get(disabled.headers["location"])
    assert "alice is disabled." in page.text and "disabled" in row_of(page, "account", "alice")
    async with browser(portal.homing, source="203.0.113.9") as device:
        refused = await device.get(
            "/dvr/update", params={"host": created.name, "password": created.secret}
        )
        assert refused.text.startswith("ERR 0x80008008")
        async with browser(portal.homing) as other:
            login = await other.post(
                "/login",
                data={
                    "csrf_token": csrf_of(await other.get("/login")),
                    "user_id": "alice",
                    "password": PASSWORD,
                },
            )
            assert login.status_code == 401
        await portal.post_form(f"/admin/accounts/{alice}", {"action": "enable"}, "/admin/accounts")
        accepted = await device.get(
            "/dvr/update", params={"host": created.name, "password": created.secret}
        )
        assert accepted.text.startswith("ACT")

    root = await _account_id(portal, "root")
    self_disable = await portal.post_form(
        f"/admin/accounts/{root}", {"action": "disable"}, "/admin/accounts"
    )
    page = await portal.client.get(self_disable.headers["location"])
    assert "You cannot disable your own account." in page.text
    assert "active" in row_of(page, "account", "root")

    plus = await _add_plan(portal)
    moved = await portal.post_form(
        f"/admin/accounts/{alice}", {"action": "plan", "plan_id": str(plus)}, "/admin/accounts"
    )
    page = await portal.client.get(moved.headers["location"])
    assert "alice is on the plus plan now." in page.text
    bad_plan = await portal.post_form(
        f"/admin/accounts/{alice}", {"action": "plan", "plan_id": "x"}, "/admin/accounts"
    )
    page = await portal.client.get(bad_plan.headers["location"])
    assert "Plan not saved" in page.text

    made = await portal.post_form(
        f"/admin/accounts/{alice}", {"action": "make_admin"}, "/admin/accounts"
    )
    page = await portal.client.get(made.headers["location"])
    assert "alice is an operator (admin) now." in page.text
    missing = await portal.post_form(
        "/admin/accounts/9999", {"action": "enable"}, "/admin/accounts"
    )
    assert missing.status_code == 404
    await portal.log_out()
    await portal.log_in("alice")
    assert (await portal.client.get("/admin")).status_code == 200


async def _add_plan(portal: Portal) -> int:
    async def unit(txn: Txn) -> int:
        return int(
            (
                await txn.conn.execute(
                    sa.insert(plans)
                    .values(
                        name="plus", max_hosts=25, max_groups=5, min_interval=0,
                        custom_ttl=True, price_cents=300, currency="EUR", period="month",
                        is_default=False,
                    )
                    .returning(plans.c.id)
                )
            ).scalar_one()
        )  # fmt: skip

    return await portal.homing.db.write(unit)


async def block(portal: Portal, name: str) -> None:
    async def unit(txn: Txn) -> None:
        await txn.conn.execute(
            sa.update(hosts_table)
            .where(hosts_table.c.name == name)
            .values(status="blocked", nochg_count=11, last_result="ABUSE")
        )

    await portal.homing.db.write(unit)


async def test_blocked_hosts_listed_and_unblocked(portal: Portal) -> None:
    await portal.sign_up("alice")
    await portal.log_out()
    created = await hosts.add_host(portal.homing.db, f"cam.{ZONE}", "alice")
    await block(portal, created.name)
    await as_admin(portal)
    page = await portal.client.get("/admin/hosts")
    assert "alice" in row_of(page, "host", created.name)
    host_id = re.search(r'action="/admin/hosts/(\d+)/unblock"', page.text)
    assert host_id is not None
    done = await portal.post_form(f"/admin/hosts/{host_id.group(1)}/unblock", {}, "/admin/hosts")
    assert done.status_code == 303
    page = await portal.client.get("/admin/hosts")
    assert f"{created.name} is unblocked" in page.text and 'id="no-blocked"' in page.text
    again = await portal.post_form(f"/admin/hosts/{host_id.group(1)}/unblock", {}, "/admin/hosts")
    assert again.status_code == 404
    async with browser(portal.homing, source="203.0.113.9") as device:
        answer = await device.get(
            "/nic/update", params={"myip": "192.0.2.3"}, auth=(created.name, created.secret)
        )
    assert answer.text == "good 192.0.2.3\n"
