"""The host-ready page offers the router URLs of docs/clients.md, and they update the host."""

from __future__ import annotations

import html
import re

from homing.web.portal.snippets import router_settings
from tests.e2e.test_routers import FRITZBOX_NSUPDATE, ROUTER_URLS
from tests.web.portal.conftest import ZONE, Portal, browser

SECRET_RE = re.compile(r'<code id="secret" class="secret-value">([^<]+)</code>')


def test_every_router_snippet_carries_a_documented_url() -> None:
    texts = "\n".join(
        s.text
        for host in ("router.dyn.example.net", "nas.dyn.example.net")
        for s in router_settings("https://ddns.example.net", host, "SECRET")
    )
    for url in ROUTER_URLS:
        if url is not FRITZBOX_NSUPDATE:  # the page shows one FRITZ!Box form
            assert url in texts, url


async def test_host_ready_page_lists_router_urls_that_work(portal: Portal) -> None:
    await portal.sign_up("alice")
    created = await portal.create_host("Home")
    secret = SECRET_RE.search(created.text)
    assert secret is not None
    name = f"home.{ZONE}"
    page = html.unescape(created.text)
    assert 'id="routers"' in created.text
    for key in ["fritzbox", "openwrt", "pfsense", "mikrotik", "unifi", "nas", "router"]:
        assert f'id="snippet-{key}"' in created.text, key
    fritz = re.search(r"Update URL:  (\S+)", page)
    assert fritz is not None
    url = fritz.group(1)
    assert url.startswith("http://homing.test/nic/update?hostname=<domain>&myipv4=<ipaddr>")
    # Filled as the FRITZ!Box fills it (no IPv6 on this line): the A is set.
    filled = (
        url.replace("http://homing.test", "")
        .replace("<domain>", name)
        .replace("<username>", name)
        .replace("<pass>", secret.group(1))
        .replace("<ipaddr>", "192.0.2.90")
        .replace("<ip6addr>", "")
        .replace("<ip6lanprefix>", "")
    )
    async with browser(portal.homing, source="203.0.113.77") as device:
        answer = await device.get(filled)
    assert answer.text == "good 192.0.2.90\n"
