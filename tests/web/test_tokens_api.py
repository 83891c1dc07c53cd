"""The REST API with personal tokens: hosts, addresses, secrets, history, tokens, scopes."""

from __future__ import annotations

import hashlib

import httpx
import sqlalchemy as sa

from homing.service import accounts, hosts, tokens
from homing.service.accounts import Account
from homing.store.schema import api_tokens
from tests.web.conftest import HOST, PASSWORD, Site


async def account(site: Site, user: str = "alice") -> Account:
    found = await accounts.authenticate(site.homing.db, user, PASSWORD)
    assert found is not None
    return found


async def token(
    site: Site,
    actions: tuple[str, ...] = tokens.ACTIONS,
    host_ids: list[int] | None = None,
    user: str = "alice",
) -> dict[str, str]:
    created = await tokens.create_token(
        site.homing.db, await account(site, user), "test", actions, host_ids
    )
    return {"Authorization": f"Bearer {created.secret}"}


async def host_id(site: Site, name: str = HOST) -> int:
    response = await site.client.get("/api/v1/hosts", headers=await token(site, ("read",)))
    return int(next(h["id"] for h in response.json() if h["name"] == name))


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    assert set(body) == {"code", "message", "field"}


async def test_token_is_random_shown_once_and_stored_as_sha256(site: Site) -> None:
    created = await tokens.create_token(
        site.homing.db, await account(site), "script", ["read"], None
    )
    assert created.secret.startswith("hom_") and len(created.secret) >= 4 + 43  # 256 bits
    async with site.homing.db.engine.connect() as conn:
        stored = (await conn.execute(sa.select(api_tokens.c.token_hash))).scalar_one()
    assert stored == hashlib.sha256(created.secret.encode()).hexdigest()
    listed = await tokens.list_tokens(site.homing.db, await account(site))
    assert [t.name for t in listed] == ["script"]
    assert created.secret not in repr(listed)


async def test_without_or_with_a_bad_token_401(site: Site) -> None:
    response = await site.client.get("/api/v1/hosts")
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"] == "Bearer"
    for value in ("Bearer hom_nope", "Bearer nope", "Basic YTpi"):
        response = await site.client.get("/api/v1/hosts", headers={"Authorization": value})
        assert_error(response, 401, "UNAUTHORIZED")


async def test_list_hosts_with_addresses_and_dvr_status(site: Site) -> None:
    await site.client.get(
        "/nic/update", params={"hostname": HOST, "myip": "192.0.2.10"}, auth=site.auth()
    )
    response = await site.client.get("/api/v1/hosts", headers=await token(site, ("read",)))
    assert response.status_code == 200
    (host,) = response.json()
    assert host["name"] == HOST
    assert host["addresses"] == ["192.0.2.10"]
    assert host["dvr_status"]["code"] == "ACT"
    assert host["last_via"] == "dyndns2"
    one = await site.client.get(f"/api/v1/hosts/{host['id']}", headers=await token(site))
    assert one.json() == host


async def test_create_host_then_delete_it(site: Site) -> None:
    auth = await token(site, ("read", "manage"))
    response = await site.client.post(
        "/api/v1/hosts", json={"label": "nas", "zone": "dyn.example.net"}, headers=auth
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "nas.dyn.example.net" and len(created["secret"]) >= 32
    again = await site.client.post(
        "/api/v1/hosts", json={"label": "nas", "zone": "dyn.example.net"}, headers=auth
    )
    assert_error(again, 409, "HOST_NAME_DUPLICATE")
    assert again.json()["field"] == "label"
    bad = await site.client.post(
        "/api/v1/hosts", json={"label": "a.b", "zone": "dyn.example.net"}, headers=auth
    )
    assert_error(bad, 422, "HOST_LABEL_INVALID")
    zone = await site.client.post(
        "/api/v1/hosts", json={"label": "x", "zone": "other.example"}, headers=auth
    )
    assert_error(zone, 422, "ZONE_INVALID")
    gone = await site.client.delete(f"/api/v1/hosts/{created['id']}", headers=auth)
    assert gone.status_code == 204
    missing = await site.client.delete(f"/api/v1/hosts/{created['id']}", headers=auth)
    assert_error(missing, 404, "HOST_NOT_FOUND")


async def test_zones_are_public(site: Site) -> None:
    response = await site.client.get("/api/v1/zones")
    assert response.json() == ["dyn.example.net"]


async def test_set_address_then_history(site: Site) -> None:
    hid = await host_id(site)
    auth = await token(site, ("read", "update"), [hid])
    response = await site.client.put(
        f"/api/v1/hosts/{hid}/addresses",
        json={"ipv4": "192.0.2.44", "ipv6": "2001:db8::44"},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "name": HOST,
        "changed": True,
        "addresses": ["192.0.2.44", "2001:db8::44"],
    }
    bad = await site.client.put(
        f"/api/v1/hosts/{hid}/addresses", json={"ipv4": "2001:db8::1"}, headers=auth
    )
    assert_error(bad, 422, "ADDRESS_INVALID")
    assert bad.json()["field"] == "ipv4"
    history = await site.client.get(f"/api/v1/hosts/{hid}/history", headers=auth)
    assert history.status_code == 200
    entries = history.json()["entries"]
    assert {(e["rtype"], tuple(e["new"])) for e in entries} == {
        ("A", ("192.0.2.44",)),
        ("AAAA", ("2001:db8::44",)),
    }
    assert entries[0]["via"] == "web" and entries[0]["actor"] == "user:alice"
    assert history.json()["has_next"] is False


async def test_regenerate_secret(site: Site) -> None:
    hid = await host_id(site)
    response = await site.client.post(f"/api/v1/hosts/{hid}/secret", headers=await token(site))
    assert response.status_code == 200
    new = response.json()["secret"]
    old = await site.client.get("/nic/update", params={"hostname": HOST}, auth=site.auth())
    assert old.text.startswith("badauth")
    ok = await site.client.get(
        "/nic/update", params={"hostname": HOST, "myip": "192.0.2.9"}, auth=site.auth(HOST, new)
    )
    assert ok.text.startswith("good")


async def test_scope_refusals_are_403(site: Site) -> None:
    hid = await host_id(site)
    other = await hosts.add_host(site.homing.db, "nas.dyn.example.net", "alice")
    update_only = await token(site, ("update",), [hid])
    assert_error(await site.client.get("/api/v1/hosts", headers=update_only), 403, "TOKEN_SCOPE")
    assert_error(
        await site.client.get(f"/api/v1/hosts/{hid}/history", headers=update_only),
        403,
        "TOKEN_SCOPE",
    )
    assert_error(
        await site.client.put(
            f"/api/v1/hosts/{other.id}/addresses", json={"ipv4": "192.0.2.1"}, headers=update_only
        ),
        403,
        "TOKEN_SCOPE",
    )
    assert_error(
        await site.client.post(f"/api/v1/hosts/{hid}/secret", headers=update_only),
        403,
        "TOKEN_SCOPE",
    )
    assert_error(
        await site.client.delete(f"/api/v1/hosts/{hid}", headers=update_only), 403, "TOKEN_SCOPE"
    )
    assert_error(
        await site.client.post(
            "/api/v1/hosts", json={"label": "x", "zone": "dyn.example.net"}, headers=update_only
        ),
        403,
        "TOKEN_SCOPE",
    )
    assert_error(await site.client.get("/api/v1/tokens", headers=update_only), 403, "TOKEN_SCOPE")
    # A host-scoped manage token manages its host, not the account.
    scoped_manage = await token(site, ("read", "manage"), [hid])
    listed = await site.client.get("/api/v1/hosts", headers=scoped_manage)
    assert [h["id"] for h in listed.json()] == [hid]
    assert_error(await site.client.get("/api/v1/tokens", headers=scoped_manage), 403, "TOKEN_SCOPE")
    assert (await site.client.post(f"/api/v1/hosts/{hid}/secret", headers=scoped_manage)).is_success


async def test_another_users_host_is_not_found(site: Site) -> None:
    await accounts.create_account(site.homing.db, "bob", "bob@example.org", PASSWORD)
    bobs = await token(site, user="bob")
    hid = await host_id(site)
    for response in (
        await site.client.get(f"/api/v1/hosts/{hid}", headers=bobs),
        await site.client.delete(f"/api/v1/hosts/{hid}", headers=bobs),
        await site.client.post(f"/api/v1/hosts/{hid}/secret", headers=bobs),
        await site.client.get(f"/api/v1/hosts/{hid}/history", headers=bobs),
        await site.client.put(
            f"/api/v1/hosts/{hid}/addresses", json={"ipv4": "192.0.2.1"}, headers=bobs
        ),
    ):
        assert_error(response, 404, "HOST_NOT_FOUND")
    # Nor can bob scope a token to it.
    bob = await account(site, "bob")
    try:
        await tokens.create_token(site.homing.db, bob, "x", ["read"], [hid])
    except Exception as exc:  # noqa: BLE001
        assert getattr(exc, "code", None) == "TOKEN_HOSTS_INVALID"
    else:
        raise AssertionError("bob scoped a token to alice's host")


async def test_tokens_over_the_api_create_list_revoke(site: Site) -> None:
    full = await token(site)
    hid = await host_id(site)
    response = await site.client.post(
        "/api/v1/tokens",
        json={"name": "router", "actions": ["update"], "host_ids": [hid]},
        headers=full,
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["actions"] == ["update"] and made["host_names"] == [HOST]
    secret = made["token"]
    listed = (await site.client.get("/api/v1/tokens", headers=full)).json()
    assert [t["name"] for t in listed] == ["test", "test", "router"]  # host_id() makes one
    assert all("token" not in t for t in listed)
    assert listed[0]["last_used_at"] is not None
    narrow = {"Authorization": f"Bearer {secret}"}
    ok = await site.client.put(
        f"/api/v1/hosts/{hid}/addresses", json={"ipv4": "192.0.2.77"}, headers=narrow
    )
    assert ok.status_code == 200
    # A narrow token cannot mint a wider one.
    wider = await site.client.post(
        "/api/v1/tokens", json={"name": "x", "actions": ["read"]}, headers=narrow
    )
    assert_error(wider, 403, "TOKEN_SCOPE")
    revoked = await site.client.delete(f"/api/v1/tokens/{made['id']}", headers=full)
    assert revoked.status_code == 204
    after = await site.client.put(
        f"/api/v1/hosts/{hid}/addresses", json={"ipv4": "192.0.2.78"}, headers=narrow
    )
    assert_error(after, 401, "UNAUTHORIZED")
    again = await site.client.delete(f"/api/v1/tokens/{made['id']}", headers=full)
    assert_error(again, 404, "TOKEN_NOT_FOUND")


async def test_token_field_errors(site: Site) -> None:
    full = await token(site)
    blank = await site.client.post(
        "/api/v1/tokens", json={"name": "   ", "actions": ["read"]}, headers=full
    )
    assert_error(blank, 422, "TOKEN_NAME_INVALID")
    unknown = await site.client.post(
        "/api/v1/tokens", json={"name": "x", "actions": ["delete"]}, headers=full
    )
    assert_error(unknown, 422, "INVALID_REQUEST")
    foreign = await site.client.post(
        "/api/v1/tokens", json={"name": "x", "actions": ["read"], "host_ids": [999]}, headers=full
    )
    assert_error(foreign, 422, "TOKEN_HOSTS_INVALID")


async def test_disabled_account_token_stops_working(site: Site) -> None:
    full = await token(site)
    async with site.homing.db.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE accounts SET status = 'disabled'"))
    assert_error(await site.client.get("/api/v1/hosts", headers=full), 401, "UNAUTHORIZED")


async def test_deleting_a_scoped_tokens_only_host_leaves_it_no_hosts(site: Site) -> None:
    other = await hosts.add_host(site.homing.db, "nas.dyn.example.net", "alice")
    narrow = await token(site, ("read",), [other.id])
    gone = await site.client.delete(f"/api/v1/hosts/{other.id}", headers=await token(site))
    assert gone.status_code == 204
    listed = await site.client.get("/api/v1/hosts", headers=narrow)
    assert listed.json() == []


async def test_groups_over_the_api(site: Site) -> None:
    full = await token(site)
    hid = await host_id(site)
    await site.client.get(
        "/nic/update", params={"hostname": HOST, "myip": "192.0.2.10"}, auth=site.auth()
    )
    made = await site.client.post(
        "/api/v1/groups", json={"label": "all", "zone": "dyn.example.net"}, headers=full
    )
    assert made.status_code == 201, made.text
    group = made.json()
    assert group["name"] == "all.dyn.example.net" and group["secret"]
    taken = await site.client.post(
        "/api/v1/groups", json={"label": "all", "zone": "dyn.example.net"}, headers=full
    )
    assert_error(taken, 409, "HOST_NAME_DUPLICATE")
    plain = await site.client.post("/api/v1/groups", json={"label": "office"}, headers=full)
    assert_error(plain, 422, "GROUP_NAME_INVALID")
    added = await site.client.put(f"/api/v1/groups/{group['id']}/members/{hid}", headers=full)
    assert added.status_code == 200, added.text
    assert added.json()["addresses"] == ["192.0.2.10"]
    assert [m["name"] for m in added.json()["members"]] == [HOST]
    listed = await site.client.get("/api/v1/groups", headers=full)
    assert listed.json() == [added.json()]
    removed = await site.client.delete(f"/api/v1/groups/{group['id']}/members/{hid}", headers=full)
    assert removed.json()["members"] == [] and removed.json()["addresses"] == []
    foreign = await site.client.put(f"/api/v1/groups/{group['id']}/members/999", headers=full)
    assert_error(foreign, 422, "GROUP_MEMBER_INVALID")
    renewed = await site.client.post(f"/api/v1/groups/{group['id']}/secret", headers=full)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["name"] == group["name"]
    assert renewed.json()["secret"] not in ("", group["secret"])
    old = await site.client.get("/nic/update", auth=(group["name"], group["secret"]))
    assert old.text.strip() == "badauth"
    new = await site.client.get("/nic/update", auth=(group["name"], renewed.json()["secret"]))
    assert new.status_code == 200 and not new.text.startswith("badauth")
    scoped = await token(site, ("read", "manage"), [hid])
    assert_error(await site.client.get("/api/v1/groups", headers=scoped), 403, "TOKEN_SCOPE")
    assert_error(
        await site.client.post(f"/api/v1/groups/{group['id']}/secret", headers=scoped),
        403,
        "TOKEN_SCOPE",
    )
    assert_error(
        await site.client.delete(f"/api/v1/groups/{group['id']}", headers=scoped),
        403,
        "TOKEN_SCOPE",
    )
    gone = await site.client.delete(f"/api/v1/groups/{group['id']}", headers=full)
    assert gone.status_code == 204
    again = await site.client.delete(f"/api/v1/groups/{group['id']}", headers=full)
    assert_error(again, 404, "GROUP_NOT_FOUND")
    missing = await site.client.put(f"/api/v1/groups/{group['id']}/members/{hid}", headers=full)
    assert_error(missing, 404, "GROUP_NOT_FOUND")
    no_secret = await site.client.post(f"/api/v1/groups/{group['id']}/secret", headers=full)
    assert_error(no_secret, 404, "GROUP_NOT_FOUND")
