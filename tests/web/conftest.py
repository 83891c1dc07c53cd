"""The ASGI app in process, over a real store, with a host ready to update."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from homing.config import Settings
from homing.service import accounts, hosts, zones
from homing.service.context import Homing
from homing.store.db import Database
from homing.web.app import create_app

HOST = "cam.dyn.example.net"
PASSWORD = "correct horse battery"


@dataclass
class Site:
    homing: Homing
    client: httpx.AsyncClient
    secret: str

    def auth(self, user: str = HOST, password: str | None = None) -> httpx.BasicAuth:
        return httpx.BasicAuth(user, self.secret if password is None else password)


def client_for(homing: Homing, source: str = "203.0.113.5") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(homing), client=(source, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://homing.test")


@pytest.fixture
async def site(db: Database) -> AsyncIterator[Site]:
    settings = Settings(
        abuse_nochg_limit=3, max_hosts_per_request=5, trusted_proxies=["10.0.0.0/8"]
    )
    homing = Homing(settings, db)
    await zones.add_zone(db, "dyn.example.net")
    await accounts.create_account(db, "alice", "alice@example.org", PASSWORD)
    created = await hosts.add_host(db, HOST, "alice")
    async with client_for(homing) as client:
        yield Site(homing, client, created.secret)
