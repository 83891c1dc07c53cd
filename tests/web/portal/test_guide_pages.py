"""Each page the user and admin guides show carries the buttons, links and columns the
guides tell a reader to use: a page that loses one fails here, before a screenshot or a
guide goes stale."""

from __future__ import annotations

import html
import re

from tests.web.portal.conftest import ZONE, Portal
from tests.web.portal.test_admin import as_admin


def words(page_text: str) -> str:
    """The page as a reader sees it: tags out, entities decoded, spaces collapsed."""
    text = re.sub(r"<[^>]+>", " ", page_text)
    return re.sub(r"\s+", " ", html.unescape(text))


async def shows(portal: Portal, path: str, *names: str) -> None:
    page = await portal.client.get(path)
    assert page.status_code == 200, path
    seen = words(page.text)
    missing = [name for name in names if name not in seen]
    assert missing == [], f"{path} lacks what the guide names: {missing}"


async def test_the_user_guide_pages(portal: Portal) -> None:
    await shows(portal, "/", "Pricing", "Log in", "Sign up")
    await shows(portal, "/signup", "Check availability")
    await shows(portal, "/login", "Forgot password?")
    await shows(portal, "/forgot", "Send")
    await portal.sign_up("alice")
    created = await portal.create_host("cam")
    seen = words(created.text)
    for kind in ("ddclient", "inadyn", "curl"):
        assert kind in seen, kind
    host = re.search(r'href="/hosts/(\d+)"', created.text)
    assert host is not None
    await shows(
        portal, "/dashboard", "Add a host", "Groups", "API tokens", "Notifications",
        "Address", "Status", "Last update", "Manage", "Delete",
    )  # fmt: skip
    await shows(portal, "/hosts/new", "Check availability")
    await shows(
        portal, f"/hosts/{host.group(1)}", "Set address", "Make a new secret", "Update history"
    )
    await shows(portal, "/groups", "Create group")
    await shows(portal, "/tokens", "API tokens")
    await shows(portal, "/notifications", "Send a test")


async def test_the_admin_guide_pages(portal: Portal) -> None:
    await as_admin(portal)
    await shows(portal, "/admin", "Overview")
    await shows(portal, "/admin/zones", ZONE, "Stop offering", "Options", "Create zone")
    await shows(portal, "/admin/plans", "Plans")
    await shows(portal, "/admin/accounts", "Accounts")
    await shows(portal, "/admin/hosts", "Blocked")
    await shows(portal, "/admin/inactivity", "Save policy", "Run the policy now")
