"""'Send a test mail' with no mail server set up says the mail went to the log, not that a
mail server accepted it."""

from __future__ import annotations

from homing.service.accounts import find_account
from tests.web.portal.conftest import Portal
from tests.web.portal.test_notifications import result_of


async def test_no_mail_server_is_said(portal: Portal) -> None:
    assert not portal.homing.settings.smtp_host
    await portal.sign_up("alice")
    tested = await portal.post_form("/notifications/test", {"channel": "email"}, "/notifications")
    assert tested.status_code == 200
    said = result_of(tested.text, "email")
    assert said is not None
    assert "accepted" not in said
    account = await portal.homing.db.read(lambda conn: find_account(conn, "alice"))
    assert account is not None
    assert said.startswith("This service has no mail server set up") and account.email in said
