"""Password reset in a real Chromium against a real `homing serve` mailing through aiosmtpd.

Forgot password -> the mail arrives at the SMTP server -> its link -> a new password ->
log in with it; the old password is refused, the used link and an expired one too. The
pages are photographed into docs/screenshots/ for the user guide when HOMING_SCREENSHOTS=1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from homing.store.db import Database, Txn
from homing.store.schema import password_resets
from tests.mailserver import MailServer
from tests.web.portal.test_browser import (  # noqa: F401  (served and chromium are fixtures)
    PASSWORD,
    UI_TIMEOUT,
    Served,
    _photograph,
    browser_page,
    chromium,
    served,
)

NEW = "a brand new passphrase for taken"
LINK = re.compile(r"http://\S+/reset/\S+")


@pytest.fixture
def served_env(smtp: MailServer) -> dict[str, str]:
    return {
        "HOMING_SMTP_HOST": smtp.host,
        "HOMING_SMTP_PORT": str(smtp.port),
        "HOMING_MAIL_FROM": "ops@homing.test",
    }


async def _expire_links(data_dir: Path) -> None:
    """Moves every live link's expiry into the past, as an hour's wait would."""
    db = Database(f"sqlite+aiosqlite:///{data_dir / 'homing.db'}")

    async def unit(txn: Txn) -> None:
        await txn.conn.execute(sa.update(password_resets).values(expires_at=0.0))

    try:
        await db.write(unit)
    finally:
        await db.close()


async def test_forgot_password_in_the_browser(
    chromium: Path,  # noqa: F811
    served: Served,  # noqa: F811
    smtp: MailServer,
    tmp_path: Path,
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    expect = playwright_api.expect
    expect.set_options(timeout=UI_TIMEOUT)
    problems: list[str] = []

    async def ask_for_link(login: str) -> str:
        await page.goto("/login")
        await page.click("#forgot-link")
        await expect(page.locator("h1")).to_have_text("Forgot your password?")
        await page.fill("#login", login)
        await page.click("#forgot-form button[type=submit]")
        await expect(page.locator("#reset-sent")).to_contain_text("If an account with that")
        message = await smtp.inbox.next()
        assert message["To"] == "taken@example.org"
        found = LINK.search(message.get_content())
        assert found, message.get_content()
        return found.group(0)

    async with browser_page(chromium, served, problems) as page:
        await page.goto("/forgot")
        await _photograph(page, "forgot-password")
        link = await ask_for_link("taken")
        await _photograph(page, "forgot-password-sent")

        await page.goto(link)
        await expect(page.locator("#reset-user")).to_have_text("taken")
        await page.fill("#password", NEW)
        await page.fill("#password_confirm", NEW + " typo")
        await page.click("#reset-form button[type=submit]")
        await expect(page.locator("#password_confirm-error")).to_contain_text("Passwords differ")
        await page.fill("#password", NEW)
        await page.fill("#password_confirm", NEW)
        await _photograph(page, "reset-password")
        await page.click("#reset-form button[type=submit]")
        await expect(page).to_have_url(f"{served.url}/login")
        await expect(page.locator(".flash")).to_contain_text("Your password is changed")

        # The old password is refused, the new one lets in.
        await page.fill("#user_id", "taken")
        await page.fill("#password", PASSWORD)
        await page.click("form.card button[type=submit]")
        await expect(page.locator("#login-error")).to_have_text("Wrong user ID or password.")
        await page.fill("#password", NEW)
        await page.click("form.card button[type=submit]")
        await expect(page).to_have_url(f"{served.url}/dashboard")
        await page.click("nav button:has-text('Log out')")

        # The used link does not work twice.
        await page.goto(link)
        await expect(page.locator("#form-error")).to_contain_text("Link no longer valid")
        await expect(page.locator("#reset-form")).to_have_count(0)
        await _photograph(page, "reset-link-invalid")

        # An expired link is refused as well.
        expiring = await ask_for_link("taken@example.org")
        await _expire_links(tmp_path / "data")
        await page.goto(expiring)
        await expect(page.locator("#form-error")).to_contain_text("Link no longer valid")

    assert problems == []
