"""Sign-up through the API with signup_verify_email: the account waits for its mailed link."""

from __future__ import annotations

import re

from homing.config import Settings
from homing.service import accounts, verification
from homing.service.mail import Mailer
from tests.mailserver import MailServer
from tests.web.conftest import Site

GOOD = {
    "user_id": "bob",
    "email": "bob@example.org",
    "password": "a long passphrase",
    "password_confirm": "a long passphrase",
}


async def test_an_api_sign_up_is_active_once_its_link_is_followed(
    site: Site, smtp: MailServer
) -> None:
    site.homing.mailer = Mailer.from_settings(Settings(smtp_host=smtp.host, smtp_port=smtp.port))
    site.homing.settings.signup_verify_email = True
    site.homing.settings.public_url = "https://ddns.example.net"
    response = await site.client.post("/api/v1/accounts", json=GOOD)
    assert response.status_code == 201
    db = site.homing.db
    assert await accounts.authenticate(db, "bob", GOOD["password"]) is None  # not yet
    found = re.search(
        r"https://ddns\.example\.net/verify/(\S+)", (await smtp.inbox.next()).get_content()
    )
    assert found
    confirmed = await verification.confirm(db, found.group(1))
    assert confirmed is not None and confirmed.status == "active"
    assert await accounts.authenticate(db, "bob", GOOD["password"]) is not None
    assert await verification.confirm(db, found.group(1)) is None  # used up
