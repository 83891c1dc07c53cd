"""A zone imported from a file keeps serving after the file's SOA serial (RFC 1982), so
the secondaries of a zone moved from another primary keep following it."""

from __future__ import annotations

from pathlib import Path

import dns.serial
import pytest
import sqlalchemy as sa

from homing.domain.records import RRsetValue
from homing.service import imports
from homing.service.changes import apply_change
from homing.service.zones import get_zone
from homing.store.db import Database, Txn
from homing.store.schema import zones

ZONE = "moved.example"
FILE_SERIAL = 2024010101


def zone_file(serial: int, *, address: str = "192.0.2.80") -> str:
    return (
        f"$ORIGIN {ZONE}.\n$TTL 300\n"
        f"@ IN SOA ns1.{ZONE}. admin.{ZONE}. {serial} 7200 900 604800 120\n"
        f"@ IN NS ns1.{ZONE}.\nns1 IN A 192.0.2.53\nwww IN A {address}\n"
    )


def after(a: int, b: int) -> bool:
    """RFC 1982: the served form of stored serial `a` is after that of `b`."""
    return bool(dns.serial.Serial(a % 2**32) > dns.serial.Serial(b % 2**32))


async def stored_serial(db: Database) -> int:
    async def read(conn: sa.ext.asyncio.AsyncConnection) -> int:
        serial = await conn.scalar(sa.select(zones.c.serial).where(zones.c.name == ZONE))
        assert serial is not None
        return int(serial)

    return await db.read(read)


async def change_www(db: Database, address: str) -> None:
    async def unit(txn: Txn) -> None:
        zone = await get_zone(txn.conn, ZONE)
        value = RRsetValue(f"www.{ZONE}", "A", 300, (address,))
        assert await apply_change(txn, zone, value, actor="test", via="test") is not None

    await db.write(unit)


async def imported(db: Database, tmp_path: Path, text: str) -> int:
    path = tmp_path / "zone"
    path.write_text(text)
    await imports.import_zone(db, ZONE, path)
    return await stored_serial(db)


@pytest.mark.parametrize(
    ("stored", "file_serial", "expected"),
    [
        (None, 5, 6),  # a new zone: one past the file's
        (None, 2**32 - 1, 2**32),  # served as 0, after 2**32 - 1
        (10, 5, None),  # already after the file's: kept
        (6, 5, None),  # there already
        (3, 5, 6),
        (2**32 + 3, 5, 2**32 + 6),  # the store's count is past one wrap
        (7, 2**32 - 2, None),  # 7 is after 2**32 - 2 (across the wrap): kept
        (2**32 - 2, 5, 2**32 + 6),  # behind across the wrap: served as 6
        (0, 2**31 - 1, 2**31 - 1),  # one past is opposite: the largest step allowed
    ],
)
def test_the_serial_an_import_takes(stored: int | None, file_serial: int, expected: int) -> None:
    serial = imports.serial_for_import(stored, file_serial)
    assert serial == expected
    if serial is not None and stored is not None:
        assert serial > stored and serial - stored <= 2**31 - 1  # RFC 1982 3.1
    if serial is not None and expected != 2**31 - 1:
        assert after(serial, file_serial)


async def test_a_new_zone_serves_after_the_files_serial(db: Database, tmp_path: Path) -> None:
    serial = await imported(db, tmp_path, zone_file(FILE_SERIAL))
    assert after(serial, FILE_SERIAL)
    # Later changes move on from there, never back.
    await change_www(db, "192.0.2.81")
    assert await stored_serial(db) == serial + 1


async def test_importing_into_a_zone_never_moves_its_serial_back(
    db: Database, tmp_path: Path
) -> None:
    first = await imported(db, tmp_path, zone_file(FILE_SERIAL))
    # An older file (the same one, or an earlier export): the serial goes on as changes do.
    again = await imported(db, tmp_path, zone_file(FILE_SERIAL - 100, address="192.0.2.99"))
    assert again == first + 1  # one changed RRset, no jump
    # A newer file from the old primary: past its serial, with its changes on top.
    newer = FILE_SERIAL + 5000
    latest = await imported(db, tmp_path, zone_file(newer, address="192.0.2.100"))
    assert after(latest, newer) and latest > again
