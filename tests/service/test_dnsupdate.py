"""RFC 2136 semantics over the store: prerequisites, operations, key scope, apex protection."""

from __future__ import annotations

import dns.rcode
import pytest
import sqlalchemy as sa

from homing.service import zones
from homing.service.changes import current_rrset
from homing.service.dnsupdate import (
    Operation,
    Prerequisite,
    UpdateRefused,
    UpdateScope,
    apply_update,
)
from homing.store.db import Database, Txn

ZONE = "dyn.example.net"
ZONE_KEY = UpdateScope(ZONE)


async def rdatas(db: Database, name: str, rtype: str) -> tuple[str, ...]:
    async def read(conn: sa.ext.asyncio.AsyncConnection) -> tuple[str, ...]:
        zone = await zones.get_zone(conn, ZONE)
        value = await current_rrset(Txn(conn, None), zone, name, rtype)  # type: ignore[arg-type]
        return value.rdatas if value else ()

    return await db.read(read)


async def update(
    db: Database, prereqs: list[Prerequisite], ops: list[Operation], scope: UpdateScope = ZONE_KEY
) -> int:
    return await apply_update(db, ZONE, prereqs, ops, scope, actor="test")


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


async def test_host_key_scope(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    host = f"cam.{ZONE}"
    scope = UpdateScope(ZONE, host)
    await update(db, [], [Operation("add", host, "TXT", 60, '"hello"')], scope)
    assert await rdatas(db, host, "TXT") == ('"hello"',)
    with pytest.raises(UpdateRefused) as other:
        await update(db, [], [Operation("add", f"other.{ZONE}", "A", 60, "192.0.2.1")], scope)
    assert other.value.rcode == dns.rcode.Rcode.REFUSED
    with pytest.raises(UpdateRefused):
        await update(db, [], [Operation("add", host, "MX", 60, "10 mail.example.")], scope)
    with pytest.raises(UpdateRefused) as outside:
        await update(db, [], [Operation("add", "cam.elsewhere.example", "A", 60, "192.0.2.1")])
    assert outside.value.rcode == dns.rcode.Rcode.NOTZONE


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
