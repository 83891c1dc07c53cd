"""Groups and API tokens in a real Chromium against a real `homing serve`.

The same server and browser set-up as test_browser.py; the pages are photographed into
docs/screenshots/ for the user guide when HOMING_SCREENSHOTS=1.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.portal.test_browser import (  # noqa: F401  (served and chromium are fixtures)
    UI_TIMEOUT,
    ZONE,
    Served,
    _address,
    _log_in,
    _photograph,
    browser_page,
    chromium,
    served,
)


async def _new_host(page: Any, label: str) -> int:
    await page.goto("/hosts/new")
    await page.fill("#label", label)
    await page.click("button[value=create]")
    link = page.locator("a[href^='/hosts/']").last
    href = await link.get_attribute("href")
    found = re.fullmatch(r"/hosts/(\d+)", href or "")
    assert found, href
    return int(found.group(1))


async def test_groups_and_tokens_in_the_browser(chromium: Path, served: Served) -> None:  # noqa: F811
    playwright_api = pytest.importorskip("playwright.async_api")
    expect = playwright_api.expect
    expect.set_options(timeout=UI_TIMEOUT)
    problems: list[str] = []
    group = f"all.{ZONE}"

    async with browser_page(chromium, served, problems) as page:
        await _log_in(page, served, "taken")
        cam = await _new_host(page, "cam")
        await _new_host(page, "nas")

        # A published group with both hosts; its secret is shown once.
        await page.goto("/groups")
        await page.fill("#label", "all")
        await page.select_option("#zone", ZONE)
        for box in await page.locator("input[name=members]").all():
            await box.check()
        await page.click("#group-form button[type=submit]")
        await expect(page.locator("h1")).to_contain_text(f"Group {group} is ready")
        first = (await page.locator("#secret").inner_text()).strip()
        assert len(first) >= 24
        await _photograph(page, "group-created")
        await page.click("text=I have saved the secret")

        # The group's page: members, and a new secret replacing the first.
        await expect(page.locator("#members li")).to_have_count(2)
        await page.click("#new-secret button")
        await expect(page.locator("h1")).to_contain_text(f"New secret for {group}")
        secret = (await page.locator("#secret").inner_text()).strip()
        assert secret != first
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as device:
            old = await device.get(
                "/nic/update", params={"myip": "192.0.2.60"}, auth=(group, first)
            )
            assert old.text.strip() == "badauth"
            new = await device.get(
                "/nic/update", params={"myip": "192.0.2.61"}, auth=(group, secret)
            )
            assert new.text.splitlines() == ["good 192.0.2.61", "good 192.0.2.61"]
        assert await _address(served, f"cam.{ZONE}") == ("NOERROR", ["192.0.2.61"])
        await page.goto("/groups")
        row = page.locator(f'tr[data-group="{group}"]')
        await expect(row).to_contain_text(f"cam.{ZONE}")
        await expect(row).to_contain_text("192.0.2.61")
        assert await _address(served, group) == ("NOERROR", ["192.0.2.61"])
        await _photograph(page, "groups")

        # An update-only token for cam: it sets cam's address and nothing else.
        await page.goto("/tokens")
        await page.fill("#name", "router script")
        for box in await page.locator("input[name=actions]").all():
            if await box.get_attribute("value") == "update":
                await box.check()
            else:
                await box.uncheck()
        await page.check("input[name=scope][value=some]")
        await page.check(f"input[name=host_ids][value='{cam}']")
        await page.click("#token-form button[type=submit]")
        await expect(page.locator("h1")).to_contain_text("router script")
        token = (await page.locator("#secret").inner_text()).strip()
        await _photograph(page, "token-created")
        bearer = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as script:
            done = await script.put(
                f"/api/v1/hosts/{cam}/addresses", json={"ipv4": "192.0.2.62"}, headers=bearer
            )
            assert done.status_code == 200, done.text
            listing = await script.get("/api/v1/hosts", headers=bearer)
            assert listing.status_code == 403
        assert await _address(served, f"cam.{ZONE}") == ("NOERROR", ["192.0.2.62"])
        await page.goto("/tokens")
        token_row = page.locator('tr[data-token="router script"]')
        await expect(token_row).to_contain_text("update")
        await expect(token_row).to_contain_text(f"cam.{ZONE}")
        await expect(token_row).not_to_contain_text("never")  # it was used just now
        await _photograph(page, "tokens")
        await token_row.locator("button:has-text('Revoke')").click()
        await expect(page.locator('tr[data-token="router script"]')).to_have_count(0)
        async with httpx.AsyncClient(base_url=served.url, timeout=10) as script:
            refused = await script.put(
                f"/api/v1/hosts/{cam}/addresses", json={"ipv4": "192.0.2.63"}, headers=bearer
            )
            assert refused.status_code == 401
    assert problems == [], problems
