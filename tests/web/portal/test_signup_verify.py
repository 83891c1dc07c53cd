"""E-mail verification at sign-up (signup_verify_email): the account is inactive until the
link mailed to it through a real SMTP server (aiosmtpd) is followed."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

from homing.config import Settings
from homing.service.mail import Mailer
from homing.store.schema import accounts
from tests.mailserver import MailServer
from tests.web.portal.conftest import Portal, csrf_of

LINK = re.compile(r"(https?://\S+/verify/(\S+))")


@pytest.fixture
async def site(portal: Portal, smtp: MailServer) -> Portal:
    portal.homing.mailer = Mailer.from_settings(
        Settings(smtp_host=smtp.host, smtp_port=smtp.port, mail_from="ops@homing.test")
    )
    portal.homing.settings.signup_verify_email = True
    portal.homing.settings.public_url = "https://ddns.example.net"
    return portal


async def _status(site: Portal, user_id: str) -> str:
    async def query(conn: sa.ext.asyncio.AsyncConnection) -> str:
        found = await conn.scalar(sa.select(accounts.c.status).where(accounts.c.user_id == user_id))
        return str(found)

    return await site.homing.db.read(query)


async def test_the_account_is_active_only_after_the_mailed_link(
    site: Portal, smtp: MailServer
) -> None:
    form = await site.client.get("/signup")
    signed = await site.client.post(
        "/signup",
        data={
            "csrf_token": csrf_of(form),
            "user_id": "ann",
            "email": "ann@example.org",
            "password": "correct horse battery",
            "password_confirm": "correct horse battery",
            "action": "create",
        },
        headers={"host": "evil.example"},  # the link must not follow it
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/login"
    assert "we mailed a link to ann@example.org" in (await site.client.get("/login")).text
    assert await _status(site, "ann") == "unverified"
    assert (await site.client.get("/dashboard")).status_code == 303  # no session was started
    assert (await site.log_in("ann")).status_code == 401

    message = await smtp.inbox.next()
    assert message["To"] == "ann@example.org"
    found = LINK.search(message.get_content())
    assert found, message.get_content()
    url, token = found.groups()
    assert url.startswith("https://ddns.example.net/verify/")
    # The link is not a reset link, nor the other way round.
    assert (await site.client.get(f"/reset/{token}")).status_code == 410
    assert await _status(site, "ann") == "unverified"

    followed = await site.client.get(f"/verify/{token}")
    assert followed.status_code == 303 and followed.headers["location"] == "/login"
    assert await _status(site, "ann") == "active"
    assert (await site.log_in("ann")).headers["location"] == "/dashboard"
    again = await site.client.get(f"/verify/{token}")
    assert again.status_code == 410


async def test_a_made_up_link_activates_nothing(site: Portal, smtp: MailServer) -> None:
    await site.sign_up("ann")
    await smtp.inbox.next()
    assert (await site.client.get("/verify/not-a-token")).status_code == 410
    assert await _status(site, "ann") == "unverified"


async def test_without_public_url_no_mail_and_the_operator_is_told(
    site: Portal, smtp: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    site.homing.settings.public_url = None
    with caplog.at_level(logging.WARNING, logger="homing.service.verification"):
        signed = await site.sign_up("ann")
    assert signed.status_code == 303
    assert "set public_url" in caplog.text
    assert await _status(site, "ann") == "unverified"
    assert smtp.inbox.mails == []


async def test_off_by_default_a_sign_up_logs_in_at_once(portal: Portal) -> None:
    signed = await portal.sign_up("bob")
    assert signed.headers["location"] == "/dashboard"
    assert await _status(portal, "bob") == "active"
