"""The dashboard on a phone (390 px wide) in Chromium: no wider than the screen, each
host's status in view, a header on one line; a skip link, and a focus ring with at least
3:1 contrast against what it sits on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.web.portal.test_browser import (  # noqa: F401  (served and chromium are fixtures)
    PASSWORD,
    Served,
    _photograph,
    browser_page,
    chromium,
    served,
)

WIDTH = 390
LONG = "a-rather-long-camera-name-in-the-garden"


def _luminance(rgb: list[float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


async def _rgb(page: Any, script: str) -> list[float]:
    text = await page.evaluate(script)
    inside = text[text.index("(") + 1 : text.index(")")]
    return [float(part) for part in inside.split(",")[:3]]


async def test_dashboard_on_a_phone(chromium: Path, served: Served) -> None:  # noqa: F811
    problems: list[str] = []
    async with browser_page(chromium, served, problems) as page:
        await page.set_viewport_size({"width": WIDTH, "height": 844})
        await page.goto("/signup")
        await page.fill("#user_id", "phone")
        await page.fill("#email", "phone@example.org")
        await page.fill("#password", PASSWORD)
        await page.fill("#password_confirm", PASSWORD)
        await page.click("button[value=create]")
        await page.wait_for_url("**/dashboard")
        for label in (LONG, "nas"):
            await page.goto("/hosts/new")
            await page.fill("#label", label)
            await page.click("button[value=create]")
            await page.locator("h1", has_text="is ready").wait_for()
        await page.goto("/dashboard")
        await _photograph(page, "dashboard-phone")

        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= WIDTH, f"the page is {width}px wide on a {WIDTH}px screen"
        rows = page.locator("#hosts tbody tr")
        assert await rows.count() == 2
        for n in range(2):
            badge = rows.nth(n).locator(".status .badge")
            assert await badge.is_visible()
            box = await badge.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, box
        # The header's links sit on one line.
        tops = await page.evaluate(
            "[...document.querySelectorAll('.site-header .nav > *')]"
            ".map(e => Math.round(e.getBoundingClientRect().top + e.offsetHeight / 2))"
        )
        assert max(tops) - min(tops) <= 4, tops

        # The first Tab reaches the skip link, shown, and it leads to the content.
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.className")
        assert focused == "skip-link"
        skip = await page.locator(".skip-link").bounding_box()
        assert skip is not None and skip["y"] >= 0
        ring = await _rgb(page, "getComputedStyle(document.activeElement).outlineColor")
        style = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert style != "none"
        page_bg = await _rgb(page, "getComputedStyle(document.body).backgroundColor")
        header_bg = await _rgb(
            page, "getComputedStyle(document.querySelector('.site-header')).backgroundColor"
        )
        assert contrast(ring, page_bg) >= 3 and contrast(ring, header_bg) >= 3
        await page.keyboard.press("Enter")
        assert await page.evaluate("location.hash") == "#main"
        # A link's ring, on the white surface of the host list.
        await page.locator("#hosts a.manage").first.focus()
        await page.keyboard.press("Shift+Tab")
        await page.keyboard.press("Tab")
        ring = await _rgb(page, "getComputedStyle(document.activeElement).outlineColor")
        assert contrast(ring, [255, 255, 255]) >= 3
    assert problems == []
