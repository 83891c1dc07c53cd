"""The publishing rules at every HTTP door: dyndns2, DVR, the REST API. An address with a
scope ID, broadcast, reserved, multicast or unspecified is refused with nothing stored;
loopback and link-local only with allow_local_addresses; private ranges are published."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from homing.config import Settings
from homing.service import accounts, hosts, tokens, zones
from homing.service.context import Homing
from homing.store.db import Database
from homing.store.schema import hosts as hosts_table
from homing.store.schema import journal, rrsets
from tests.web.conftest import HOST, PASSWORD, Site, client_for

NEVER = [
    "fe80::1%25eth0",  # a zone ID, percent-encoded as a URL carries it
    "fe80::1%eth0",
    "[fe80::1%25eth0]",
    "::ffff:192.0.2.1%25eth0",
    "255.255.255.255",
    "240.0.0.1",
    "224.0.0.1",
    "ff02::1",
    "0.0.0.0",
    "::",
]
LOCAL = ["127.0.0.1", "::1", "169.254.1.1", "fe80::1"]
PRIVATE = ["10.1.2.3", "192.168.1.20", "100.64.0.9", "fd12:3456:789a::1"]


async def stored(site: Site) -> tuple[list[tuple[str, str, str]], int]:
    """Every RRset of the host and how many journal rows exist."""

    async def read(conn: sa.ext.asyncio.AsyncConnection) -> tuple[list[tuple[str, str, str]], int]:
        rows = await conn.execute(
            sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.rdatas).where(rrsets.c.name == HOST)
        )
        count = await conn.scalar(sa.select(sa.func.count()).select_from(journal))
        return [tuple(r) for r in rows], int(count or 0)

    return await site.homing.db.read(read)


@pytest.mark.parametrize("address", NEVER + LOCAL)
async def test_dyndns2_refuses_with_badagent_and_stores_nothing(site: Site, address: str) -> None:
    before = await stored(site)
    response = await site.client.get(
        f"/nic/update?hostname={HOST}&myip={address}", auth=site.auth()
    )
    assert (response.status_code, response.text) == (200, "badagent\n")
    assert await stored(site) == before


async def test_a_zone_id_in_a_dual_stack_list_refuses_the_whole_update(site: Site) -> None:
    before = await stored(site)
    response = await site.client.get(
        f"/nic/update?hostname={HOST}&myip=192.0.2.8,fe80::1%25eth0", auth=site.auth()
    )
    assert response.text == "badagent\n"
    assert await stored(site) == before


@pytest.mark.parametrize("address", PRIVATE)
async def test_private_addresses_are_published(site: Site, address: str) -> None:
    response = await site.client.get(
        f"/nic/update?hostname={HOST}&myip={address}", auth=site.auth()
    )
    assert response.text == f"good {address}\n"
    [(name, _, rdatas)] = (await stored(site))[0]
    assert (name, rdatas) == (HOST, address)


@pytest.mark.parametrize("address", ["fe80::1%25eth0", "255.255.255.255", "240.0.0.1", "::1"])
async def test_dvr_refuses_with_err_3(site: Site, address: str) -> None:
    before = await stored(site)
    get = await site.client.get(
        "/dvr/update", params={"host": HOST, "password": site.secret, "ip": address}
    )
    post = await site.client.post(
        "/dvr/update", data={"host": HOST, "password": site.secret, "ip": address}
    )
    assert get.text.strip() == post.text.strip() == "ERR 0x80008003"
    assert await stored(site) == before


async def test_the_api_refuses_with_422_naming_the_rule(site: Site) -> None:
    account = await accounts.authenticate(site.homing.db, "alice", PASSWORD)
    assert account is not None
    host_id = await site.homing.db.read(
        lambda conn: conn.scalar(sa.select(hosts_table.c.id).where(hosts_table.c.name == HOST))
    )
    created = await tokens.create_token(site.homing.db, account, "t", ("read", "update"))
    auth = {"Authorization": f"Bearer {created.secret}"}
    path = f"/api/v1/hosts/{host_id}/addresses"
    before = await stored(site)
    for body, rule in [
        ({"ipv6": "fe80::1%eth0"}, "scope IDs are not allowed"),
        ({"ipv6": "fe80::1%25eth0"}, "scope IDs are not allowed"),
        ({"ipv4": "255.255.255.255"}, "broadcast address"),
        ({"ipv4": "240.0.0.1"}, "reserved"),
        ({"ipv6": "ff02::1"}, "multicast"),
        ({"ipv4": "127.0.0.1"}, "loopback"),
    ]:
        response = await site.client.put(path, json=body, headers=auth)
        assert response.status_code == 422, body
        assert response.json()["code"] == "ADDRESS_INVALID"
        assert rule in response.json()["message"], response.json()
    assert await stored(site) == before
    accepted = await site.client.put(path, json={"ipv4": "192.168.0.2"}, headers=auth)
    assert accepted.status_code == 200 and accepted.json()["addresses"] == ["192.168.0.2"]


async def test_the_source_address_meets_the_rules_too(site: Site) -> None:
    """Without myip the source is published; a loopback source (a proxy that is not trusted,
    say) is refused like a given loopback address."""
    before = await stored(site)
    async with client_for(site.homing, source="127.0.0.1") as local:
        response = await local.get(f"/nic/update?hostname={HOST}", auth=site.auth())
    assert response.text == "badagent\n"
    assert await stored(site) == before


async def test_allow_local_addresses_publishes_loopback_and_link_local(db: Database) -> None:
    homing = Homing(Settings(allow_local_addresses=True), db)
    await zones.add_zone(db, "dyn.example.net")
    await accounts.create_account(db, "alice", "alice@example.org", PASSWORD)
    created = await hosts.add_host(db, HOST, "alice")
    async with client_for(homing, source="127.0.0.1") as client:
        auth = (HOST, created.secret)
        for query, answer in [
            ("myip=127.0.0.1", "good 127.0.0.1"),
            ("myip=fe80::1", "good fe80::1"),
            ("", "nochg 127.0.0.1"),  # the loopback source itself
            ("myip=fe80::1%25eth0", "badagent"),  # a scope ID never
            ("myip=255.255.255.255", "badagent"),
        ]:
            response = await client.get(f"/nic/update?hostname={HOST}&{query}", auth=auth)
            assert response.text == answer + "\n", query
