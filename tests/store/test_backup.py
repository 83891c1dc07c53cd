"""Backup and restore: a consistent dump of the whole store, restored into SQLite or
PostgreSQL whichever it came from; the restored store serves the same answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import pytest
import sqlalchemy as sa

from homing.dns.answer import answer
from homing.dns.index import ZoneIndex
from homing.domain.records import RRsetValue
from homing.service import accounts, hosts, zones
from homing.service.backup import BackupError, backup, restore
from homing.service.changes import ZoneRef, apply_changes
from homing.service.journal import Follower
from homing.store.db import Database, Txn, as_utc
from homing.store.schema import backed_up_tables
from tests.conftest import _drop_schema, _postgres_database

ZONE = "dyn.example.net"
NAMES = [f"h{i}.{ZONE}" for i in range(5)]


@pytest.fixture
async def other(db: Database, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty store on the other database than `db`."""
    if db.is_sqlite:
        target = await _postgres_database()
    else:
        target = Database(f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}")
        await target.migrate()
    try:
        yield target
    finally:
        if not target.is_sqlite:
            await _drop_schema(target)
        await target.close()


async def fill(db: Database) -> ZoneRef:
    zone = await zones.add_zone(db, ZONE)
    await accounts.create_account(db, "alice", "alice@example.org", "correct horse battery")
    for name in NAMES:
        await hosts.add_host(db, name, "alice")
    for round_ in range(3):  # a journal with history, not only the latest values

        async def unit(txn: Txn, round_: int = round_) -> None:
            values = [
                RRsetValue(name, "A", 60, (f"192.0.2.{10 * i + round_}",))
                for i, name in enumerate(NAMES)
            ]
            await apply_changes(txn, zone, values, actor="test", via="test")

        await db.write(unit)
    return zone


async def contents(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    async def read(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
        found = {}
        for table in backed_up_tables():
            rows = await conn.execute(sa.select(table))
            found[table.name] = sorted(
                (tuple(as_utc(v) if hasattr(v, "tzinfo") else v for v in row) for row in rows),
                key=repr,
            )
        return found

    return await db.read(read)


async def answers(db: Database) -> list[tuple[str, list[str]]]:
    index = ZoneIndex()
    await Follower(db, index).sync()
    got = []
    for name in [ZONE, *NAMES, f"missing.{ZONE}"]:
        for rdtype in ("A", "SOA"):
            wire = answer(dns.message.make_query(name, rdtype).to_wire(), index, tcp=False)
            assert wire is not None
            reply = dns.message.from_wire(wire)
            got.append(
                (
                    f"{name} {rdtype} {dns.rcode.to_text(reply.rcode())}",
                    sorted(
                        r.to_text() for section in (reply.answer, reply.authority) for r in section
                    ),
                )  # fmt: skip
            )
    return got


async def test_backup_restores_into_the_other_database_and_back(
    db: Database, other: Database, tmp_path: Path
) -> None:
    await fill(db)
    first = tmp_path / "first.jsonl"
    summary = await backup(db, first)
    assert summary.rows["journal"] >= 3 * len(NAMES)
    assert summary.rows["hosts"] == len(NAMES)
    assert first.stat().st_mode & 0o777 == 0o600  # TSIG secrets, password hashes
    assert not first.with_name(first.name + ".partial").exists()
    header = json.loads(first.read_text().splitlines()[0])
    assert header["format"] == "homing-backup" and header["revision"] == summary.revision

    restored = await restore(other, first)
    assert restored.rows == summary.rows
    assert await contents(other) == await contents(db)
    assert await answers(other) == await answers(db)

    # Ids handed out after a restore do not collide with restored ones (PostgreSQL's
    # sequences moved past them).
    await hosts.add_host(other, f"new.{ZONE}", "alice", enforce_quota=False)

    # And back: the copy's backup restores over the original with --force.
    second = tmp_path / "second.jsonl"
    await backup(other, second)
    await restore(db, second, force=True)
    assert await answers(db) == await answers(other)


async def test_a_backup_taken_while_writing_is_consistent(db: Database, tmp_path: Path) -> None:
    """Each zone's serial in the backup is its journal's last serial in the backup, though
    updates commit all the while the backup is read."""
    zone = await fill(db)
    stop = asyncio.Event()
    written = 0

    async def writer() -> None:
        nonlocal written
        while not stop.is_set():
            value = RRsetValue(NAMES[0], "A", 60, (f"198.51.100.{written % 250 + 1}",))

            async def unit(txn: Txn, value: RRsetValue = value) -> None:
                await apply_changes(txn, zone, [value], actor="test", via="test")

            await db.write(unit)
            written += 1

    task = asyncio.create_task(writer())
    try:
        for i in range(3):
            path = tmp_path / f"busy-{i}.jsonl"
            await backup(db, path)
            tables: dict[str, list[dict[str, Any]]] = {}
            columns: list[str] = []
            for line in path.read_text().splitlines()[1:]:
                item = json.loads(line)
                if isinstance(item, dict) and "table" in item:
                    columns = item["columns"]
                    tables[item["table"]] = []
                    current = tables[item["table"]]
                elif isinstance(item, list):
                    current.append(dict(zip(columns, item, strict=True)))
            (zone_row,) = [z for z in tables["zones"] if z["name"] == ZONE]
            last = max(j["serial"] for j in tables["journal"] if j["zone_id"] == zone_row["id"])
            assert zone_row["serial"] == last
    finally:
        stop.set()
        await task
    assert written > 0


async def test_restore_refuses_a_store_with_data_and_changes_nothing(
    db: Database, other: Database, tmp_path: Path
) -> None:
    await fill(db)
    path = tmp_path / "backup.jsonl"
    await backup(db, path)
    await zones.add_zone(other, "other.example.org")
    before = await contents(other)
    with pytest.raises(BackupError, match="not empty"):
        await restore(other, path)
    assert await contents(other) == before


@pytest.mark.parametrize(
    "damage",
    ["cut", "count", "table", "header"],
)
async def test_restore_refuses_damaged_files_with_nothing_written(
    db: Database, other: Database, tmp_path: Path, damage: str
) -> None:
    await fill(db)
    path = tmp_path / "backup.jsonl"
    await backup(db, path)
    lines = path.read_text().splitlines()
    if damage == "cut":
        lines = lines[: len(lines) // 2]
    elif damage == "count":
        lines = lines[:-2] + lines[-1:]  # the last line before the end line gone
    elif damage == "table":
        lines.insert(1, json.dumps({"table": "not_ours", "columns": ["x"]}))
    else:
        lines[0] = json.dumps({"format": "something-else"})
    path.write_text("\n".join(lines) + "\n")
    before = await contents(other)
    with pytest.raises(BackupError):
        await restore(other, path)
    assert await contents(other) == before
