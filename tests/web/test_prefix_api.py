"""Prefix hosts over the REST API: made with a new host or later, shown, refused, undone."""

from __future__ import annotations

from homing.service import accounts, hosts
from tests.web.conftest import HOST, Site
from tests.web.test_tokens_api import assert_error, host_id, token

PREFIX = "2001:db8:4:5::/64"


async def nic(site: Site, query: str) -> str:
    response = await site.client.get(f"/nic/update?hostname={HOST}&{query}", auth=site.auth())
    return response.text


async def test_create_a_prefix_host_with_its_router(site: Site) -> None:
    headers = await token(site)
    assert await nic(site, f"myip=192.0.2.1&ip6lanprefix={PREFIX}") == "good 192.0.2.1\n"
    body = {"label": "pc", "zone": "dyn.example.net", "prefix": {"router": HOST, "iid": "::42"}}
    response = await site.client.post("/api/v1/hosts", json=body, headers=headers)
    assert response.status_code == 201, response.text
    new_id = response.json()["id"]
    response = await site.client.get(f"/api/v1/hosts/{new_id}/prefix", headers=headers)
    assert response.json() == {"router": HOST, "iid": "::42", "address": "2001:db8:4:5::42"}
    response = await site.client.get(f"/api/v1/hosts/{new_id}", headers=headers)
    assert response.json()["addresses"] == ["2001:db8:4:5::42"]
    # The router's next prefix moves it.
    assert await nic(site, "myip=192.0.2.1&ip6lanprefix=2001:db8:9::/64") == "good 192.0.2.1\n"
    response = await site.client.get(f"/api/v1/hosts/{new_id}", headers=headers)
    assert response.json()["addresses"] == ["2001:db8:9::42"]
    response = await site.client.delete(f"/api/v1/hosts/{new_id}/prefix", headers=headers)
    assert response.status_code == 204
    response = await site.client.get(f"/api/v1/hosts/{new_id}/prefix", headers=headers)
    assert_error(response, 404, "NOT_FOUND")


async def test_refusals_create_nothing(site: Site) -> None:
    headers = await token(site)
    await accounts.create_account(site.homing.db, "bob", "bob@example.org", "correct horse x")
    await hosts.add_host(site.homing.db, "bob.dyn.example.net", "bob")
    for prefix in (
        {"router": HOST, "iid": "1::1"},  # longer than a /64's host part
        {"router": HOST, "iid": "not-an-iid"},
        {"router": "bob.dyn.example.net", "iid": "::1"},  # another user's host
        {"router": "nope.dyn.example.net", "iid": "::1"},
    ):
        body = {"label": "pc", "zone": "dyn.example.net", "prefix": prefix}
        response = await site.client.post("/api/v1/hosts", json=body, headers=headers)
        assert_error(response, 422, "PREFIX_HOST_INVALID")
    listed = await site.client.get("/api/v1/hosts", headers=headers)
    assert [h["name"] for h in listed.json()] == [HOST]


async def test_put_prefix_on_an_existing_host(site: Site) -> None:
    headers = await token(site)
    await hosts.add_host(site.homing.db, "nas.dyn.example.net", "alice")
    nas = await host_id(site, "nas.dyn.example.net")
    body = {"router": HOST, "iid": "::7"}
    response = await site.client.put(f"/api/v1/hosts/{nas}/prefix", json=body, headers=headers)
    assert response.json() == {"router": HOST, "iid": "::7", "address": None}
    assert await nic(site, "myipv6=2001:db8:a:b::/64") == "good\n"
    response = await site.client.get(f"/api/v1/hosts/{nas}", headers=headers)
    assert response.json()["addresses"] == ["2001:db8:a:b::7"]
    router = await host_id(site)
    body = {"router": "nas.dyn.example.net", "iid": "::7"}  # a router cannot follow
    response = await site.client.put(f"/api/v1/hosts/{router}/prefix", json=body, headers=headers)
    assert_error(response, 422, "PREFIX_HOST_INVALID")
