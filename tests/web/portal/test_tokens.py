"""The API tokens page: create (shown once), scope to hosts and actions, list, revoke."""

from __future__ import annotations

import re

from tests.web.portal.conftest import Portal

TOKEN_RE = re.compile(r'<code id="secret" class="secret-value">(hom_[^<]+)</code>')


async def signed_up_with_host(portal: Portal) -> int:
    await portal.sign_up("alice")
    created = await portal.create_host("cam")
    found = re.search(r'href="/hosts/(\d+)"', created.text)
    assert found
    return int(found.group(1))


async def test_tokens_need_a_login(portal: Portal) -> None:
    response = await portal.client.get("/tokens")
    assert response.status_code == 303 and response.headers["location"] == "/login"


async def test_create_scoped_token_use_it_and_revoke_it(portal: Portal) -> None:
    host_id = await signed_up_with_host(portal)
    board = await portal.client.get("/dashboard")
    assert 'href="/tokens"' in board.text
    created = await portal.post_form(
        "/tokens",
        {"name": "router script", "actions": "update", "scope": "some", "host_ids": str(host_id)},
    )
    assert created.status_code == 201
    found = TOKEN_RE.search(created.text)
    assert found
    secret = found.group(1)
    assert "Shown once" in created.text
    listing = await portal.client.get("/tokens")
    assert "router script" in listing.text and "cam.dyn.example.net" in listing.text
    assert secret not in listing.text  # never shown twice
    auth = {"Authorization": f"Bearer {secret}"}
    update = await portal.client.put(
        f"/api/v1/hosts/{host_id}/addresses", json={"ipv4": "192.0.2.5"}, headers=auth
    )
    assert update.status_code == 200
    read = await portal.client.get("/api/v1/hosts", headers=auth)
    assert read.status_code == 403 and read.json()["code"] == "TOKEN_SCOPE"
    token_id = re.search(r'action="/tokens/(\d+)/revoke"', listing.text)
    assert token_id
    revoked = await portal.post_form(f"/tokens/{token_id.group(1)}/revoke", {}, page="/tokens")
    assert revoked.status_code == 303
    after = await portal.client.get("/tokens")
    assert "is revoked" in after.text and "router script</th>" not in after.text
    refused = await portal.client.put(
        f"/api/v1/hosts/{host_id}/addresses", json={"ipv4": "192.0.2.6"}, headers=auth
    )
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED"


async def test_all_hosts_token(portal: Portal) -> None:
    await signed_up_with_host(portal)
    created = await portal.post_form(
        "/tokens",
        {"name": "all", "actions": ["read", "manage"], "scope": "all"},  # type: ignore[dict-item]
    )
    assert created.status_code == 201
    found = TOKEN_RE.search(created.text)
    assert found
    hosts = await portal.client.get(
        "/api/v1/hosts", headers={"Authorization": f"Bearer {found.group(1)}"}
    )
    assert [h["name"] for h in hosts.json()] == ["cam.dyn.example.net"]


async def test_form_errors_keep_the_values(portal: Portal) -> None:
    await signed_up_with_host(portal)
    no_name = await portal.post_form("/tokens", {"name": " ", "actions": "read", "scope": "all"})
    assert no_name.status_code == 422
    assert 'id="name-error"' in no_name.text
    no_action = await portal.post_form("/tokens", {"name": "x", "scope": "all"})
    assert no_action.status_code == 422 and 'id="actions-error"' in no_action.text
    no_host = await portal.post_form("/tokens", {"name": "x", "actions": "read", "scope": "some"})
    assert no_host.status_code == 422 and 'id="host_ids-error"' in no_host.text
    assert 'value="x"' in no_host.text


async def test_cannot_revoke_someone_elses_token(portal: Portal) -> None:
    await signed_up_with_host(portal)
    await portal.post_form("/tokens", {"name": "mine", "actions": "read", "scope": "all"})
    listing = await portal.client.get("/tokens")
    token_id = re.search(r'action="/tokens/(\d+)/revoke"', listing.text)
    assert token_id
    await portal.log_out()
    await portal.sign_up("bob")
    other = await portal.post_form(f"/tokens/{token_id.group(1)}/revoke", {}, page="/tokens")
    assert other.status_code == 404


async def test_revoke_needs_csrf(portal: Portal) -> None:
    await signed_up_with_host(portal)
    response = await portal.client.post("/tokens/1/revoke", data={})
    assert response.status_code == 403
