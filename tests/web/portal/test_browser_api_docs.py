"""The API documentation page renders in Chromium with every request to anything but the
server refused: Swagger UI comes from the package, not a CDN."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.web.portal.test_browser import (  # noqa: F401  (served and chromium are fixtures)
    Served,
    browser_page,
    chromium,
    served,
)


async def test_api_docs_render_offline(chromium: Path, served: Served) -> None:  # noqa: F811
    problems: list[str] = []
    elsewhere: list[str] = []
    ours = urlsplit(served.url).netloc

    async def only_the_server(route: Any) -> None:
        if urlsplit(route.request.url).netloc == ours:
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    async with browser_page(chromium, served, problems) as page:
        await page.route("**/*", only_the_server)
        await page.goto("/api/v1/docs")
        # Swagger UI draws the title and one block per operation from the schema.
        await page.locator(".swagger-ui .info .title").wait_for()
        assert "homing API" in await page.locator(".swagger-ui .info .title").inner_text()
        assert await page.locator(".opblock").count() >= 10
        assert await page.locator(".opblock-summary-path", has_text="/hosts").count() >= 1
    assert elsewhere == []
    assert problems == []
