"""The acme-dns compatible API: register, update with its headers, two latest values,
allowfrom, and a registration that can set its own name only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from homing.config import Settings
from homing.service import zones
from homing.service.context import Homing
from homing.store.db import Database
from homing.store.schema import acmedns_registrations, journal, rrsets
from tests.web.conftest import client_for

ZONE = "dyn.example.net"
ACME = f"auth.{ZONE}"
V1 = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
V2 = "Gk3nb7PWl0cHs6xkO1XxmR0PpQeMqFgTzV2dYq8lZ1c"
V3 = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"


@pytest.fixture
async def homing(db: Database) -> AsyncIterator[Homing]:
    await zones.add_zone(db, ZONE)
    yield Homing(Settings(acme_dns_zone=ACME), db)


async def txt(db: Database, name: str) -> str | None:
    async with db.engine.connect() as conn:
        found = await conn.scalar(
            sa.select(rrsets.c.rdatas).where(rrsets.c.name == name, rrsets.c.rtype == "TXT")
        )
        return None if found is None else str(found)


async def journal_rows(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(journal)) or 0)


async def test_register_then_update_keeps_the_two_latest_values(homing: Homing) -> None:
    async with client_for(homing) as client:
        made = await client.post("/register")
        assert made.status_code == 201, made.text
        reg = made.json()
        assert set(reg) == {"username", "password", "fulldomain", "subdomain", "allowfrom"}
        assert reg["fulldomain"] == f"{reg['subdomain']}.{ACME}" and len(reg["password"]) == 40
        headers = {"X-Api-User": reg["username"], "X-Api-Key": reg["password"]}
        for value in (V1, V2, V3):
            # keys in any letter case, as acme-dns's decoder takes them
            body = {"SubDomain": reg["subdomain"], "Txt": value}
            answer = await client.post("/update", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"txt": value}
    assert await txt(homing.db, reg["fulldomain"]) == f'"{V2}"\n"{V3}"'
    async with homing.db.engine.connect() as conn:
        stored = (await conn.execute(sa.select(acmedns_registrations))).one()
    assert reg["password"] not in str(tuple(stored))  # kept as a hash only


async def test_a_registration_sets_its_own_name_only(homing: Homing) -> None:
    async with client_for(homing) as client:
        one = (await client.post("/register")).json()
        two = (await client.post("/register")).json()
        headers = {"X-Api-User": one["username"], "X-Api-Key": one["password"]}
        entries = await journal_rows(homing.db)
        other = await client.post(
            "/update", json={"subdomain": two["subdomain"], "txt": V1}, headers=headers
        )
        assert other.status_code == 401 and other.json() == {"error": "forbidden"}
        wrong_key = await client.post(
            "/update",
            json={"subdomain": one["subdomain"], "txt": V1},
            headers={"X-Api-User": one["username"], "X-Api-Key": two["password"]},
        )
        assert wrong_key.status_code == 401
        # a value that is not an ACME digest, a name of another form
        for body in (
            {"subdomain": one["subdomain"], "txt": 'x" IN A 192.0.2.1'},
            {"subdomain": f"_acme-challenge.{ZONE}", "txt": V1},
            {"subdomain": one["subdomain"]},
        ):
            refused = await client.post("/update", json=body, headers=headers)
            assert refused.status_code in (400, 401), body
        assert (await client.post("/update", content=b"{", headers=headers)).status_code == 400
    assert await journal_rows(homing.db) == entries
    assert await txt(homing.db, two["fulldomain"]) is None


async def test_allowfrom_is_checked_on_register_and_update(homing: Homing) -> None:
    async with client_for(homing, source="203.0.113.5") as client:
        bad = await client.post("/register", json={"allowfrom": ["not-a-network"]})
        assert bad.status_code == 400 and bad.json() == {"error": "invalid_allowfrom_cidr"}
        reg = (await client.post("/register", json={"allowfrom": ["198.51.100.0/24"]})).json()
        assert reg["allowfrom"] == ["198.51.100.0/24"]
        headers = {"X-Api-User": reg["username"], "X-Api-Key": reg["password"]}
        body = {"subdomain": reg["subdomain"], "txt": V1}
        refused = await client.post("/update", json=body, headers=headers)
        assert refused.status_code == 401
    async with client_for(homing, source="198.51.100.7") as client:
        allowed = await client.post("/update", json=body, headers=headers)
        assert allowed.status_code == 200
    assert await txt(homing.db, reg["fulldomain"]) == f'"{V1}"'


async def test_registrations_are_throttled_per_source(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    homing = Homing(Settings(acme_dns_zone=ACME, throttle_acme_dns_register="2/3600"), db)
    async with client_for(homing) as client:
        assert (await client.post("/register")).status_code == 201
        assert (await client.post("/register")).status_code == 201
        third = await client.post("/register")
        assert third.status_code == 429 and "Retry-After" in third.headers
    async with client_for(homing, source="198.51.100.7") as client:
        assert (await client.post("/register")).status_code == 201


async def test_off_without_a_zone(db: Database) -> None:
    async with client_for(Homing(Settings(), db)) as client:
        assert (await client.post("/register")).status_code in (404, 405)


async def test_a_hosts_token_delegates_its_challenge_to_a_registration(homing: Homing) -> None:
    from homing.service import accounts, hosts, tokens

    db = homing.db
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    host = await hosts.add_host(db, f"cam.{ZONE}", "alice")
    alice = await accounts.authenticate(db, "alice", "correct horse battery")
    assert alice is not None
    made = await tokens.create_token(db, alice, "acme", ["acme"], [host.id])
    auth = {"Authorization": f"Bearer {made.secret}"}
    url = f"/api/v1/acme/cam.{ZONE}/delegation"
    async with client_for(homing) as client:
        reg = (await client.post("/register")).json()
        entries = await journal_rows(db)
        for target in (
            f"{'0' * 8}-0000-4000-8000-{'0' * 12}.{ACME}",  # not registered here
            f"www.{ZONE}",  # not under the acme-dns zone
            "elsewhere.example.org",
        ):
            refused = await client.put(url, json={"fulldomain": target}, headers=auth)
            assert refused.status_code == 422, target
            assert refused.json()["code"] == "ACME_DELEGATION_INVALID"
        assert await journal_rows(db) == entries
        done = await client.put(url, json={"fulldomain": reg["fulldomain"]}, headers=auth)
        assert done.status_code == 200, done.text
        assert done.json() == {"name": f"_acme-challenge.cam.{ZONE}", "target": reg["fulldomain"]}
        async with db.engine.connect() as conn:
            cname = await conn.scalar(
                sa.select(rrsets.c.rdatas).where(
                    rrsets.c.name == f"_acme-challenge.cam.{ZONE}", rrsets.c.rtype == "CNAME"
                )
            )
        assert cname == f"{reg['fulldomain']}."
        # a TXT value beside the CNAME could not be served: refused
        beside = await client.post(f"/api/v1/acme/cam.{ZONE}", json={"value": V1}, headers=auth)
        assert beside.status_code == 409 and beside.json()["code"] == "ACME_DELEGATED"
        removed = await client.delete(url, headers=auth)
        assert removed.json()["target"] is None
    assert await txt(db, f"_acme-challenge.cam.{ZONE}") is None


async def test_wrong_keys_lock_the_source_out(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    homing = Homing(Settings(acme_dns_zone=ACME, throttle_source="3/3600"), db)
    async with client_for(homing) as client:
        reg = (await client.post("/register")).json()
        body = {"subdomain": reg["subdomain"], "txt": V1}
        guess = {"X-Api-User": reg["username"], "X-Api-Key": "g" * 40}
        for _ in range(3):
            assert (await client.post("/update", json=body, headers=guess)).status_code == 401
        right = {"X-Api-User": reg["username"], "X-Api-Key": reg["password"]}
        locked = await client.post("/update", json=body, headers=right)
        assert locked.status_code == 401  # refused before the key is looked at
    async with client_for(homing, source="198.51.100.7") as client:
        assert (await client.post("/update", json=body, headers=right)).status_code == 200
