"""The Notifications page in a real Chromium against a real `homing serve`: a webhook URL
saved (its signing secret shown once), a test sent from the page with the receiver's
answer shown inline, and a real dyndns2 update delivered by the server's own courier."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

import httpx
import pytest

from tests.web.portal.test_browser import (  # noqa: F401  (served and chromium are fixtures)
    UI_TIMEOUT,
    ZONE,
    Served,
    _log_in,
    _photograph,
    browser_page,
    chromium,
    served,
)
from tests.webhooks import webhook_receiver


@pytest.fixture
def served_env() -> dict[str, str]:
    return {"HOMING_WEBHOOK_ALLOW_PRIVATE": "true"}  # the test's webhook receiver is on loopback


async def test_notifications_page_in_the_browser(chromium: Path, served: Served) -> None:  # noqa: F811
    playwright_api = pytest.importorskip("playwright.async_api")
    expect = playwright_api.expect
    expect.set_options(timeout=UI_TIMEOUT)
    problems: list[str] = []
    with webhook_receiver() as receiver:
        async with browser_page(chromium, served, problems) as page:
            await _log_in(page, served, "taken")
            await page.goto("/hosts/new")
            await page.fill("#label", "cam")
            await page.click("button[value=create]")
            secret = (await page.locator("#secret").inner_text()).strip()

            await page.goto("/dashboard")
            await page.click("#notifications-link")
            await expect(page.locator("h1")).to_have_text("Notifications")
            await page.fill("#webhook_url", receiver.url)
            await page.check("input[value='address.changed']")
            await page.check("input[value='host.blocked']")
            await page.click("#save-alerts")
            signing = (await page.locator("#signing-secret #secret").inner_text()).strip()
            assert len(signing) >= 24

            await page.click("#test-webhook")
            result = page.locator("#test-webhook-result")
            await expect(result).to_have_text(
                f"{receiver.url[:-5]} answered HTTP 204 to the test webhook."
            )
            await expect(page.locator("#signing-secret")).to_have_count(0)  # shown once only
            await _photograph(page, "notifications")
            test = await receiver.next()
            assert json.loads(test.body)["event"] == "test"

            # A device's update: the server's courier delivers the notification by itself.
            host = f"cam.{ZONE}"
            async with httpx.AsyncClient(base_url=served.url, timeout=10) as device:
                answer = await device.get(
                    "/nic/update", params={"hostname": host, "myip": "192.0.2.77"},
                    auth=(host, secret),
                )  # fmt: skip
                assert answer.text.strip() == "good 192.0.2.77"
            delivered = await receiver.next(within=30)
            expected = hmac.new(signing.encode(), delivered.body, hashlib.sha256).hexdigest()
            assert delivered.headers["x-homing-signature"] == f"sha256={expected}"
            body = json.loads(delivered.body)
            assert (body["event"], body["host"], body["account"]) == (
                "address.changed",
                host,
                "taken",
            )
            assert body["details"]["new"] == ["192.0.2.77"]
            await page.reload()
            await expect(page.locator("#recent tbody tr").first).to_contain_text("address.changed")
            await expect(page.locator("#recent tbody tr").first).to_contain_text("sent")
    assert [p for p in problems if not re.search("status of (4|5)0", p)] == []
