"""The sign-up API: distinct errors, duplicate check, and a store failure that writes nothing."""

from __future__ import annotations

from homing.config import Settings
from homing.service.context import Homing
from homing.store.db import Database
from tests.web.conftest import Site, client_for

GOOD = {
    "user_id": "bob",
    "email": "bob@example.org",
    "password": "a long passphrase",
    "password_confirm": "a long passphrase",
}


async def test_sign_up_and_duplicates(site: Site) -> None:
    response = await site.client.post("/api/v1/accounts", json=GOOD)
    assert response.status_code == 201
    assert response.json() == {"user_id": "bob", "email": "bob@example.org"}
    taken = await site.client.post(
        "/api/v1/accounts", json={**GOOD, "user_id": "BOB", "email": "x@example.org"}
    )
    assert taken.status_code == 409
    assert taken.json()["code"] == "USER_ID_DUPLICATE"
    assert taken.json()["field"] == "user_id"
    email = await site.client.post(
        "/api/v1/accounts", json={**GOOD, "user_id": "bobby", "email": "BOB@example.org"}
    )
    assert email.status_code == 409
    assert email.json()["code"] == "USER_EMAIL_DUPLICATE"


async def test_password_rules(site: Site) -> None:
    mismatch = await site.client.post(
        "/api/v1/accounts", json={**GOOD, "password_confirm": "different one"}
    )
    assert (mismatch.status_code, mismatch.json()["code"]) == (422, "PASSWORD_MISMATCH")
    weak = await site.client.post(
        "/api/v1/accounts", json={**GOOD, "password": "short", "password_confirm": "short"}
    )
    assert (weak.status_code, weak.json()["code"]) == (422, "PASSWORD_WEAK")
    bad_id = await site.client.post("/api/v1/accounts", json={**GOOD, "user_id": "a b"})
    assert bad_id.json()["code"] == "USER_ID_INVALID"
    missing = await site.client.post("/api/v1/accounts", json={"user_id": "x"})
    assert (missing.status_code, missing.json()["code"]) == (422, "INVALID_REQUEST")
    garbage = await site.client.post(
        "/api/v1/accounts", content=b"\xff{", headers={"content-type": "application/json"}
    )
    assert (garbage.status_code, garbage.json()["code"]) == (400, "BAD_REQUEST")


async def test_availability(site: Site) -> None:
    taken = await site.client.get("/api/v1/accounts/availability", params={"user_id": "ALICE"})
    assert taken.json() == {"user_id": "ALICE", "available": False}
    free = await site.client.get("/api/v1/accounts/availability", params={"user_id": "carol"})
    assert free.json()["available"] is True
    invalid = await site.client.get("/api/v1/accounts/availability", params={"user_id": "x"})
    assert invalid.status_code == 422


async def test_store_down_is_503_internal_error() -> None:
    # Nothing listens on port 1: every store call fails the way a dead database does.
    dead = Database("postgresql+asyncpg://postgres@127.0.0.1:1/test")
    homing = Homing(Settings(), dead)
    try:
        async with client_for(homing) as client:
            response = await client.post("/api/v1/accounts", json=GOOD)
            assert response.status_code == 503
            assert response.json()["code"] == "INTERNAL_ERROR"
            check = await client.get("/api/v1/accounts/availability", params={"user_id": "bob"})
            assert check.status_code == 503
            update = await client.get(
                "/nic/update?hostname=a.b.c&myip=192.0.2.1", auth=("a.b.c", "x")
            )
            assert update.text == "911\n"
    finally:
        await dead.close()


async def test_openapi_document(site: Site) -> None:
    document = (await site.client.get("/api/v1/openapi.json")).json()
    assert "/accounts" in document["paths"]
    assert "/accounts/availability" in document["paths"]
