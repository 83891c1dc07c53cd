"""Portal pages without a browser: sign-up errors, dashboard, host creation and deletion."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.service.context import Homing
from homing.store.db import Database, Txn
from homing.store.schema import hosts, journal, plans, rrsets
from tests.web.portal.conftest import (
    PASSWORD,
    ZONE,
    Portal,
    browser,
    csrf_of,
    field_error,
    input_value,
    settings_for,
)

SECRET_RE = re.compile(r'<code id="secret" class="secret-value">([^<]+)</code>')


async def test_public_pages(portal: Portal) -> None:
    home = await portal.client.get("/")
    assert "Your devices, always at the same name." in home.text
    assert f"<code>{ZONE}</code>" in home.text
    pricing = await portal.client.get("/pricing")
    row = re.search(r'<tr data-plan="free">(.*?)</tr>', pricing.text, re.S)
    assert row is not None
    assert "Free" in row.group(1) and ">5<" in row.group(1) and "new accounts" in row.group(1)


async def test_pricing_lists_every_plan_with_price(portal: Portal) -> None:
    async def add(txn: Txn) -> None:
        await txn.conn.execute(
            sa.insert(plans).values(
                name="pro", max_hosts=50, max_groups=10, min_interval=300, custom_ttl=True,
                price_cents=450, currency="USD", period="year", is_default=False,
            )
        )  # fmt: skip

    await portal.homing.db.write(add)
    page = await portal.client.get("/pricing")
    row = re.search(r'<tr data-plan="pro">(.*?)</tr>', page.text, re.S)
    assert row is not None
    cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(1))).strip()
    assert cells == "pro 50 10 5 min yes 4.50 USD / year"


async def test_sign_up_logs_in(portal: Portal) -> None:
    response = await portal.sign_up("alice")
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    board = await portal.client.get("/dashboard")
    assert "Welcome, alice!" in board.text
    assert "No hosts yet" in board.text
    assert "Log out" in board.text


async def test_sign_up_taken_id_and_email(portal: Portal) -> None:
    await portal.sign_up("alice", "alice@example.org")
    await portal.log_out()
    taken_id = await portal.sign_up("ALICE", "other@example.org")
    assert taken_id.status_code == 409
    assert field_error(
        taken_id,
        "user_id",
    ).startswith("User ID taken")  # type: ignore[union-attr]
    assert field_error(taken_id, "email") is None
    assert input_value(taken_id, "user_id") == "ALICE"
    assert input_value(taken_id, "email") == "other@example.org"
    assert PASSWORD not in taken_id.text
    taken_email = await portal.sign_up("alice2", "Alice@Example.org")
    assert taken_email.status_code == 409
    message = field_error(taken_email, "email")
    assert message is not None and message.startswith("Email address already used")
    assert "exists already" in message
    assert field_error(taken_email, "user_id") is None


async def test_sign_up_validation_messages(portal: Portal) -> None:
    cases = [
        ({"user_id": "a b"}, "user_id", "User ID not allowed"),
        ({"email": "not-an-email"}, "email", "Not an email address"),
        ({"password": "short", "password_confirm": "short"}, "password", "Password too weak"),
        ({"password_confirm": "something else"}, "password_confirm", "Passwords differ"),
    ]
    for override, field, label in cases:
        data = {
            "user_id": "bob",
            "email": "bob@example.org",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "action": "create",
            **override,
        }
        page = await portal.post_form("/signup", data)
        assert page.status_code == 422, override
        message = field_error(page, field)
        assert message is not None and message.startswith(label), (override, message)
        assert 'name="password" type="password" required' in page.text
        assert input_value(page, "password") == ""  # passwords are never sent back


async def test_check_availability_button_without_javascript(portal: Portal) -> None:
    await portal.sign_up("alice")
    await portal.log_out()
    free = await portal.post_form("/signup", {"user_id": "zed", "email": "", "action": "check"})
    assert free.status_code == 200
    assert "zed is available." in free.text
    taken = await portal.post_form("/signup", {"user_id": "Alice", "action": "check"})
    assert (field_error(taken, "user_id") or "").startswith("User ID taken")
    invalid = await portal.post_form("/signup", {"user_id": "x", "action": "check"})
    assert (field_error(invalid, "user_id") or "").startswith("User ID not allowed")


async def test_store_down_keeps_what_the_user_typed(tmp_path: Path) -> None:
    # Nothing listens on port 1: every store call fails the way a dead database does.
    dead = Database("postgresql+asyncpg://postgres@127.0.0.1:1/test")
    homing = Homing(settings_for(tmp_path), dead)
    try:
        async with browser(homing) as client:
            form = await client.get("/signup")
            assert form.status_code == 200  # the form itself needs no store
            page = await client.post(
                "/signup",
                data={
                    "csrf_token": csrf_of(form),
                    "user_id": "bob",
                    "email": "bob@example.org",
                    "password": PASSWORD,
                    "password_confirm": PASSWORD,
                    "action": "create",
                },
            )
            assert page.status_code == 503
            assert 'id="form-error" data-code="INTERNAL_ERROR"' in page.text
            assert "Nothing saved" in page.text and "nothing was saved" in page.text
            assert input_value(page, "user_id") == "bob"
            assert input_value(page, "email") == "bob@example.org"
            assert PASSWORD not in page.text
            login = await client.post(
                "/login", data={"csrf_token": csrf_of(page), "user_id": "bob", "password": "x"}
            )
            assert login.status_code == 503 and "Nothing saved" in login.text
            home = await client.get("/")
            assert home.status_code == 503 and "Internal error" in home.text
    finally:
        await dead.close()


async def test_dashboard_needs_login(portal: Portal) -> None:
    for path in ["/dashboard", "/hosts/new", "/hosts/1/delete"]:
        response = await portal.client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login", path
    check = await portal.client.get("/hosts/availability", params={"label": "a", "zone": ZONE})
    assert check.status_code == 401


async def _updater(portal: Portal) -> httpx.AsyncClient:
    return browser(portal.homing, source="203.0.113.77")


async def test_create_host_update_and_see_status(portal: Portal) -> None:
    await portal.sign_up("alice")
    created = await portal.create_host("Home")
    assert created.status_code == 201
    secret = SECRET_RE.search(created.text)
    assert secret is not None
    name = f"home.{ZONE}"
    for key in ["ddclient", "inadyn", "router", "dvr", "curl", "homing-client"]:
        assert f'id="snippet-{key}"' in created.text
    assert f"login={name}" in created.text
    assert f"/dvr/update?host={name}&amp;password={secret.group(1)}" in created.text
    assert "http://homing.test/checkip" in created.text
    assert created.headers["cache-control"] == "no-store"

    board = await portal.client.get("/dashboard")
    row = re.search(rf'<tr data-host="{re.escape(name)}">(.*?)</tr>', board.text, re.S)
    assert row is not None and "waiting for the first update" in row.group(1)
    assert secret.group(1) not in board.text  # shown once, never again

    async with await _updater(portal) as device:
        answer = await device.get(
            "/nic/update",
            params={"hostname": name, "myip": "192.0.2.10,2001:db8::10"},
            auth=(name, secret.group(1)),
            headers={"User-Agent": "test-router/1.0"},
        )
    assert answer.text == "good 192.0.2.10,2001:db8::10\n"
    board = await portal.client.get("/dashboard")
    row = re.search(rf'<tr data-host="{re.escape(name)}">(.*?)</tr>', board.text, re.S)
    assert row is not None
    cells = row.group(1)
    assert '<span class="badge ok">ACT</span>' in cells
    assert '<code class="address">192.0.2.10</code>' in cells
    assert '<code class="address">2001:db8::10</code>' in cells
    assert "dyndns2" in cells and "test-router/1.0" in cells and "203.0.113.77" in cells


async def test_error_status_like_a_dvr(portal: Portal) -> None:
    async def hourly(txn: Txn) -> None:
        await txn.conn.execute(sa.update(plans).values(min_interval=3600))

    await portal.homing.db.write(hourly)
    await portal.sign_up("alice")
    secret = SECRET_RE.search((await portal.create_host("cam")).text)
    assert secret is not None
    name = f"cam.{ZONE}"
    async with await _updater(portal) as device:
        for address, answer in [("192.0.2.1", "ACT"), ("192.0.2.2", "ERR 0x80008007")]:
            dvr = await device.get(
                "/dvr/update", params={"host": name, "password": secret.group(1), "ip": address}
            )
            assert dvr.text == answer + "\n"
    board = await portal.client.get("/dashboard")
    assert '<span class="badge err">ERR 0x80008007</span>' in board.text
    assert "update sooner than the plan&#39;s minimum interval" in board.text
    assert "192.0.2.1" in board.text and "via <strong>dvr</strong>" in board.text

    async def block(txn: Txn) -> None:
        await txn.conn.execute(sa.update(hosts).values(status="blocked"))

    await portal.homing.db.write(block)
    board = await portal.client.get("/dashboard")
    assert '<span class="badge err">ERR 0x80008004</span>' in board.text
    assert "host blocked for abuse" in board.text


async def test_host_name_checks(portal: Portal) -> None:
    await portal.sign_up("alice")
    await portal.create_host("home")
    duplicate = await portal.create_host("HOME")
    assert duplicate.status_code == 409
    assert (field_error(duplicate, "label") or "").startswith("Host name taken")
    assert input_value(duplicate, "label") == "HOME"
    bad = "Host name not allowed"
    for label, code in [("ns1", "Host name reserved"), ("a.b", bad), ("-x", bad), ("", bad)]:
        page = await portal.create_host(label)
        assert (field_error(page, "label") or "").startswith(code), (label, page.text[:200])
    other_zone = await portal.create_host("fine", zone="example.com")
    assert (field_error(other_zone, "zone") or "").startswith("Zone not accepted")

    check = await portal.client.get("/hosts/availability", params={"label": "home", "zone": ZONE})
    assert check.json() == {
        "name": f"home.{ZONE}",
        "available": False,
        "message": f"Host name taken: home.{ZONE} is already taken.",
    }
    free = await portal.client.get("/hosts/availability", params={"label": "cam2", "zone": ZONE})
    assert free.json()["available"] is True
    bad = await portal.client.get("/hosts/availability", params={"label": "a_b", "zone": ZONE})
    assert bad.json()["code"] == "HOST_LABEL_INVALID"
    button = await portal.post_form(
        "/hosts/new", {"label": "cam2", "zone": ZONE, "action": "check"}
    )
    assert f"cam2.{ZONE} is available." in button.text


async def test_plan_host_limit(portal: Portal) -> None:
    async def one_host(txn: Txn) -> None:
        await txn.conn.execute(sa.update(plans).values(max_hosts=1))

    await portal.homing.db.write(one_host)
    assert "1 host · Free" in (await portal.client.get("/")).text
    await portal.sign_up("alice")
    assert (await portal.create_host("first")).status_code == 201
    board = await portal.client.get("/dashboard")
    assert "1 of 1 hosts" in board.text and 'id="add-host"' not in board.text
    form = await portal.client.get("/hosts/new")
    assert "allows 1 hosts" in form.text
    refused = await portal.client.post(
        "/hosts/new",
        data={"csrf_token": csrf_of(board), "label": "second", "zone": ZONE, "action": "create"},
    )
    assert refused.status_code == 422
    assert (
        "<strong>Host limit reached</strong> Your plan&#39;s host limit is reached" in refused.text
    )


async def test_delete_host_through_the_journal(portal: Portal) -> None:
    await portal.sign_up("alice")
    secret = SECRET_RE.search((await portal.create_host("gone")).text)
    assert secret is not None
    name = f"gone.{ZONE}"
    async with await _updater(portal) as device:
        await device.get("/nic/update", params={"myip": "192.0.2.5"}, auth=(name, secret.group(1)))
    board = await portal.client.get("/dashboard")
    host_id = re.search(r'href="/hosts/(\d+)/delete"', board.text)
    assert host_id is not None
    confirm = await portal.client.get(f"/hosts/{host_id.group(1)}/delete")
    assert "192.0.2.5" in confirm.text
    done = await portal.client.post(
        f"/hosts/{host_id.group(1)}/delete", data={"csrf_token": csrf_of(confirm)}
    )
    assert done.status_code == 303
    board = await portal.client.get("/dashboard")
    assert f"{name} is deleted" in board.text and "No hosts yet" in board.text

    async def read(conn: AsyncConnection) -> tuple[int, list[tuple[str, str, str]]]:
        left = await conn.scalar(
            sa.select(sa.func.count()).select_from(rrsets).where(rrsets.c.name == name)
        )
        entries = await conn.execute(
            sa.select(journal.c.rtype, journal.c.new, journal.c.via)
            .where(journal.c.name == name)
            .order_by(journal.c.id)
        )
        return left or 0, [(e.rtype, e.new, e.via) for e in entries]

    left, entries = await portal.homing.db.read(read)
    assert left == 0
    assert entries == [("A", "192.0.2.5", "dyndns2"), ("A", "", "web")]
    async with await _updater(portal) as device:
        after = await device.get("/nic/update", auth=(name, secret.group(1)))
    assert after.text.strip() in ("nohost", "badauth")


async def test_other_users_hosts_are_invisible(portal: Portal, tmp_path: Path) -> None:
    await portal.sign_up("alice")
    await portal.create_host("mine")
    board = await portal.client.get("/dashboard")
    host_id = re.search(r'href="/hosts/(\d+)/delete"', board.text)
    assert host_id is not None
    async with browser(portal.homing) as mallory_client:
        mallory = Portal(portal.homing, mallory_client)
        await mallory.sign_up("mallory")
        page = await mallory.client.get(f"/hosts/{host_id.group(1)}/delete")
        assert page.status_code == 404
        post = await mallory.client.post(
            f"/hosts/{host_id.group(1)}/delete", data={"csrf_token": csrf_of(page)}
        )
        assert post.status_code == 404
        assert f"mine.{ZONE}" not in (await mallory.client.get("/dashboard")).text
    assert f"mine.{ZONE}" in (await portal.client.get("/dashboard")).text


async def test_a_reserved_name_is_said_to_be_reserved(portal: Portal) -> None:
    await portal.sign_up("alice")
    page = await portal.create_host("www")
    assert page.status_code == 409
    shown = field_error(page, "label") or ""
    assert shown.startswith("Host name reserved") and "reserved for the service" in shown, shown
    assert "duplicate" not in shown
    check = await portal.client.get("/hosts/availability", params={"label": "www", "zone": ZONE})
    assert check.json()["code"] == "HOST_NAME_RESERVED"
