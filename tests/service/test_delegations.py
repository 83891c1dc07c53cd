"""Delegations in the store: zone files with cuts, `zone delegate`/`undelegate`, and no NS
for users' host keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from homing.dns.index import ZoneIndex
from homing.domain.errors import HomingError
from homing.service import accounts, delegations, hosts, zones
from homing.service.dnsupdate import Operation, UpdateRefused, UpdateScope, apply_update
from homing.service.imports import import_zone
from homing.service.journal import load_zone
from homing.store.db import Database
from homing.store.schema import journal
from homing.store.schema import zones as zones_table

ZONE = "parent.example"

ZONE_FILE = """\
$ORIGIN parent.example.
$TTL 300
@          IN SOA ns1 hostmaster 1 7200 900 604800 120
@          IN NS  ns1
ns1        IN A   192.0.2.53
www        IN A   192.0.2.80
child      IN NS  ns1.child
child      IN NS  ns2.sib
child      IN DS  12345 13 2 {digest}
ns1.child  IN A   192.0.2.10
ns1.child  IN AAAA 2001:db8::10
sib        IN NS  ns2.sib
ns2.sib    IN A   192.0.2.20
""".replace("{digest}", "ab" * 32)


async def contents(db: Database) -> dict[tuple[str, str], tuple[str, ...]]:
    async def read(conn: sa.ext.asyncio.AsyncConnection) -> dict[tuple[str, str], tuple[str, ...]]:
        zone_id = await conn.scalar(sa.select(zones_table.c.id).where(zones_table.c.name == ZONE))
        if zone_id is None:
            return {}
        _, _, values = await load_zone(conn, zone_id)
        return {(v.name, v.rtype): v.rdatas for v in values}

    return await db.read(read)


async def journal_size(db: Database) -> int:
    return int(
        await db.read(lambda conn: conn.scalar(sa.select(sa.func.count()).select_from(journal)))
    )


async def test_a_zone_file_with_delegations_loads_them(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "parent.zone"
    path.write_text(ZONE_FILE)
    await accounts.create_account(db, "operator", "op@example.org", "operator password")
    result = await import_zone(db, ZONE, path, owner="operator")
    assert result.delegations == 2
    assert sorted(name for name, _ in result.secrets) == [f"ns1.{ZONE}", f"www.{ZONE}"]  # no glue
    stored = await contents(db)
    assert stored[(f"child.{ZONE}", "NS")] == (f"ns1.child.{ZONE}.", f"ns2.sib.{ZONE}.")
    assert stored[(f"ns2.sib.{ZONE}", "A")] == ("192.0.2.20",)


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("www.child IN A 192.0.2.99", "www.child.parent.example A"),
        ("child IN A 192.0.2.99", "child.parent.example A"),
        ("ns1.child IN TXT hello", "ns1.child.parent.example TXT"),
        ("deep.child IN NS ns.example.org.", "deep.child.parent.example NS"),
        ("*.child IN A 192.0.2.99", "*.child.parent.example A"),
    ],
)
async def test_a_zone_file_with_data_below_a_cut_is_refused(
    db: Database, tmp_path: Path, line: str, named: str
) -> None:
    path = tmp_path / "parent.zone"
    path.write_text(ZONE_FILE + line + "\n")
    with pytest.raises(HomingError) as refused:
        await import_zone(db, ZONE, path)
    message = str(refused.value)
    assert named in message and "child.parent.example" in message and "\n" not in message
    assert await contents(db) == {}  # nothing stored, not even the zone


async def test_delegate_and_undelegate(db: Database) -> None:
    await zones.add_zone(db, ZONE)
    before = await journal_size(db)
    done = await delegations.delegate(
        db, ZONE, "Child.parent.example", ["ns1.child.parent.example=192.0.2.10", "ns.example.org"]
    )
    assert done.child == f"child.{ZONE}" and done.changed == 2
    assert await journal_size(db) == before + 2  # journaled: secondaries get it by IXFR
    stored = await contents(db)
    assert stored[(f"child.{ZONE}", "NS")] == ("ns.example.org.", f"ns1.child.{ZONE}.")
    assert stored[(f"ns1.child.{ZONE}", "A")] == ("192.0.2.10",)

    async def index_of() -> ZoneIndex:
        async def read(conn: sa.ext.asyncio.AsyncConnection) -> ZoneIndex:
            zone_id = await conn.scalar(
                sa.select(zones_table.c.id).where(zones_table.c.name == ZONE)
            )
            meta, serial, values = await load_zone(conn, zone_id)
            index = ZoneIndex()
            index.put_zone(meta, serial, values)
            return index

        return await db.read(read)

    assert (await index_of()).zone(ZONE).cuts == {b"\x05child"}  # type: ignore[union-attr]
    gone = await delegations.undelegate(db, ZONE, f"child.{ZONE}")
    assert gone.changed == 2
    stored = await contents(db)
    assert (f"child.{ZONE}", "NS") not in stored and (f"ns1.child.{ZONE}", "A") not in stored
    assert (await index_of()).zone(ZONE).cuts == set()  # type: ignore[union-attr]
    with pytest.raises(HomingError, match="not delegated"):
        await delegations.undelegate(db, ZONE, f"child.{ZONE}")


@pytest.mark.parametrize(
    ("child", "ns", "reason"),
    [
        ("parent.example", ["ns.example.org"], "not a name below"),
        ("child.other.example", ["ns.example.org"], "not a name below"),
        ("child.parent.example", [], "at least one"),
        ("child.parent.example", ["ns1.child.parent.example"], "give its address"),
        ("child.parent.example", ["ns.example.org=192.0.2.1"], "needs no address"),
        ("cam.parent.example", ["ns.example.org"], "user's host"),
        ("parent.example.", ["ns.example.org"], "not a name below"),
        ("sub.www.parent.example", ["ns.example.org"], None),  # fine: www's data stays
        ("www.parent.example", ["ns.example.org"], "remove it"),
    ],
)
async def test_delegate_refusals_change_nothing(
    db: Database, child: str, ns: list[str], reason: str | None
) -> None:
    await zones.add_zone(db, ZONE)
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    await hosts.add_host(db, f"cam.{ZONE}", "alice")
    await delegations.delegate(db, ZONE, "other.parent.example", ["ns.example.org"])  # a sibling
    await add_www(db)
    before = await journal_size(db)
    if reason is None:
        await delegations.delegate(db, ZONE, child, ns)
        return
    with pytest.raises(HomingError, match=reason):
        await delegations.delegate(db, ZONE, child, ns)
    assert await journal_size(db) == before


async def add_www(db: Database) -> None:
    await apply_update(
        db,
        ZONE,
        [],
        [Operation("add", f"www.{ZONE}", "A", 60, "192.0.2.80")],
        UpdateScope(ZONE),
        actor="test",
    )


@pytest.mark.parametrize("below", [False, True])
async def test_a_host_key_cannot_delegate(db: Database, below: bool) -> None:
    """A user's host key adding NS at its own name (or below it) would take the name
    out of the operator's zone: refused, nothing changed."""
    await zones.add_zone(db, ZONE)
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    host = (await hosts.add_host(db, f"cam.{ZONE}", "alice")).name
    name = f"sub.{host}" if below else host
    before = await journal_size(db)
    with pytest.raises(UpdateRefused):
        await apply_update(
            db,
            ZONE,
            [],
            [Operation("add", name, "NS", 60, "ns.attacker.example.")],
            UpdateScope(ZONE, host),
            actor="test",
        )
    assert await journal_size(db) == before
    assert (name, "NS") not in await contents(db)


@pytest.mark.parametrize("label", ["child", "www.child"])
async def test_no_host_or_group_in_a_delegated_subzone(db: Database, label: str) -> None:
    """Names there are answered by other servers: a user's host would never be seen."""
    await zones.add_zone(db, ZONE)
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    await delegations.delegate(db, ZONE, f"child.{ZONE}", ["ns.example.org"])
    with pytest.raises(HomingError, match=f"lies in child.{ZONE}"):
        await hosts.add_host(db, f"{label}.{ZONE}", "alice")
    with pytest.raises(HomingError, match=f"lies in child.{ZONE}"):
        await hosts.add_group(db, f"{label}.{ZONE}", "alice")
    assert (await hosts.add_host(db, f"cam.{ZONE}", "alice")).name == f"cam.{ZONE}"
