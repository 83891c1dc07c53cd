"""Guessing through the update doors and the API: refused before argon2, per source and account."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from homing.config import Settings
from homing.service import accounts, hosts, zones
from homing.service.context import Homing
from homing.service.secrets import argon2_runs
from homing.store.db import Database
from tests.web.conftest import HOST, PASSWORD, Site, client_for

UPDATE = "/nic/update"


@pytest.fixture
async def site(db: Database) -> AsyncIterator[Site]:
    """The update site with the default limits but a source window long enough that the
    test's own run time does not drain it (each spent attempt returns after 180 s)."""
    homing = Homing(Settings(throttle_source="20/3600"), db)
    await zones.add_zone(db, "dyn.example.net")
    await accounts.create_account(db, "alice", "alice@example.org", PASSWORD)
    created = await hosts.add_host(db, HOST, "alice")
    async with client_for(homing) as client:
        yield Site(homing, client, created.secret)


async def update(
    client: httpx.AsyncClient, user: str, password: str, myip: str = "192.0.2.66"
) -> str:
    answer = await client.get(
        UPDATE, params={"hostname": HOST, "myip": myip}, auth=httpx.BasicAuth(user, password)
    )
    return answer.text.strip()


async def test_a_thousand_guessed_passwords_pay_argon2_five_times(site: Site) -> None:
    before = argon2_runs["verify"]
    answers = {await update(site.client, "alice", f"guess {n}") for n in range(1000)}
    assert answers == {"badauth"}
    assert argon2_runs["verify"] - before <= 5
    # The account is locked for that source: even its right password is refused, unhashed.
    assert await update(site.client, "alice", PASSWORD) == "badauth"
    assert argon2_runs["verify"] - before <= 5
    # Its owner elsewhere is not: the address is still the old one (nothing was changed).
    async with client_for(site.homing, "198.51.100.20") as owner:
        assert await update(owner, "alice", PASSWORD) == "good 192.0.2.66"
        assert await update(owner, HOST, site.secret, "192.0.2.67") == "good 192.0.2.67"


async def test_an_honest_router_pays_argon2_once(site: Site) -> None:
    before = argon2_runs["verify"]
    assert await update(site.client, "alice", PASSWORD, "192.0.2.10") == "good 192.0.2.10"
    assert await update(site.client, "alice", PASSWORD, "192.0.2.11") == "good 192.0.2.11"
    assert await update(site.client, "alice", PASSWORD, "192.0.2.11") == "nochg 192.0.2.11"
    assert argon2_runs["verify"] - before == 1


async def test_ipv6_sources_in_one_56_share_a_budget(site: Site) -> None:
    before = argon2_runs["verify"]
    for n in range(5):
        async with client_for(site.homing, f"2001:db8:0:{n:x}::{n + 1}") as guesser:
            assert await update(guesser, "alice", "not the password") == "badauth"
    assert argon2_runs["verify"] - before == 5
    async with client_for(site.homing, "2001:db8:0:ff::9") as same_56:
        assert await update(same_56, "alice", PASSWORD) == "badauth"
    assert argon2_runs["verify"] - before == 5
    async with client_for(site.homing, "2001:db8:0:100::1") as next_56:
        assert await update(next_56, "alice", PASSWORD) == "good 192.0.2.66"


async def test_wrong_host_secrets_lock_the_source_not_others(site: Site) -> None:
    """Host secrets are cheap to check, but a source that keeps failing is refused too."""
    for n in range(20):
        assert await update(site.client, HOST, f"not-the-secret-{n}") == "badauth"
    assert await update(site.client, HOST, site.secret) == "badauth"
    dvr = await site.client.get("/dvr/update", params={"host": HOST, "password": site.secret})
    assert dvr.text.strip() == "ERR 0x80008002"
    async with client_for(site.homing, "192.0.2.200") as other:
        assert await update(other, HOST, site.secret) == "good 192.0.2.66"


async def test_wrong_api_tokens_lock_the_source(site: Site) -> None:
    for n in range(20):
        answer = await site.client.get(
            "/api/v1/hosts", headers={"Authorization": f"Bearer hom_wrong{n}"}
        )
        assert answer.status_code == 401
    locked = await site.client.get("/api/v1/hosts", headers={"Authorization": "Bearer hom_x"})
    assert locked.status_code == 429 and locked.json()["code"] == "THROTTLED"
    assert int(locked.headers["retry-after"]) >= 1
    async with client_for(site.homing, "192.0.2.201") as other:
        answer = await other.get("/api/v1/hosts", headers={"Authorization": "Bearer hom_x"})
        assert answer.status_code == 401
