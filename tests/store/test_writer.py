"""The group-committing writer: batched units share one transaction, failures stay their own."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from homing.domain.errors import HomingError
from homing.store.db import Database, Txn
from homing.store.schema import plans


class Recorder:
    """Inserts one plan per item; an item named 'bad' raises, like a caller's invalid input."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def run(self, txn: Txn, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        for item in items:
            if item == "bad":
                raise HomingError("bad item")
            await txn.conn.execute(
                sa.insert(plans).values(
                    name=item,
                    max_hosts=1,
                    max_groups=1,
                    min_interval=0,
                    custom_ttl=False,
                    price_cents=0,
                    currency="EUR",
                    period="month",
                    is_default=False,
                )
            )
        return [f"done {item}" for item in items]


async def plan_names(db: Database) -> set[str]:
    async def read(conn: sa.ext.asyncio.AsyncConnection) -> set[str]:
        return {row.name for row in await conn.execute(sa.select(plans.c.name))}

    return await db.read(read)


async def test_waiting_items_run_as_one_call(db: Database) -> None:
    recorder = Recorder()
    results = await asyncio.gather(*(db.write_batched(recorder, f"p{i}") for i in range(20)))
    assert results == [f"done p{i}" for i in range(20)]
    assert len(recorder.calls) < 20  # they waited together at least once
    assert sum(len(call) for call in recorder.calls) == 20
    assert {f"p{i}" for i in range(20)} <= await plan_names(db)


async def test_one_bad_item_fails_alone(db: Database) -> None:
    recorder = Recorder()
    names = ["a1", "a2", "bad", "a3"]
    outcomes = await asyncio.gather(
        *(db.write_batched(recorder, n) for n in names), return_exceptions=True
    )
    assert outcomes[:2] == ["done a1", "done a2"] and outcomes[3] == "done a3"
    assert isinstance(outcomes[2], HomingError)
    stored = await plan_names(db)
    assert {"a1", "a2", "a3"} <= stored and "bad" not in stored


async def test_units_and_batches_mix(db: Database) -> None:
    recorder = Recorder()

    async def unit(txn: Txn) -> str:
        await txn.conn.execute(
            sa.update(plans).where(plans.c.name == "free").values(price_cents=500)
        )
        return "unit"

    results = await asyncio.gather(
        db.write_batched(recorder, "m1"), db.write(unit), db.write_batched(recorder, "m2")
    )
    assert results == ["done m1", "unit", "done m2"]
    with pytest.raises(HomingError):
        await db.write_batched(recorder, "bad")
