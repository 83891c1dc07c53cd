"""The portal in Debian's headless Chromium (Playwright) against a real `homing serve`.

A user signs up (meeting a taken user ID and a taken email on the way, each shown next
to its field), logs in, creates a host, reads its secret off the page, updates it with a
real dyndns2 request and sees the new address and ACT on the dashboard. The main pages
are photographed into docs/screenshots/ for the user guide.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rcode
import httpx
import pytest
import sqlalchemy as sa

from homing.store.db import Database, Txn
from homing.store.schema import plans
from tests import peers

pytestmark = pytest.mark.peer("chromium")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = "127.0.0.1"
ZONE = "dyn.example.net"
PASSWORD = "correct horse battery staple"
READY_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
UI_TIMEOUT = 10_000  # ms, for each expectation in the browser
EXPECTED_STATUS = "Failed to load resource: the server responded with a status of"
# The screenshots are part of the docs: they are rewritten only when asked, so an ordinary
# test run leaves the working tree clean (HOMING_SCREENSHOTS=1 make test renews them).
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _free_port() -> int:
    """A loopback port free for both TCP and UDP (the server's DNS listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free loopback port")


@dataclass
class Served:
    url: str
    dns_port: int
    stderr: Path


async def _cli(env: dict[str, str], *args: str, stdin: bytes = b"") -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "homing", *args,
        env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), CLI_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, f"homing {' '.join(args)}: {err.decode()}"
    return out.decode()


async def _add_plan(data_dir: Path) -> None:
    """A paid plan beside the default free one (the operator's admin pages come later)."""
    db = Database(f"sqlite+aiosqlite:///{data_dir / 'homing.db'}")

    async def unit(txn: Txn) -> None:
        await txn.conn.execute(
            sa.insert(plans).values(
                name="plus", max_hosts=25, max_groups=5, min_interval=60, custom_ttl=True,
                price_cents=300, currency="EUR", period="month", is_default=False,
            )
        )  # fmt: skip

    try:
        await db.write(unit)
    finally:
        await db.close()


@pytest.fixture
async def served(tmp_path: Path, served_env: dict[str, str]) -> AsyncIterator[Served]:
    """`homing serve` on free loopback ports with a zone, a paid plan and a user "taken"."""
    data_dir = tmp_path / "data"
    dns_port, http_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMING_")}
    env.update(
        HOMING_DATA_DIR=str(data_dir),
        HOMING_DNS_LISTEN=f"{LOOPBACK}:{dns_port}",
        HOMING_HTTP_LISTEN=f"{LOOPBACK}:{http_port}",
        HOMING_PUBLIC_URL=f"http://{LOOPBACK}:{http_port}",  # the base of mailed links
        **served_env,
    )
    await _cli(env, "zone", "add", ZONE)
    await _cli(
        env, "user", "add", "taken", "--email", "taken@example.org", "--password-stdin",
        stdin=PASSWORD.encode() + b"\n",
    )  # fmt: skip
    await _cli(
        env, "user", "add", "root", "--email", "root@example.org", "--password-stdin", "--admin",
        stdin=PASSWORD.encode() + b"\n",
    )  # fmt: skip
    await _add_plan(data_dir)
    stderr = tmp_path / "server.stderr.log"
    with stderr.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "homing", "serve",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=err,
        )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)
        if not ready.startswith(b"READY "):
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            raise AssertionError(f"server did not start: {ready!r}\n{stderr.read_text()}")
        yield Served(f"http://{LOOPBACK}:{http_port}", dns_port, stderr)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _photograph(page: Any, name: str) -> None:
    """NAME.png of the whole page once it has loaded (into docs/ when HOMING_SCREENSHOTS=1)."""
    await page.wait_for_load_state("load")
    folder = DOCS_SCREENSHOTS if os.environ.get("HOMING_SCREENSHOTS") == "1" else _scratch()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True, animations="disabled")
    assert path.stat().st_size > 1000  # a real picture of a page, not an empty file


def _scratch() -> Path:
    folder = Path(tempfile.gettempdir()) / f"homing-screenshots-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    return folder


def _console(problems: list[str], kind: str, text: str) -> None:
    # A 409 or 401 page is an answer the test provokes, not a fault of the page.
    if kind == "error" and not text.startswith(EXPECTED_STATUS):
        problems.append(f"console: {text}")


async def _address(served: Served, name: str) -> tuple[str, list[str]]:
    query = dns.message.make_query(name, "A")
    response = await dns.asyncquery.udp(query, LOOPBACK, port=served.dns_port, timeout=5)
    values = [rdata.to_text() for rrset in response.answer for rdata in rrset]
    return dns.rcode.to_text(response.rcode()), values


async def _launch(playwright: Any, chromium: Path) -> Any:
    return await playwright.chromium.launch(
        executable_path=str(chromium), args=CHROMIUM_ARGS, timeout=60_000
    )


@contextlib.asynccontextmanager
async def browser_page(chromium: Path, served: Served, problems: list[str]) -> AsyncIterator[Any]:
    """A Chromium page on the served site; script errors and CSP reports go to `problems`."""
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as playwright:
        browser = await _launch(playwright, chromium)
        try:
            context = await browser.new_context(
                base_url=served.url, viewport={"width": 1200, "height": 800}
            )
            page = await context.new_page()
            page.set_default_timeout(UI_TIMEOUT)
            page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
            page.on("console", lambda msg: _console(problems, msg.type, msg.text))
            yield page
            await context.close()
        finally:
            with contextlib.suppress(Exception):
                await browser.close()


async def _log_in(page: Any, served: Served, user_id: str) -> None:
    await page.goto("/login")
    await page.fill("#user_id", user_id)
    await page.fill("#password", PASSWORD)
    await page.click("form.card button[type=submit]")
    await page.wait_for_url(f"{served.url}/dashboard")


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium (Playwright's own browser downloads are never used)."""
    if not CHROMIUM.exists():
        peers.missing("chromium (/usr/bin/chromium)")
    return CHROMIUM


async def test_sign_up_log_in_create_host_update_and_see_it(chromium: Path, served: Served) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    expect = playwright_api.expect
    expect.set_options(timeout=UI_TIMEOUT)
    problems: list[str] = []  # script errors and CSP violations the page reports

    async with browser_page(chromium, served, problems) as page:
        # Public pages.
        await page.goto("/")
        await expect(page.locator("h1")).to_have_text("Your devices, always at the same name.")
        await expect(page.locator(".zones")).to_contain_text(ZONE)
        await _photograph(page, "home")
        await page.click("nav >> text=Pricing")
        await expect(page.locator('tr[data-plan="plus"]')).to_contain_text("3.00 EUR / month")
        await expect(page.locator('tr[data-plan="free"]')).to_contain_text("Free")
        await _photograph(page, "pricing")

        # Sign-up: the live check as the user types, then the server's answer per field.
        await page.goto("/signup")
        await page.fill("#user_id", "Taken")
        await expect(page.locator("#user_id-status")).to_contain_text("User ID taken")
        await page.fill("#email", "someone@example.org")
        await page.fill("#password", PASSWORD)
        await page.fill("#password_confirm", PASSWORD)
        await page.click("button[value=create]")
        await expect(page.locator("#user_id-error")).to_contain_text("User ID taken")
        await expect(page.locator("#user_id")).to_have_value("Taken")
        await expect(page.locator("#email")).to_have_value("someone@example.org")
        await expect(page.locator("#password")).to_have_value("")
        await _photograph(page, "signup-error")

        await page.fill("#user_id", "alice")
        await page.click("[data-check=user_id]")  # the button, answered in place
        await expect(page.locator("#user_id-status")).to_have_text("alice is available.")
        await expect(page).to_have_url(f"{served.url}/signup")
        await page.fill("#email", "TAKEN@example.org")
        await page.fill("#password", PASSWORD)
        await page.fill("#password_confirm", PASSWORD)
        await page.click("button[value=create]")
        await expect(page.locator("#email-error")).to_contain_text("Email address already used")
        await expect(page.locator("#user_id-error")).to_have_count(0)

        await page.fill("#email", "alice@example.org")
        await page.fill("#password", PASSWORD)
        await page.fill("#password_confirm", PASSWORD)
        await page.click("button[value=create]")
        await expect(page).to_have_url(f"{served.url}/dashboard")
        await expect(page.locator(".flash")).to_contain_text("Welcome, alice!")

        # Log out and in again.
        await page.click("nav button:has-text('Log out')")
        await expect(page).to_have_url(f"{served.url}/")
        await page.click("nav >> text=Log in")
        await page.fill("#user_id", "alice")
        await page.fill("#password", "not the password")
        await page.click("button:has-text('Log in') >> nth=-1")
        await expect(page.locator("#login-error")).to_have_text("Wrong user ID or password.")
        await page.fill("#password", PASSWORD)
        await page.click("form.card button[type=submit]")
        await expect(page).to_have_url(f"{served.url}/dashboard")

        # Create a host; its secret is on the page once.
        await page.click("#add-host")
        await page.fill("#label", "cam")
        await expect(page.locator("#label-status")).to_have_text(f"cam.{ZONE} is available.")
        await page.click("button[value=create]")
        name = f"cam.{ZONE}"
        await expect(page.locator("h1")).to_have_text(f"{name} is ready")
        secret = (await page.locator("#secret").inner_text()).strip()
        assert len(secret) >= 24
        await expect(page.locator("#snippet-ddclient")).to_contain_text(f"login={name}")
        await expect(page.locator("#snippet-dvr")).to_contain_text(
            f"{served.url}/dvr/update?host={name}&password={secret}"
        )
        await expect(page.locator("button[data-copy=secret]")).to_be_visible()
        await _photograph(page, "host-created")

        await page.goto("/dashboard")
        row = page.locator(f'tr[data-host="{name}"]')
        await expect(row.locator(".badge")).to_have_text("—")
        await expect(row).not_to_contain_text(secret)

        # The device's update: a real HTTP request with the secret from the page.
        async with httpx.AsyncClient(timeout=10) as device:
            answer = await device.get(
                f"{served.url}/nic/update",
                params={"hostname": name, "myip": "192.0.2.44"},
                auth=(name, secret),
                headers={"User-Agent": "homing-browser-test/1.0"},
            )
        assert answer.text == "good 192.0.2.44\n"
        assert await _address(served, name) == ("NOERROR", ["192.0.2.44"])

        await page.reload()
        await expect(row.locator(".badge")).to_have_text("ACT")
        await expect(row.locator(".addresses")).to_have_text("192.0.2.44")
        await expect(row.locator(".via")).to_contain_text("dyndns2")
        await expect(row.locator(".via")).to_contain_text("homing-browser-test/1.0")
        await _photograph(page, "dashboard")

        # The host's own page: an address set by hand, and the history from the journal.
        await row.locator("text=Manage").click()
        await page.fill("#ipv4", "192.0.2.45")
        await page.click("#address-form button[type=submit]")
        await expect(page.locator(".flash")).to_contain_text(f"{name} now points to 192.0.2.45")
        await expect(page.locator("#history tbody tr")).to_have_count(2)
        await expect(page.locator("#history tbody tr").first).to_contain_text("user:alice")
        assert await _address(served, name) == ("NOERROR", ["192.0.2.45"])
        await _photograph(page, "host")
        await page.goto("/dashboard")

        # Deleting the host takes its name out of DNS.
        await row.locator("text=Delete").click()
        await page.click("button.danger")
        await expect(page.locator(".flash")).to_contain_text(f"{name} is deleted")
        assert (await _address(served, name))[0] == "NXDOMAIN"
    assert problems == [], problems


async def test_admin_creates_plan_and_zone_and_users_see_them(
    chromium: Path, served: Served
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    expect = playwright_api.expect
    expect.set_options(timeout=UI_TIMEOUT)
    problems: list[str] = []
    new_zone = "home.example.org"

    async with browser_page(chromium, served, problems) as page:
        # The operator logs in and finds the admin pages in the navigation.
        await _log_in(page, served, "root")
        await page.click("nav >> text=Admin")
        await expect(page).to_have_url(f"{served.url}/admin")
        await expect(page.locator("[data-figure=accounts] .big")).to_have_text("2")
        # homing serve reads its DNS answers each second: a figure, not "n/a".
        await expect(page.locator("[data-figure=dns]")).to_contain_text("since start")
        await _photograph(page, "admin-overview")

        # A new plan with its price.
        await page.click(".tabs >> text=Plans")
        await page.fill("#plan-name", "Gold")
        await page.fill("#plan-price", "9.90")
        await page.fill("#plan-currency", "EUR")
        await page.select_option("#plan-period", "year")
        await page.fill("#plan-hosts", "50")
        await page.fill("#plan-groups", "10")
        await page.fill("#plan-interval", "30")
        await page.check("input[name=custom_ttl]")
        await page.click("#plan-form button[type=submit]")
        await expect(page.locator(".flash")).to_have_text("Plan Gold is created.")
        gold = page.locator('tr[data-plan="Gold"]')
        await expect(gold).to_contain_text("9.90 EUR / year")
        await gold.locator("button:has-text('Make default')").click()
        await expect(page.locator(".flash")).to_have_text("New accounts now get the Gold plan.")
        await _photograph(page, "admin-plans")

        # A new zone, offered to users at once.
        await page.click(".tabs >> text=Zones")
        await page.fill("#zone-name", new_zone)
        await page.fill("#zone-ns", "ns1.example.org ns2.example.org")
        await expect(page.locator("#zone-public")).to_be_checked()
        await page.click("#zone-form button[type=submit]")
        await expect(page.locator(".flash")).to_contain_text(f"Zone {new_zone} is created")
        await expect(page.locator(f'tr[data-zone="{new_zone}"] .offered')).to_have_text("offered")
        await _photograph(page, "admin-zones")
        soa = dns.message.make_query(new_zone, "SOA")
        answer = await dns.asyncquery.udp(soa, LOOPBACK, port=served.dns_port, timeout=5)
        assert answer.rcode() == dns.rcode.NOERROR and answer.answer  # served at once

        await page.click(".tabs >> text=Accounts")
        await page.fill("#q", "taken")
        await page.click("form.search button")
        await expect(page.locator("tr[data-account]")).to_have_count(1)
        await _photograph(page, "admin-accounts")
        await page.click(".tabs >> text=Blocked hosts")
        await expect(page.locator("#no-blocked")).to_be_visible()

        # The public pricing page shows the plan and its price.
        await page.click("nav button:has-text('Log out')")
        await page.click("nav >> text=Pricing")
        row = page.locator('tr[data-plan="Gold"]')
        await expect(row).to_contain_text("9.90 EUR / year")
        await expect(row).to_contain_text("new accounts")

        # A user's create-host page offers the new zone.
        await _log_in(page, served, "taken")
        await expect(page.locator("nav >> text=Admin")).to_have_count(0)
        await page.click("#add-host")
        await expect(page.locator(f'#zone option[value="{new_zone}"]')).to_have_count(1)
        await page.select_option("#zone", new_zone)
        await page.fill("#label", "nas")
        await expect(page.locator("#label-status")).to_have_text(f"nas.{new_zone} is available.")
        await page.click("button[value=create]")
        await expect(page.locator("h1")).to_have_text(f"nas.{new_zone} is ready")
        forbidden = await page.goto("/admin")
        assert forbidden is not None and forbidden.status == 403
    problems = [p for p in problems if "status of 403" not in p]
    assert problems == [], problems
