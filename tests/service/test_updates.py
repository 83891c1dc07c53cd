"""The update use case against both stores: codes, families, abuse, groups."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
import sqlalchemy as sa

from homing.domain.addresses import AddressSet
from homing.domain.errors import AccountError, Conflict, InvalidAddress, NotFound
from homing.domain.outcomes import Outcome
from homing.service import accounts, hosts, updates, zones
from homing.service.changes import current_rrset
from homing.store.db import Database, Txn
from homing.store.schema import journal
from homing.store.schema import zones as zones_table

POLICY = updates.UpdatePolicy(max_hosts_per_request=3, abuse_nochg_limit=2, abuse_window=3600)


async def setup_host(db: Database, name: str = "cam.dyn.example.net") -> str:
    await zones.add_zone(db, "dyn.example.net", exist_ok=True)
    if await accounts.user_id_available(db, "alice"):
        await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    return (await hosts.add_host(db, name, "alice")).secret


def request(
    user: str, password: str, names: list[str] | None, *addrs: str
) -> updates.UpdateRequest:
    return updates.UpdateRequest(
        username=user,
        password=password,
        hostnames=names,
        addresses=AddressSet.parse(list(addrs)),
        via="dyndns2",
        client_ip="127.0.0.1",
    )


async def records(db: Database, name: str, rtype: str) -> tuple[str, ...]:
    async def read(conn: sa.ext.asyncio.AsyncConnection) -> tuple[str, ...]:
        zone = await zones.get_zone(conn, "dyn.example.net")
        value = await current_rrset(Txn(conn, None), zone, name, rtype)  # type: ignore[arg-type]
        return value.rdatas if value else ()

    return await db.read(read)


async def test_good_then_nochg_then_abuse(db: Database) -> None:
    secret = await setup_host(db)
    name = "cam.dyn.example.net"
    [first] = await updates.update(db, request(name, secret, [name], "192.0.2.10"), POLICY)
    assert first.dyndns2_line() == "good 192.0.2.10"
    assert await records(db, name, "A") == ("192.0.2.10",)
    lines = [
        (await updates.update(db, request(name, secret, [name], "192.0.2.10"), POLICY))[0]
        for _ in range(3)
    ]
    assert [r.outcome for r in lines] == [Outcome.NOCHG, Outcome.NOCHG, Outcome.ABUSE]
    assert lines[0].dyndns2_line() == "nochg 192.0.2.10"
    [blocked] = await updates.update(db, request(name, secret, [name], "192.0.2.99"), POLICY)
    assert blocked.outcome is Outcome.ABUSE
    assert await records(db, name, "A") == ("192.0.2.10",)


async def test_one_family_leaves_the_other(db: Database) -> None:
    secret = await setup_host(db)
    name = "cam.dyn.example.net"
    await updates.update(db, request(name, secret, [name], "192.0.2.1", "2001:db8::1"), POLICY)
    [r] = await updates.update(db, request(name, secret, [name], "2001:db8::2"), POLICY)
    assert r.dyndns2_line() == "good 2001:db8::2"
    assert await records(db, name, "A") == ("192.0.2.1",)
    assert await records(db, name, "AAAA") == ("2001:db8::2",)


async def test_wrong_secret_and_unknown_names_change_nothing(db: Database) -> None:
    secret = await setup_host(db)
    name = "cam.dyn.example.net"

    async def journal_length(conn: sa.ext.asyncio.AsyncConnection) -> int:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(journal)) or 0)

    before = await db.read(journal_length)
    [bad] = await updates.update(db, request(name, secret + "x", [name], "192.0.2.5"), POLICY)
    assert bad.outcome is Outcome.BADAUTH
    results = await updates.update(
        db,
        request(name, secret, ["other.dyn.example.net", "not a name", "single"], "192.0.2.5"),
        POLICY,
    )
    assert [r.outcome for r in results] == [Outcome.NOHOST, Outcome.NOTFQDN, Outcome.NOTFQDN]
    [many] = await updates.update(db, request(name, secret, ["a.b"] * 4, "192.0.2.5"), POLICY)
    assert many.outcome is Outcome.NUMHOST
    assert await db.read(journal_length) == before
    assert await records(db, name, "A") == ()


async def test_account_password_updates_owned_hosts(db: Database) -> None:
    await setup_host(db)
    name = "cam.dyn.example.net"
    [r] = await updates.update(
        db, request("ALICE", "correct horse battery", [name], "198.51.100.7"), POLICY
    )
    assert r.dyndns2_line() == "good 198.51.100.7"
    [no] = await updates.update(
        db, request("alice", "wrong password!", [name], "198.51.100.8"), POLICY
    )
    assert no.outcome is Outcome.BADAUTH


async def test_serial_moves_with_each_change(db: Database) -> None:
    secret = await setup_host(db)
    name = "cam.dyn.example.net"

    async def serial(conn: sa.ext.asyncio.AsyncConnection) -> int:
        return int(await conn.scalar(sa.select(zones_table.c.serial)) or 0)

    start = await db.read(serial)
    await updates.update(db, request(name, secret, [name], "192.0.2.1", "2001:db8::1"), POLICY)
    assert await db.read(serial) == start + 2


async def test_group_secret_updates_members_and_publishes_group(db: Database) -> None:
    await setup_host(db, "a.dyn.example.net")
    await hosts.add_host(db, "b.dyn.example.net", "alice")
    group = await hosts.add_group(
        db, "pool.dyn.example.net", "alice", ["a.dyn.example.net", "b.dyn.example.net"]
    )
    results = await updates.update(
        db, request("pool.dyn.example.net", group.secret, None, "203.0.113.9"), POLICY
    )
    assert [r.dyndns2_line() for r in results] == ["good 203.0.113.9"] * 2
    assert await records(db, "pool.dyn.example.net", "A") == ("203.0.113.9",)


async def test_group_ages_out_stale_members(db: Database) -> None:
    a_secret = await setup_host(db, "a.dyn.example.net")
    b = await hosts.add_host(db, "b.dyn.example.net", "alice")
    await hosts.add_group(
        db, "pool.dyn.example.net", "alice", ["a.dyn.example.net", "b.dyn.example.net"]
    )
    await updates.update(db, request("a.dyn.example.net", a_secret, None, "192.0.2.1"), POLICY)
    await updates.update(db, request("b.dyn.example.net", b.secret, None, "192.0.2.2"), POLICY)
    assert await records(db, "pool.dyn.example.net", "A") == ("192.0.2.1", "192.0.2.2")
    await hosts.refresh_all_groups(db, max_age=0)
    assert await records(db, "pool.dyn.example.net", "A") == ()


async def test_duplicates_are_refused(db: Database) -> None:
    await setup_host(db)
    with pytest.raises(AccountError) as taken:
        await accounts.create_account(db, "Alice", "other@example.org", "another good pass")
    assert taken.value.code == "USER_ID_DUPLICATE"
    with pytest.raises(AccountError) as email:
        await accounts.create_account(db, "bob", "ALICE@example.org", "another good pass")
    assert email.value.code == "USER_EMAIL_DUPLICATE"
    with pytest.raises(Conflict):
        await hosts.add_host(db, "cam.dyn.example.net", "alice")
    with pytest.raises(NotFound):
        await hosts.add_host(db, "cam.elsewhere.example", "alice")
    assert not await accounts.user_id_available(db, "ALICE")
    assert await accounts.user_id_available(db, "carol")


def test_source_address() -> None:
    assert updates.source_addresses("2001:db8::1").ipv6 == ipaddress.IPv6Address("2001:db8::1")
    assert updates.source_addresses("192.0.2.1").ipv4 == ipaddress.IPv4Address("192.0.2.1")
    # A loopback source is most often a proxy: published only when the operator allows it.
    with pytest.raises(InvalidAddress):
        updates.source_addresses("::1")
    assert updates.source_addresses("::1", allow_local=True).ipv6 == ipaddress.IPv6Address("::1")


async def test_changes_faster_than_the_plan_allows_are_refused(db: Database) -> None:
    from homing.store.schema import plans

    secret = await setup_host(db)
    name = "cam.dyn.example.net"

    async def set_interval(txn: Txn) -> None:
        await txn.conn.execute(sa.update(plans).values(min_interval=3600))

    await db.write(set_interval)
    [first] = await updates.update(db, request(name, secret, [name], "192.0.2.1"), POLICY)
    assert first.outcome is Outcome.GOOD
    [second] = await updates.update(db, request(name, secret, [name], "192.0.2.2"), POLICY)
    assert (second.outcome, second.dyndns2_line()) == (Outcome.TOO_SOON, "911")
    assert second.outcome.dvr == "ERR 0x80008007"
    assert await records(db, name, "A") == ("192.0.2.1",)
    # An unchanged address is still just nochg, not refused.
    [same] = await updates.update(db, request(name, secret, [name], "192.0.2.1"), POLICY)
    assert same.outcome is Outcome.NOCHG


async def test_no_minimum_interval_never_refuses(db: Database) -> None:
    """Another worker's commit may carry a later clock than ours: without a plan minimum
    that is never "too soon" (it answered 911 under `serve --workers 2`)."""
    from homing.store.schema import hosts as hosts_table

    secret = await setup_host(db)
    name = "cam.dyn.example.net"
    [first] = await updates.update(db, request(name, secret, [name], "192.0.2.1"), POLICY)
    assert first.outcome is Outcome.GOOD

    async def from_the_future(txn: Txn) -> None:
        later = txn.now + timedelta(seconds=5)
        await txn.conn.execute(sa.update(hosts_table).values(last_change_at=later))

    await db.write(from_the_future)
    [second] = await updates.update(db, request(name, secret, [name], "192.0.2.2"), POLICY)
    assert second.dyndns2_line() == "good 192.0.2.2"
    assert await records(db, name, "A") == ("192.0.2.2",)


async def test_plan_quota_for_hosts_and_groups(db: Database) -> None:
    from homing.domain.errors import QuotaExceeded

    await setup_host(db, "h0.dyn.example.net")  # the free plan allows 5 hosts and 2 groups
    for i in range(1, 5):
        await hosts.add_host(db, f"h{i}.dyn.example.net", "alice")
    with pytest.raises(QuotaExceeded, match="5 hosts"):
        await hosts.add_host(db, "h5.dyn.example.net", "alice")
    await hosts.add_host(db, "h5.dyn.example.net", "alice", enforce_quota=False)  # the operator may
    await hosts.add_group(db, "g1.dyn.example.net", "alice")
    await hosts.add_group(db, "g2", "alice")
    with pytest.raises(QuotaExceeded, match="2 groups"):
        await hosts.add_group(db, "g3", "alice")


async def test_concurrent_requests_in_one_batch(db: Database) -> None:
    import asyncio

    a = await setup_host(db, "a.dyn.example.net")
    b = (await hosts.add_host(db, "b.dyn.example.net", "alice")).secret
    group = await hosts.add_group(db, "pool.dyn.example.net", "alice", ["b.dyn.example.net"])
    calls = [
        request("a.dyn.example.net", a, None, "192.0.2.1"),
        request("a.dyn.example.net", a, None, "192.0.2.2"),  # the same host again, later value
        request("a.dyn.example.net", "wrong", None, "192.0.2.3"),
        request("b.dyn.example.net", b, ["b.dyn.example.net", "a.dyn.example.net"], "192.0.2.4"),
        request("pool.dyn.example.net", group.secret, None, "192.0.2.5"),
        request("nobody.dyn.example.net", "x", None, "192.0.2.6"),
    ]
    results = await asyncio.gather(*(updates.update(db, c, POLICY) for c in calls))
    lines = [[r.dyndns2_line() for r in result] for result in results]
    assert lines[0] == ["good 192.0.2.1"]
    assert lines[1] == ["good 192.0.2.2"]
    assert lines[2] == ["badauth"]
    assert lines[3] == ["good 192.0.2.4", "nohost"]
    assert lines[4][0] in ("good 192.0.2.5", "nochg 192.0.2.5")
    assert lines[5] == ["nohost"]
    assert await records(db, "a.dyn.example.net", "A") == ("192.0.2.2",)

    async def journal_actors(conn: sa.ext.asyncio.AsyncConnection) -> list[str]:
        rows = await conn.execute(
            sa.select(journal.c.actor).where(journal.c.name == "a.dyn.example.net")
        )
        return [r.actor for r in rows]

    assert all(actor.startswith("a.dyn.example.net@") for actor in await db.read(journal_actors))
