"""Password reset through the REST API, the mail going through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re

import pytest

from homing.config import Settings
from homing.service import accounts
from homing.service.mail import Mailer
from tests.mailserver import MailServer
from tests.web.conftest import PASSWORD, Site

NEW = "a brand new passphrase"
RESET = "/api/v1/accounts/password-reset"


@pytest.fixture
def mailing(site: Site, smtp: MailServer) -> Site:
    site.homing.mailer = Mailer.from_settings(Settings(smtp_host=smtp.host, smtp_port=smtp.port))
    site.homing.settings.public_url = "http://homing.test"  # the only base of mailed links
    return site


async def _token(smtp: MailServer) -> str:
    found = re.search(r"http://homing\.test/reset/(\S+)", (await smtp.inbox.next()).get_content())
    assert found
    return found.group(1)


async def test_reset_through_the_api(mailing: Site, smtp: MailServer) -> None:
    unknown = await mailing.client.post(RESET, json={"login": "nobody"})
    known = await mailing.client.post(RESET, json={"login": "alice@example.org"})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    token = await _token(smtp)
    weak = await mailing.client.post(
        f"{RESET}/confirm", json={"token": token, "password": "short", "password_confirm": "short"}
    )
    assert (weak.status_code, weak.json()["code"]) == (422, "PASSWORD_WEAK")
    done = await mailing.client.post(
        f"{RESET}/confirm", json={"token": token, "password": NEW, "password_confirm": NEW}
    )
    assert done.status_code == 204
    assert await accounts.authenticate(mailing.homing.db, "alice", NEW) is not None
    assert await accounts.authenticate(mailing.homing.db, "alice", PASSWORD) is None
    again = await mailing.client.post(
        f"{RESET}/confirm", json={"token": token, "password": NEW, "password_confirm": NEW}
    )
    assert (again.status_code, again.json()["code"]) == (410, "RESET_LINK_INVALID")
    assert again.json()["field"] is None
    assert len(smtp.inbox.mails) == 1


async def test_bad_requests_and_the_throttle(mailing: Site) -> None:
    empty = await mailing.client.post(RESET, json={"login": ""})
    assert (empty.status_code, empty.json()["code"]) == (422, "INVALID_REQUEST")
    for n in range(10):  # the empty one above never reached the count
        assert (await mailing.client.post(RESET, json={"login": f"x{n}"})).status_code == 202
    throttled = await mailing.client.post(RESET, json={"login": "alice"})
    assert (throttled.status_code, throttled.json()["code"]) == (429, "RESET_THROTTLED")
    assert int(throttled.headers["retry-after"]) > 0
