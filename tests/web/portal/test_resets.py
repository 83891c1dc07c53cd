"""Forgot password in the portal, with the mail going through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from homing.config import Settings
from homing.service import accounts, tokens
from homing.service.mail import Mailer
from homing.web.portal.sessions import COOKIE
from tests.mailserver import MailServer
from tests.web.portal.conftest import PASSWORD, Portal, browser, csrf_of, field_error

NEW = "a brand new passphrase"
LINK = re.compile(r"(https?://\S+/reset/(\S+))")
SAME_ANSWER = "If an account with that user ID or email exists"


@pytest.fixture
async def site(portal: Portal, smtp: MailServer) -> Portal:
    portal.homing.mailer = Mailer.from_settings(
        Settings(smtp_host=smtp.host, smtp_port=smtp.port, mail_from="ops@homing.test")
    )
    portal.homing.settings.public_url = "http://homing.test"  # links are built from it alone
    await portal.sign_up("ann", "ann@example.org")
    await portal.log_out()
    return portal


async def _ask(portal: Portal, login: str) -> httpx.Response:
    return await portal.post_form("/forgot", {"login": login})


async def _link(smtp: MailServer) -> tuple[str, str]:
    message = await smtp.inbox.next()
    found = LINK.search(message.get_content())
    assert found, message.get_content()
    return found.group(1), found.group(2)


async def test_the_answer_is_the_same_for_known_and_unknown_accounts(
    site: Portal, smtp: MailServer
) -> None:
    login_page = await site.client.get("/login")
    assert 'href="/forgot"' in login_page.text
    unknown = await _ask(site, "nobody")
    known = await _ask(site, "ann")
    by_email = await _ask(site, "ANN@example.org")
    for page in (unknown, known, by_email):
        assert page.status_code == 200 and SAME_ANSWER in page.text
    strip = re.compile(r'name="csrf_token" value="[^"]+"')
    assert strip.sub("", unknown.text) == strip.sub("", known.text)
    first, second = await smtp.inbox.next(), await smtp.inbox.next()
    assert first["To"] == second["To"] == "ann@example.org"
    assert first["Subject"] == "Reset your homing.test password"
    assert len(smtp.inbox.mails) == 2  # none for "nobody"


async def test_follow_the_link_set_a_password_and_log_in_with_it(
    site: Portal, smtp: MailServer
) -> None:
    await _ask(site, "ann")
    url, token = await _link(smtp)
    assert url.startswith("http://homing.test/reset/")
    form = await site.client.get(f"/reset/{token}")
    assert form.status_code == 200 and 'id="reset-user">ann<' in form.text
    mismatch = await site.client.post(
        f"/reset/{token}",
        data={"csrf_token": csrf_of(form), "password": NEW, "password_confirm": "other words"},
    )
    assert mismatch.status_code == 422
    assert "Passwords differ" in (field_error(mismatch, "password_confirm") or "")
    done = await site.client.post(
        f"/reset/{token}",
        data={"csrf_token": csrf_of(mismatch), "password": NEW, "password_confirm": NEW},
    )
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert (await site.log_in("ann")).status_code == 401  # the old password
    assert (await site.log_in("ann", NEW)).headers["location"] == "/dashboard"
    await site.log_out()
    again = await site.client.get(f"/reset/{token}")
    assert again.status_code == 410 and "Link no longer valid" in again.text
    reused = await site.client.post(
        f"/reset/{token}",
        data={
            "csrf_token": csrf_of(again),
            "password": "third passphrase",
            "password_confirm": "third passphrase",
        },
    )
    assert reused.status_code == 410
    assert (await site.log_in("ann", NEW)).status_code == 303


async def test_a_reset_ends_other_sessions_and_clears_the_login_lock(
    site: Portal, smtp: MailServer
) -> None:
    async with browser(site.homing, source="203.0.113.5") as other_client:
        other = Portal(site.homing, other_client)
        await other.log_in("ann")
        assert (await other.client.get("/dashboard")).status_code == 200
        for _ in range(5):  # locks ann from this address
            await site.log_in("ann", "wrong password here")
        assert (await site.log_in("ann")).status_code == 429
        await _ask(site, "ann")
        _, token = await _link(smtp)
        form = await site.client.get(f"/reset/{token}")
        await site.client.post(
            f"/reset/{token}",
            data={"csrf_token": csrf_of(form), "password": NEW, "password_confirm": NEW},
        )
        ended = await other.client.get("/dashboard")
        assert ended.status_code == 303 and ended.headers["location"] == "/login"
    assert (await site.log_in("ann", NEW)).headers["location"] == "/dashboard"


async def test_forms_need_their_csrf_token(site: Portal, smtp: MailServer) -> None:
    await site.client.get("/forgot")
    refused = await site.client.post("/forgot", data={"login": "ann"})
    assert refused.status_code == 403
    await _ask(site, "ann")
    _, token = await _link(smtp)
    await site.client.get(f"/reset/{token}")
    forged = await site.client.post(
        f"/reset/{token}", data={"password": NEW, "password_confirm": NEW}
    )
    assert forged.status_code == 403
    assert (await site.log_in("ann")).status_code == 303  # unchanged


async def test_an_empty_request_is_refused_and_many_are_throttled(site: Portal) -> None:
    empty = await _ask(site, "  ")
    assert empty.status_code == 422 and field_error(empty, "login")
    for n in range(10):
        assert (await _ask(site, f"nobody{n}")).status_code == 200
    throttled = await _ask(site, "ann")
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert "Too many reset requests" in throttled.text


async def test_the_link_uses_public_url_not_the_host_header(site: Portal, smtp: MailServer) -> None:
    site.homing.settings.public_url = "https://ddns.example.net/"
    form = await site.client.get("/forgot")
    await site.client.post(
        "/forgot",
        data={"csrf_token": csrf_of(form), "login": "ann"},
        headers={"host": "evil.example"},
    )
    url, _ = await _link(smtp)
    assert url.startswith("https://ddns.example.net/reset/")


async def test_without_public_url_no_link_is_mailed_whatever_the_host_header(
    site: Portal, smtp: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    site.homing.settings.public_url = None
    form = await site.client.get("/forgot")
    with caplog.at_level(logging.WARNING, logger="homing.service.resets"):
        page = await site.client.post(
            "/forgot",
            data={"csrf_token": csrf_of(form), "login": "ann"},
            headers={"host": "evil.example"},
        )
    assert page.status_code == 200 and SAME_ANSWER in page.text  # the asker learns nothing
    assert "set public_url" in caplog.text
    # Ask again with public_url set: the only mail that arrives is this one.
    site.homing.settings.public_url = "https://ddns.example.net"
    await _ask(site, "ann")
    url, _ = await _link(smtp)
    assert url.startswith("https://ddns.example.net/reset/")
    assert len(smtp.inbox.mails) == 1


async def _reset(site: Portal, smtp: MailServer, **extra: str) -> None:
    await _ask(site, "ann")
    _, token = await _link(smtp)
    form = await site.client.get(f"/reset/{token}")
    assert 'name="revoke_tokens" checked' in form.text  # ticked by default
    done = await site.client.post(
        f"/reset/{token}",
        data={"csrf_token": csrf_of(form), "password": NEW, "password_confirm": NEW, **extra},
    )
    assert done.status_code == 303


async def test_a_session_cookie_from_before_the_reset_is_refused(
    site: Portal, smtp: MailServer
) -> None:
    await site.log_in("ann")
    stolen = site.client.cookies.get(COOKIE)
    assert stolen and (await site.client.get("/dashboard")).status_code == 200
    await site.log_out()
    await _reset(site, smtp)
    async with browser(site.homing, source="203.0.113.9") as thief:
        thief.cookies.set(COOKIE, stolen)
        refused = await thief.get("/dashboard")
        assert refused.status_code == 303 and refused.headers["location"] == "/login"


async def test_a_reset_revokes_the_api_tokens_when_ticked(site: Portal, smtp: MailServer) -> None:
    db = site.homing.db
    account = await accounts.authenticate(db, "ann", PASSWORD)
    assert account is not None
    created = await tokens.create_token(db, account, "backup", ["read"])
    assert await tokens.authenticate(db, created.secret) is not None
    await _reset(site, smtp, revoke_tokens="on")
    assert await tokens.authenticate(db, created.secret) is None
    assert await tokens.list_tokens(db, account) == []


async def test_a_reset_keeps_the_api_tokens_when_unticked(site: Portal, smtp: MailServer) -> None:
    db = site.homing.db
    account = await accounts.authenticate(db, "ann", PASSWORD)
    assert account is not None
    created = await tokens.create_token(db, account, "backup", ["read"])
    await _reset(site, smtp)  # the box not sent: unticked
    assert await tokens.authenticate(db, created.secret) is not None


async def test_the_admin_overview_says_when_public_url_is_missing(portal: Portal) -> None:
    await accounts.create_account(
        portal.homing.db, "root", "root@example.org", PASSWORD, role="admin"
    )
    await portal.log_in("root")
    assert 'id="no-public-url"' in (await portal.client.get("/admin")).text
    portal.homing.settings.public_url = "https://ddns.example.net"
    assert 'id="no-public-url"' not in (await portal.client.get("/admin")).text
