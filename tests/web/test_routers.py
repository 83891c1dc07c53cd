"""What routers send, in process: each provider's address parameters, prefixes and prefix
hosts, the paths people copy; and never the source address once a parameter is named."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import Conflict, InvalidAddress, NotFound
from homing.service import accounts, hosts, prefixes
from homing.store.db import Database
from homing.store.schema import journal, router_prefixes, rrsets
from homing.web.app import DYNDNS2_PATHS
from tests.web.conftest import HOST, Site, client_for

SOURCE4 = "203.0.113.5"
SOURCE6 = "2001:db8:ffff::5"
PC = "pc.dyn.example.net"
NAS = "nas.dyn.example.net"


async def nic(site: Site, query: str, path: str = "/nic/update") -> str:
    response = await site.client.get(f"{path}?{query}", auth=site.auth())
    assert response.status_code == 200
    return response.text


async def records(db: Database, name: str = HOST) -> dict[str, list[str]]:
    async def read(conn: AsyncConnection) -> dict[str, list[str]]:
        rows = await conn.execute(
            sa.select(rrsets.c.rtype, rrsets.c.rdatas).where(rrsets.c.name == name)
        )
        return {row.rtype: row.rdatas.split("\n") for row in rows}

    return await db.read(read)


async def test_desec_fritzbox_url_sets_both_families(site: Site) -> None:
    query = f"hostname={HOST}&myipv4=192.0.2.10&myipv6=2001:db8:1::10"
    assert await nic(site, query) == "good 192.0.2.10,2001:db8:1::10\n"
    assert await records(site.homing.db) == {"A": ["192.0.2.10"], "AAAA": ["2001:db8:1::10"]}


async def test_preserve_keeps_a_family_and_empty_deletes_it(site: Site) -> None:
    await nic(site, f"hostname={HOST}&myip=192.0.2.10,2001:db8:1::10")
    assert await nic(site, f"hostname={HOST}&myipv4=preserve&myipv6=2001:db8:1::11") == (
        "good 2001:db8:1::11\n"
    )
    assert await records(site.homing.db) == {"A": ["192.0.2.10"], "AAAA": ["2001:db8:1::11"]}
    # A FRITZ!Box without IPv6 fills <ip6addr> with nothing: the stale AAAA goes.
    assert await nic(site, f"hostname={HOST}&myipv4=192.0.2.10&myipv6=") == "good 192.0.2.10\n"
    assert await records(site.homing.db) == {"A": ["192.0.2.10"]}
    assert await nic(site, f"hostname={HOST}&myip=preserve") == "nochg\n"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ipv6=2001:db8:1::12", {"AAAA": ["2001:db8:1::12"]}),  # dynu
        ("ip=192.0.2.12", {"A": ["192.0.2.12"]}),
        (
            "myipv6=2001:db8:1::12&myip=192.0.2.12",
            {"A": ["192.0.2.12"], "AAAA": ["2001:db8:1::12"]},
        ),
        ("myip=192.0.2.12&myipv4=192.0.2.99", {"A": ["192.0.2.12"]}),  # myip first, as deSEC
        ("myipv4=192.0.2.12&ip=2001:db8:1::12", {"A": ["192.0.2.12"], "AAAA": ["2001:db8:1::12"]}),
    ],
)
async def test_each_parameter_speaks_for_its_family(
    site: Site, query: str, expected: dict[str, list[str]]
) -> None:
    assert (await nic(site, f"hostname={HOST}&{query}")).startswith("good ")
    assert await records(site.homing.db) == expected


async def test_a_prefix_never_fails_the_rest_of_the_request(site: Site) -> None:
    await nic(site, f"hostname={HOST}&myip=2001:db8:1::1234")
    # nsupdate.info's FRITZ!Box advice: the IPv4 is set and the AAAA keeps its host bits.
    assert await nic(site, f"hostname={HOST}&myip=192.0.2.20,2001:db8:2::/64") == (
        "good 192.0.2.20\n"
    )
    assert await records(site.homing.db) == {"A": ["192.0.2.20"], "AAAA": ["2001:db8:2::1234"]}
    assert await nic(site, f"hostname={HOST}&myipv6=2001:db8:3::/48") == "good\n"
    assert (await records(site.homing.db))["AAAA"] == ["2001:db8:3::1234"]


@pytest.mark.parametrize(
    "query",
    [
        "myip=preserve,192.0.2.1",
        "myipv6=2001:db8::/64,2001:db9::/64",
        "myip=192.0.2.1,192.0.2.2",
        "ip6lanprefix=nonsense",
        "myipv6=fe80::/64",
        "myip=192.0.2.0/24,192.0.2.1",
    ],
)
async def test_contradictions_are_refused_and_change_nothing(site: Site, query: str) -> None:
    await nic(site, f"hostname={HOST}&myip=192.0.2.50")
    assert await nic(site, f"hostname={HOST}&{query}") == "badagent\n"
    assert await records(site.homing.db) == {"A": ["192.0.2.50"]}


@pytest.fixture
async def routed(site: Site) -> AsyncIterator[Site]:
    """alice's router (HOST) with two prefix hosts."""
    db = site.homing.db
    await hosts.add_host(db, PC, "alice")
    await hosts.add_host(db, NAS, "alice")
    await prefixes.set_prefix_host(db, PC, HOST, "::1234:56ff:fe78:9abc", actor="t", via="t")
    await prefixes.set_prefix_host(db, NAS, HOST, "::2", actor="t", via="t")
    yield site


async def test_a_router_prefix_moves_its_prefix_hosts_in_one_commit(routed: Site) -> None:
    db = routed.homing.db
    query = f"hostname={HOST}&myip=192.0.2.30&ip6lanprefix=2001:db8:4:5::/64"
    assert await nic(routed, query) == "good 192.0.2.30\n"
    assert await records(db, PC) == {"AAAA": ["2001:db8:4:5:1234:56ff:fe78:9abc"]}
    assert await records(db, NAS) == {"AAAA": ["2001:db8:4:5::2"]}
    assert await records(db) == {"A": ["192.0.2.30"]}  # the router's own AAAA is not touched

    async def serials(conn: AsyncConnection) -> list[tuple[str, int, str]]:
        rows = await conn.execute(sa.select(journal.c.name, journal.c.serial, journal.c.via))
        return [(r.name, r.serial, r.via) for r in rows if r.via == "dyndns2"]

    rows = await db.read(serials)
    assert {name for name, _, _ in rows} == {HOST, PC, NAS}
    numbers = sorted(serial for _, serial, _ in rows)
    assert numbers == list(range(numbers[0], numbers[0] + 3))  # one commit, serials in a row

    # The same prefix again changes nothing; a new one moves both again.
    assert await nic(routed, query) == "nochg 192.0.2.30\n"
    assert await nic(routed, f"hostname={HOST}&myip=192.0.2.30,2001:db8:6:7::/64") == (
        "good 192.0.2.30\n"
    )
    assert await records(db, NAS) == {"AAAA": ["2001:db8:6:7::2"]}


async def test_a_prefix_host_added_later_gets_its_address_at_once(site: Site) -> None:
    db = site.homing.db
    await nic(site, f"hostname={HOST}&myip=192.0.2.30&ip6lanprefix=2001:db8:8:9::/64")
    await hosts.add_host(db, PC, "alice")
    made = await prefixes.set_prefix_host(db, PC, HOST, "::abcd", actor="t", via="t")
    assert made.address == "2001:db8:8:9::abcd"
    assert await records(db, PC) == {"AAAA": ["2001:db8:8:9::abcd"]}

    async def kept(conn: AsyncConnection) -> list[str]:
        return list((await conn.execute(sa.select(router_prefixes.c.prefix))).scalars())

    assert await db.read(kept) == ["2001:db8:8:9::/64"]


async def test_prefix_host_rules(site: Site) -> None:
    db = site.homing.db
    await hosts.add_host(db, PC, "alice")
    await accounts.create_account(db, "bob", "bob@example.org", "correct horse battery")
    await hosts.add_host(db, "bob.dyn.example.net", "bob")
    with pytest.raises(InvalidAddress):  # longer than the host part of a /64
        await prefixes.set_prefix_host(db, PC, HOST, "1::1", actor="t", via="t")
    with pytest.raises(NotFound):  # another owner's router
        await prefixes.set_prefix_host(db, PC, "bob.dyn.example.net", "::1", actor="t", via="t")
    with pytest.raises(NotFound):
        await prefixes.check_prefix_host(db, "bob", HOST, "::1")
    with pytest.raises(Conflict):
        await prefixes.set_prefix_host(db, HOST, HOST, "::1", actor="t", via="t")
    await prefixes.set_prefix_host(db, PC, HOST, "::1", actor="t", via="t")
    with pytest.raises(Conflict):  # a prefix host is no router
        await prefixes.check_prefix_host(db, "alice", PC, "::2")


async def test_paths_people_copy_answer_like_nic_update(site: Site) -> None:
    for number, path in enumerate(DYNDNS2_PATHS, start=1):
        response = await site.client.get(
            f"{path}?hostname={HOST}&myip=192.0.2.{number}", auth=site.auth()
        )
        assert (response.status_code, response.text) == (200, f"good 192.0.2.{number}\n")
    # ddclient's dyndns1 form: the name in host_id.
    query = f"action=edit&started=1&hostname=YES&host_id={HOST}&myip=192.0.2.99"
    assert await nic(site, query, "/nic/dyndns") == "good 192.0.2.99\n"


async def test_myip_is_the_address_alone(site: Site) -> None:
    response = await site.client.get("/myip")
    assert (response.status_code, response.text) == (200, SOURCE4)
    assert response.headers["content-type"].startswith("text/plain")


# Values each address parameter may take in the sweep below.
_VALUES = [
    "",
    "preserve",
    "192.0.2.77",
    "2001:db8:7::77",
    "192.0.2.78,2001:db8:7::78",
    "2001:db8:9::/64",
    "192.0.2.79,2001:db8:9::/64",
    "192.0.2.0/24",
    " , ",
]
_PARAMS = ["myip", "myipv4", "myipv6", "ip", "ipv6", "ip6lanprefix"]


def _sweep(count: int, seed: int) -> list[str]:
    """`count` requests naming one to three address parameters, drawn reproducibly."""
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        names = rng.sample(_PARAMS, rng.randint(1, 3))
        queries.append("&".join(f"{name}={rng.choice(_VALUES)}" for name in names))
    return queries


@pytest.mark.parametrize("source", [SOURCE4, SOURCE6])
async def test_naming_an_address_parameter_never_publishes_the_source(
    site: Site, source: str
) -> None:
    db = site.homing.db
    async with client_for(site.homing, source) as client:
        for query in _sweep(60, seed=19):
            response = await client.get(f"/nic/update?hostname={HOST}&{query}", auth=site.auth())
            assert response.status_code == 200
            published = [v for values in (await records(db)).values() for v in values]
            assert source not in published, query
            assert source not in response.text, query
        # The control: naming none of them publishes the source.
        response = await client.get(f"/nic/update?hostname={HOST}", auth=site.auth())
        assert source in response.text
