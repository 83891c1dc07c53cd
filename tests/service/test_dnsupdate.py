"""RFC 2136 semantics over the store: prerequisites, operations, key scope, apex protection,
host keys' limits, address rules, and replayed signed UPDATEs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import dns.rcode
import pytest
import sqlalchemy as sa

from homing.service import accounts, hosts, zones
from homing.service.changes import current_rrset
from homing.service.dnsupdate import (
    Operation,
    Prerequisite,
    UpdateRefused,
    UpdateScope,
    apply_update,
)
from homing.service.replays import CLOCK_SKEW, Repeated, SignedRequest
from homing.store.db import Database, Txn
from homing.store.schema import accounts as accounts_table
from homing.store.schema import hosts as hosts_table
from homing.store.schema import journal, plans, rrsets, tsig_seen

ZONE = "dyn.example.net"
ZONE_KEY = UpdateScope(ZONE)


async def rdatas(db: Database, name: str, rtype: str) -> tuple[str, ...]:
    async def read(conn: sa.ext.asyncio.AsyncConnection) -> tuple[str, ...]:
        zone = await zones.get_zone(conn, ZONE)
        value = await current_rrset(Txn(conn, None), zone, name, rtype)  # type: ignore[arg-type]
        return value.rdatas if value else ()

    return await db.read(read)


async def update(
    db: Database,
    prereqs: list[Prerequisite],
    ops: list[Operation],
    scope: UpdateScope = ZONE_KEY,
    **kw: Any,
) -> int:
    return await apply_update(db, ZONE, prereqs, ops, scope, actor="test", **kw)


async def test_add_replace_delete(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    name = f"www.{ZONE}"
    assert (
        await update(
            db, [Prerequisite("name_absent", name)], [Operation("add", name, "A", 300, "192.0.2.1")]
        )
        == 1
    )
    await update(db, [], [Operation("add", name, "A", 300, "192.0.2.2")])
    assert await rdatas(db, name, "A") == ("192.0.2.1", "192.0.2.2")
    await update(
        db,
        [],
        [Operation("delete_rrset", name, "A"), Operation("add", name, "A", 300, "192.0.2.9")],
    )
    assert await rdatas(db, name, "A") == ("192.0.2.9",)
    await update(
        db,
        [Prerequisite("rrset_equals", name, "A", ("192.0.2.9",))],
        [Operation("delete_rr", name, "A", 0, "192.0.2.9")],
    )
    assert await rdatas(db, name, "A") == ()


@pytest.mark.parametrize(
    ("prerequisite", "rcode"),
    [
        (Prerequisite("name_in_use", f"nope.{ZONE}"), dns.rcode.Rcode.NXDOMAIN),
        (Prerequisite("name_absent", ZONE), dns.rcode.Rcode.YXDOMAIN),
        (Prerequisite("rrset_exists", ZONE, "MX"), dns.rcode.Rcode.NXRRSET),
        (Prerequisite("rrset_absent", ZONE, "NS"), dns.rcode.Rcode.YXRRSET),
        (Prerequisite("rrset_equals", ZONE, "NS", ("other.example.",)), dns.rcode.Rcode.NXRRSET),
    ],
)
async def test_failed_prerequisites_change_nothing(
    db: Database, prerequisite: Prerequisite, rcode: dns.rcode.Rcode
) -> None:
    await zones.add_zone(db, ZONE)
    with pytest.raises(UpdateRefused) as refused:
        await update(db, [prerequisite], [Operation("add", f"x.{ZONE}", "A", 60, "192.0.2.1")])
    assert refused.value.rcode == rcode
    assert await rdatas(db, f"x.{ZONE}", "A") == ()


async def host(db: Database, label: str = "cam", *, ttl: int = 60) -> UpdateScope:
    """A real host (owned by alice) and the scope of a key of it."""
    await zones.add_zone(db, ZONE, exist_ok=True)
    if await accounts.user_id_available(db, "alice"):
        await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    created = await hosts.add_host(db, f"{label}.{ZONE}", "alice", ttl=ttl)
    return UpdateScope(ZONE, created.name)


async def refused(
    db: Database, ops: list[Operation], scope: UpdateScope, **kw: Any
) -> dns.rcode.Rcode:
    serial = await journal_size(db)
    with pytest.raises(UpdateRefused) as caught:
        await update(db, [], ops, scope, **kw)
    assert await journal_size(db) == serial  # nothing changed
    return caught.value.rcode


async def journal_size(db: Database) -> int:
    return int(
        await db.read(lambda conn: conn.scalar(sa.select(sa.func.count()).select_from(journal)))
    )


async def set_status(db: Database, name: str, status: str) -> None:
    async def unit(txn: Txn) -> None:
        await txn.conn.execute(
            sa.update(hosts_table).where(hosts_table.c.name == name).values(status=status)
        )

    await db.write(unit)


async def test_host_key_scope(db: Database) -> None:
    scope = await host(db)
    name = scope.host
    assert name is not None
    await update(db, [], [Operation("add", name, "TXT", 60, '"hello"')], scope)
    assert await rdatas(db, name, "TXT") == ('"hello"',)
    acme = f"_acme-challenge.{name}"
    await update(db, [], [Operation("add", acme, "TXT", 60, '"token"')], scope)
    assert await rdatas(db, acme, "TXT") == ('"token"',)

    other = await host(db, "other")
    assert other.host is not None
    for ops in (
        [Operation("add", other.host, "A", 60, "192.0.2.1")],  # another host
        [Operation("delete_name", other.host)],
        [Operation("add", f"_acme-challenge.{other.host}", "TXT", 60, '"x"')],
        [Operation("add", f"www.{ZONE}", "A", 60, "192.0.2.1")],  # a new name
        [Operation("add", name, "MX", 60, "10 mail.example.")],  # a type it may not touch
        [Operation("add", name, "CNAME", 60, "elsewhere.example.")],
        [Operation("delete_rrset", name, "MX")],
        [Operation("add", acme, "A", 60, "192.0.2.1")],  # only TXT under _acme-challenge
        [Operation("add", f"x.{acme}", "TXT", 60, '"x"')],
        [Operation("add", ZONE, "TXT", 60, '"apex"')],
    ):
        assert await refused(db, ops, scope) == dns.rcode.Rcode.REFUSED, ops
    assert await rdatas(db, other.host, "A") == ()
    with pytest.raises(UpdateRefused) as outside:
        await update(db, [], [Operation("add", "cam.elsewhere.example", "A", 60, "192.0.2.1")])
    assert outside.value.rcode == dns.rcode.Rcode.NOTZONE


async def test_host_key_delete_name_spares_the_operators_records(db: Database) -> None:
    scope = await host(db)
    name = scope.host
    assert name is not None
    await update(
        db,
        [],
        [
            Operation("add", name, "MX", 300, f"10 mail.{ZONE}."),
            Operation("add", name, "A", 300, "192.0.2.1"),
            Operation("add", name, "TXT", 300, '"v=spf1 -all"'),
        ],
    )  # the operator's zone key
    await update(db, [], [Operation("delete_name", name)], scope)
    assert await rdatas(db, name, "A") == ()
    assert await rdatas(db, name, "TXT") == ()
    assert await rdatas(db, name, "MX") == (f"10 mail.{ZONE}.",)


async def test_host_key_records_take_the_hosts_ttl(db: Database) -> None:
    scope = await host(db, ttl=60)
    name = scope.host
    assert name is not None
    await update(db, [], [Operation("add", name, "A", 3600, "192.0.2.1")], scope)
    await update(db, [], [Operation("add", f"_acme-challenge.{name}", "TXT", 1, '"t"')], scope)

    async def ttls(conn: sa.ext.asyncio.AsyncConnection) -> set[int]:
        rows = await conn.execute(sa.select(rrsets.c.ttl).where(rrsets.c.name.like(f"%{name}")))
        return {row.ttl for row in rows}

    assert await db.read(ttls) == {60}


@pytest.mark.parametrize("status", ["blocked", "suspended", "disabled", "inactive"])
async def test_host_key_works_only_while_the_host_may_update(db: Database, status: str) -> None:
    scope = await host(db)
    name = scope.host
    assert name is not None
    await update(db, [], [Operation("add", name, "A", 60, "192.0.2.1")], scope)
    await set_status(db, name, status)
    for ops in (
        [Operation("delete_rrset", name, "A"), Operation("add", name, "A", 60, "203.0.113.9")],
        [Operation("delete_name", name)],
        [Operation("add", f"_acme-challenge.{name}", "TXT", 60, '"t"')],
    ):
        assert await refused(db, ops, scope) == dns.rcode.Rcode.REFUSED
    assert await rdatas(db, name, "A") == ("192.0.2.1",)
    await set_status(db, name, "active")
    await update(db, [], [Operation("delete_name", name)], scope)
    assert await rdatas(db, name, "A") == ()


async def test_host_key_keeps_the_plans_minimum_interval(db: Database) -> None:
    scope = await host(db)
    name = scope.host
    assert name is not None

    async def slow_plan(txn: Txn) -> None:
        conn = txn.conn
        plan = await conn.scalar(
            sa.insert(plans).values(name="slow", min_interval=3600).returning(plans.c.id)
        )
        await conn.execute(sa.update(accounts_table).values(plan_id=plan))

    await db.write(slow_plan)
    ops = [Operation("delete_rrset", name, "A"), Operation("add", name, "A", 60, "192.0.2.1")]
    await update(db, [], ops, scope)  # the first change
    assert await update(db, [], ops, scope) == 0  # the same again changes nothing: allowed
    again = [Operation("delete_rrset", name, "A"), Operation("add", name, "A", 60, "192.0.2.2")]
    assert await refused(db, again, scope) == dns.rcode.Rcode.REFUSED
    assert await rdatas(db, name, "A") == ("192.0.2.1",)
    acme = f"_acme-challenge.{name}"
    await update(db, [], [Operation("add", acme, "TXT", 60, '"t"')], scope)  # ACME: no pace
    await update(db, [], [Operation("delete_name", acme)], scope)
    await update(db, [], again)  # a zone key is the operator's: no plan applies


async def test_host_key_keeps_the_plans_challenge_limits(db: Database) -> None:
    scope = await host(db)
    acme = f"_acme-challenge.{scope.host}"

    async def small_plan(txn: Txn) -> None:
        conn = txn.conn
        plan = await conn.scalar(
            sa.insert(plans)
            .values(name="small", acme_values=2, acme_changes_per_hour=3)
            .returning(plans.c.id)
        )
        await conn.execute(sa.update(accounts_table).values(plan_id=plan))

    await db.write(small_plan)
    three = [Operation("add", acme, "TXT", 60, f'"v{i}"') for i in range(3)]
    assert await refused(db, three, scope) == dns.rcode.Rcode.REFUSED  # more values than 2
    await update(db, [], three[:2], scope)  # change 1
    await update(db, [], [Operation("delete_name", acme)], scope)  # change 2
    await update(db, [], three[:1], scope)  # change 3
    assert await refused(db, [Operation("delete_name", acme)], scope) == dns.rcode.Rcode.REFUSED
    assert await rdatas(db, acme, "TXT") == ('"v0"',)


@pytest.mark.parametrize(
    ("rtype", "value"),
    [
        ("A", "255.255.255.255"),
        ("A", "240.0.0.1"),
        ("A", "224.0.0.1"),
        ("A", "0.0.0.0"),
        ("A", "127.0.0.1"),
        ("A", "169.254.1.1"),
        ("AAAA", "::"),
        ("AAAA", "ff02::1"),
        ("AAAA", "::1"),
        ("AAAA", "fe80::1"),
    ],
)
async def test_addresses_follow_the_domain_rules(db: Database, rtype: str, value: str) -> None:
    await zones.add_zone(db, ZONE)
    name = f"www.{ZONE}"
    op = Operation("add", name, rtype, 60, value)
    assert await refused(db, [op], ZONE_KEY) == dns.rcode.Rcode.REFUSED
    assert await rdatas(db, name, rtype) == ()


async def test_local_addresses_when_the_operator_allows_them(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    name = f"lab.{ZONE}"
    ops = [
        Operation("add", name, "A", 60, "127.0.0.1"),
        Operation("add", name, "AAAA", 60, "fe80::1"),
    ]
    await update(db, [], ops, allow_local=True)
    assert await rdatas(db, name, "A") == ("127.0.0.1",)
    await update(db, [], [Operation("add", name, "A", 60, "10.1.2.3")])  # private: always
    assert await rdatas(db, name, "A") == ("10.1.2.3", "127.0.0.1")


def signed(mac: bytes, key: str = "zk") -> SignedRequest:
    return SignedRequest(key, mac, time.time() + 300)


async def test_a_replayed_update_is_answered_but_not_applied(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    name = f"www.{ZONE}"

    def set_a(address: str) -> list[Operation]:
        return [Operation("delete_rrset", name, "A"), Operation("add", name, "A", 60, address)]

    first, second = signed(b"\x01" * 32), signed(b"\x02" * 32)
    assert await update(db, [], set_a("192.0.2.1"), signed=first) == 1
    assert await update(db, [], set_a("192.0.2.2"), signed=second) == 1
    size = await journal_size(db)
    with pytest.raises(Repeated) as again:
        await update(db, [], set_a("192.0.2.1"), signed=first)
    assert again.value.rcode == dns.rcode.Rcode.NOERROR
    assert await rdatas(db, name, "A") == ("192.0.2.2",)
    assert await journal_size(db) == size
    # The same MAC under another key is another message.
    assert await update(db, [], set_a("192.0.2.3"), signed=signed(b"\x01" * 32, "other")) == 1


async def test_a_replayed_refusal_stays_refused(db: Database) -> None:
    """Refused while the host was blocked; a copy sent after the unblock is not applied late."""
    scope = await host(db)
    name = scope.host
    assert name is not None
    await update(db, [], [Operation("add", name, "A", 60, "192.0.2.1")], scope)
    await set_status(db, name, "blocked")
    captured = signed(b"\x03" * 32)
    ops = [Operation("delete_rrset", name, "A"), Operation("add", name, "A", 60, "203.0.113.9")]
    assert await refused(db, ops, scope, signed=captured) == dns.rcode.Rcode.REFUSED
    await set_status(db, name, "active")
    with pytest.raises(Repeated) as again:
        await update(db, [], ops, scope, signed=captured)
    assert again.value.rcode == dns.rcode.Rcode.REFUSED
    assert await rdatas(db, name, "A") == ("192.0.2.1",)


async def test_copies_racing_on_two_nodes_apply_once(db: Database) -> None:
    """Two nodes on one store get the same signed UPDATE at once: one applies it, the
    other answers its rcode, and the journal has one entry."""
    await zones.add_zone(db, ZONE)
    url = db.engine.url.render_as_string(hide_password=False)
    other = Database(url, schema=db.schema)
    try:
        name = f"race.{ZONE}"
        ops = [Operation("add", name, "TXT", 60, '"once"')]
        copy = signed(b"\x04" * 32)
        size = await journal_size(db)
        results = await asyncio.gather(
            *(
                apply_update(node, ZONE, [], ops, ZONE_KEY, actor="test", signed=copy)
                for node in (db, other, db, other)
            ),
            return_exceptions=True,
        )
        assert sorted(map(repr, results)) == sorted(
            [repr(1)] + [repr(Repeated(dns.rcode.Rcode.NOERROR))] * 3
        ), results
        assert await journal_size(db) == size + 1
    finally:
        await other.close()


async def test_remembered_answers_go_when_their_window_has_passed(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    old = SignedRequest("zk", b"\x05" * 32, time.time() - 2 * CLOCK_SKEW)
    name = f"w.{ZONE}"
    await update(db, [], [Operation("add", name, "TXT", 60, '"a"')], signed=old)
    await update(db, [], [Operation("add", name, "TXT", 60, '"b"')], signed=signed(b"\x06" * 32))

    async def macs(conn: sa.ext.asyncio.AsyncConnection) -> set[str]:
        return {row.mac for row in await conn.execute(sa.select(tsig_seen.c.mac))}

    assert await db.read(macs) == {(b"\x06" * 32).hex()}


async def test_apex_soa_and_ns_survive(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    ns = await rdatas(db, ZONE, "NS")
    await update(
        db,
        [],
        [
            Operation("delete_name", ZONE),
            Operation("delete_rrset", ZONE, "NS"),
            Operation("delete_rr", ZONE, "NS", 0, ns[0]),
        ],
    )
    assert await rdatas(db, ZONE, "NS") == ns


async def test_cname_never_shares_a_name(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    name = f"alias.{ZONE}"
    await update(db, [], [Operation("add", name, "CNAME", 60, f"www.{ZONE}.")])
    assert await update(db, [], [Operation("add", name, "A", 60, "192.0.2.1")]) == 0
    assert await rdatas(db, name, "A") == ()
