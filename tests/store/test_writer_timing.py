"""At DEBUG, SQLite's writer says where each batch's time went (bench/update_tail.py reads it)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest

from homing.store.db import Database, SyncTxn
from tests.store.test_writer import new_plan


class Inserts:
    def run_sync(self, txn: SyncTxn, items: list[str]) -> list[str]:
        for item in items:
            txn.conn.execute(new_plan(item))
        return items


async def test_a_sync_batch_logs_its_phases(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'homing.db'}")
    await db.migrate()
    try:
        with caplog.at_level(logging.DEBUG, logger="homing.store"):
            names = [f"p{i}" for i in range(5)]
            done = await asyncio.gather(*(db.write_batched_sync(Inserts(), n) for n in names))
        assert done == names
        lines = [r.getMessage() for r in caplog.records]
        batches = [m for m in lines if m.startswith("SQLite batch of ")]
        calls = [m for m in lines if m.startswith("writer call: ")]
        assert batches and calls
        assert sum(int(m.split()[3].rstrip(":")) for m in batches) == len(names)
        for line in calls:
            assert re.fullmatch(
                r"writer call: queued [\d.]+ ms, ran [\d.]+ ms, heard [\d.]+ ms", line
            )
    finally:
        await db.close()
