"""The portal's prefix host set-up: follow a router, see the address move, refusals, stop."""

from __future__ import annotations

import re

from tests.web.portal.conftest import ZONE, Portal, browser, field_error

SECRET_RE = re.compile(r'<code id="secret" class="secret-value">([^<]+)</code>')
ROUTER = f"router.{ZONE}"


async def _hosts(portal: Portal) -> tuple[str, int]:
    """alice's router (its secret) and a second host (its id)."""
    await portal.sign_up("alice")
    created = await portal.create_host("router")
    secret = SECRET_RE.search(created.text)
    assert secret is not None
    await portal.create_host("pc")
    board = await portal.client.get("/dashboard")
    link = rf'href="/hosts/(\d+)" class="host-link"><code class="hostname">pc\.{ZONE}'
    found = re.search(link, board.text)
    assert found is not None
    return secret.group(1), int(found.group(1))


async def test_follow_a_router_and_move_with_its_prefix(portal: Portal) -> None:
    secret, pc = await _hosts(portal)
    page = await portal.client.get(f"/hosts/{pc}")
    assert f'href="/hosts/{pc}/prefix"' in page.text
    form = f"/hosts/{pc}/prefix"
    refused = await portal.post_form(form, {"action": "save", "router": ROUTER, "iid": "1::1"})
    assert refused.status_code == 422
    assert (field_error(refused, "iid") or "").startswith("Prefix host not accepted")
    done = await portal.post_form(
        form, {"action": "save", "router": ROUTER, "iid": "::1234:56ff:fe78:9abc"}
    )
    assert done.status_code == 303
    page = await portal.client.get(done.headers["location"])
    assert f"follows the prefix of {ROUTER}" in page.text
    assert "waiting for the router" in page.text

    async with browser(portal.homing, source="203.0.113.77") as router:
        answer = await router.get(
            "/nic/update",
            params={"hostname": ROUTER, "myip": "192.0.2.9", "ip6lanprefix": "2001:db8:4:5::/64"},
            auth=(ROUTER, secret),
        )
    assert answer.text == "good 192.0.2.9\n"
    page = await portal.client.get(form)
    assert "2001:db8:4:5:1234:56ff:fe78:9abc" in page.text

    stopped = await portal.post_form(form, {"action": "stop"})
    page = await portal.client.get(stopped.headers["location"])
    assert "no longer follows a prefix" in page.text and "follows no prefix" in page.text


async def test_another_users_host_is_not_found(portal: Portal) -> None:
    _, pc = await _hosts(portal)
    await portal.post_form("/logout", {}, "/dashboard")
    await portal.sign_up("bob")
    other = await portal.client.get(f"/hosts/{pc}/prefix")
    assert other.status_code == 404
    refused = await portal.post_form(
        f"/hosts/{pc}/prefix", {"action": "save", "router": ROUTER, "iid": "::1"}, "/dashboard"
    )
    assert refused.status_code == 404
