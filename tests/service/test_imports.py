"""Bulk loading from a zone file and from a CSV of hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from homing.domain.errors import HomingError
from homing.domain.outcomes import Outcome
from homing.service import accounts, imports, updates, zones
from homing.service.journal import load_zone
from homing.store.db import Database
from homing.store.schema import zones as zones_table

ZONE_FILE = """\
$ORIGIN imported.example.
$TTL 300
@       IN SOA ns1.imported.example. admin.imported.example. 2024010101 7200 900 604800 120
@       IN NS  ns1.imported.example.
@       IN NS  ns2.other.example.
ns1     IN A   192.0.2.53
www     IN A   192.0.2.80
www     IN AAAA 2001:db8::80
cam     60 IN A 198.51.100.4
mail    IN MX  10 mx.imported.example.
txt     IN TXT "hello world"
"""


async def zone_contents(db: Database, name: str) -> dict[tuple[str, str], tuple[str, ...]]:
    async def read(conn: sa.ext.asyncio.AsyncConnection) -> dict[tuple[str, str], tuple[str, ...]]:
        zone_id = await conn.scalar(sa.select(zones_table.c.id).where(zones_table.c.name == name))
        meta, _, values = await load_zone(conn, zone_id)
        assert meta.refresh == 7200 and meta.minimum == 120
        return {(v.name, v.rtype): v.rdatas for v in values}

    return await db.read(read)


async def test_zone_file_with_hosts(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "imported.zone"
    path.write_text(ZONE_FILE)
    await accounts.create_account(db, "operator", "op@example.org", "operator password")
    result = await imports.import_zone(db, "imported.example", path, owner="operator")
    assert result.hosts == 3  # ns1, www, cam
    contents = await zone_contents(db, "imported.example")
    assert contents[("imported.example", "NS")] == ("ns1.imported.example.", "ns2.other.example.")
    assert contents[("www.imported.example", "AAAA")] == ("2001:db8::80",)
    assert contents[("txt.imported.example", "TXT")] == ('"hello world"',)
    # Importing again changes nothing and adds no host.
    again = await imports.import_zone(db, "imported.example", path, owner="operator")
    assert (again.rrsets, again.hosts) == (0, 0)
    # The imported host's new secret works for an update.
    secret = dict(result.secrets)["cam.imported.example"]
    request = updates.UpdateRequest(
        "cam.imported.example",
        secret,
        None,
        updates.source_addresses("192.0.2.99"),
        "dyndns2",
        "192.0.2.99",
    )
    [answer] = await updates.update(db, request, updates.UpdatePolicy())
    assert answer.outcome is Outcome.GOOD


async def test_unreadable_zone_file(db: Database, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zone"
    bad.write_text("this is not a zone file\n")
    with pytest.raises(HomingError):
        await imports.import_zone(db, "bad.example", bad)


async def test_host_csv(db: Database) -> None:
    await zones.add_zone(db, "dyn.example.net")
    await accounts.create_account(db, "alice", "alice@example.org", "alice password")
    text = (
        "name,owner,ipv4,ipv6,ttl,secret\n"
        "a.dyn.example.net,alice,192.0.2.1,,120,\n"
        "b.dyn.example.net,,,2001:db8::b,,kept-secret-from-old-provider\n"
    )
    result = await imports.import_hosts(db, text, default_owner="alice")
    assert result.hosts == 2 and result.rrsets == 2
    assert [name for name, _ in result.secrets] == ["a.dyn.example.net"]
    request = updates.UpdateRequest(
        "b.dyn.example.net",
        "kept-secret-from-old-provider",
        None,
        updates.source_addresses("2001:db8::c"),
        "dyndns2",
        "::1",
    )
    [answer] = await updates.update(db, request, updates.UpdatePolicy())
    assert answer.outcome is Outcome.GOOD


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("host\nx\n", "header"),
        ("name,owner\nnot a name,alice\n", "line 2"),
        ("name,owner,ipv4\na.dyn.example.net,alice,2001:db8::1\n", "line 2"),
        ("name\na.dyn.example.net\n", "no owner"),
        ("name,owner\na.elsewhere.example,alice\n", "not in a zone"),
    ],
)
async def test_bad_csv_changes_nothing(db: Database, text: str, message: str) -> None:
    await zones.add_zone(db, "dyn.example.net")
    with pytest.raises(HomingError, match=message):
        await imports.import_hosts(db, text)
    assert await accounts.user_id_available(db, "alice")
