"""The portal in process over a real store: a browser-like client that keeps cookies."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from homing.config import Settings
from homing.service import zones
from homing.service.context import Homing
from homing.store.db import Database
from homing.web.app import create_app

ZONE = "dyn.example.net"
PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser(
    homing: Homing, source: str = "198.51.100.7", base: str = "http://homing.test"
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(homing), client=(source, 50000))
    return httpx.AsyncClient(transport=transport, base_url=base)


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_RE.search(page.text)
    assert found, f"no CSRF token on {page.url}"
    return found.group(1)


def field_error(page: httpx.Response, field: str) -> str | None:
    """The text of the error shown next to `field`, tags stripped."""
    found = re.search(rf'<p class="field-error" id="{field}-error"[^>]*>(.*?)</p>', page.text, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else None


def input_value(page: httpx.Response, field: str) -> str | None:
    tag = re.search(rf'<input id="{field}"[^>]*>', page.text, re.S)
    if tag is None:
        return None
    value = re.search(r'\svalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


@dataclass
class Portal:
    homing: Homing
    client: httpx.AsyncClient

    async def post_form(
        self, path: str, data: dict[str, str], page: str | None = None
    ) -> httpx.Response:
        """GET the form page (for its CSRF token), then POST the form as a browser would."""
        form = await self.client.get(page or path)
        return await self.client.post(path, data={"csrf_token": csrf_of(form), **data})

    async def sign_up(
        self, user_id: str, email: str | None = None, password: str = PASSWORD
    ) -> httpx.Response:
        return await self.post_form(
            "/signup",
            {
                "user_id": user_id,
                "email": email or f"{user_id}@example.org",
                "password": password,
                "password_confirm": password,
                "action": "create",
            },
        )

    async def log_in(self, user_id: str, password: str = PASSWORD) -> httpx.Response:
        return await self.post_form("/login", {"user_id": user_id, "password": password})

    async def log_out(self) -> httpx.Response:
        return await self.post_form("/logout", {})

    async def create_host(self, label: str, zone: str = ZONE) -> httpx.Response:
        return await self.post_form(
            "/hosts/new", {"label": label, "zone": zone, "action": "create"}
        )


def settings_for(tmp_path: Path, trusted_proxies: list[str] | None = None) -> Settings:
    return Settings(data_dir=tmp_path / "data", trusted_proxies=trusted_proxies or [])


@pytest.fixture
async def portal(db: Database, tmp_path: Path) -> AsyncIterator[Portal]:
    homing = Homing(settings_for(tmp_path, trusted_proxies=["10.0.0.0/8"]), db)
    await zones.add_zone(db, ZONE)
    async with browser(homing) as client:
        yield Portal(homing, client)


@pytest.fixture
def served_env() -> dict[str, str]:
    """More HOMING_* settings for the browser tests' `homing serve`; a module may override it."""
    return {}
