"""The group-committing writer: batched units share one transaction, failures stay their own."""

from __future__ import annotations

import asyncio
import secrets
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from homing.domain.errors import HomingError
from homing.service.journal import entries_after
from homing.store import db as db_module
from homing.store.db import Database, SyncTxn, Txn
from homing.store.schema import plans
from tests.store.test_execute_many import sent_to_asyncpg


def new_plan(name: str) -> sa.Insert:
    return sa.insert(plans).values(
        name=name,
        max_hosts=1,
        max_groups=1,
        min_interval=0,
        custom_ttl=False,
        price_cents=0,
        currency="EUR",
        period="month",
        is_default=False,
    )


class Recorder:
    """Inserts one plan per item; an item named 'bad' raises, like a caller's invalid input."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def run(self, txn: Txn, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        for item in items:
            if item == "bad":
                raise HomingError("bad item")
            await txn.conn.execute(new_plan(item))
        return [f"done {item}" for item in items]


class SyncRecorder:
    """The same, synchronous (run_sync in the writer's transaction, on either store)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def run_sync(self, txn: SyncTxn, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        for item in items:
            if item == "bad":
                raise HomingError("bad item")
            txn.conn.execute(new_plan(item))
            txn.emit(item)
        return [f"sync {item}" for item in items]


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


async def test_sync_batches_commit_and_fail_alone(db: Database) -> None:
    recorder = SyncRecorder()
    committed: list[list[str]] = []
    db.on_commit.append(committed.append)
    names = [f"s{i}" for i in range(20)] + ["bad"]
    outcomes = await asyncio.gather(
        *(db.write_batched_sync(recorder, n) for n in names), return_exceptions=True
    )
    assert outcomes[:20] == [f"sync s{i}" for i in range(20)]
    assert isinstance(outcomes[20], HomingError)
    assert max(len(call) for call in recorder.calls) > 1  # they waited together at least once
    stored = await plan_names(db)
    assert {f"s{i}" for i in range(20)} <= stored and "bad" not in stored
    # The hooks saw each committed item once, and never the rolled-back one.
    assert sorted(x for batch in committed for x in batch) == sorted(names[:20])


async def test_sync_and_async_work_mix(db: Database) -> None:
    sync_recorder, recorder = SyncRecorder(), Recorder()

    async def unit(txn: Txn) -> str:
        await txn.conn.execute(new_plan("u1"))
        return "unit"

    results = await asyncio.gather(
        db.write_batched_sync(sync_recorder, "x1"),
        db.write_batched(recorder, "x2"),
        db.write(unit),
        db.write_batched_sync(sync_recorder, "x3"),
    )
    assert results == ["sync x1", "done x2", "unit", "sync x3"]
    assert {"x1", "x2", "u1", "x3"} <= await plan_names(db)


class Holding:
    """Inserts one plan per item; the item 'held' keeps its transaction open until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.calls: list[list[str]] = []

    async def run(self, txn: Txn, items: list[str]) -> list[str]:
        self.calls.append(list(items))
        for item in items:
            if item == "held":
                self.entered.set()
                await self.release.wait()
            await txn.conn.execute(new_plan(item))
        return items


# SQLite has one writer: one transaction at a time, so this is PostgreSQL's alone.
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_postgresql_takes_the_next_batch_once_the_first_sends_its_commit(
    db: Database,
) -> None:
    holding = Holding()
    first = asyncio.create_task(db.write_batched(holding, "held"))
    await holding.entered.wait()
    # The first transaction still runs its statements: a place is free for a second, but
    # the writer leaves the next job waiting, to join whatever comes until that COMMIT.
    second = asyncio.create_task(db.write_batched(holding, "after"))
    for _ in range(20):
        await asyncio.sleep(0)  # the writer's turns: it takes nothing meanwhile
    assert len(db._pending) == 1 and not second.done()
    assert holding.calls == [["held"]]
    holding.release.set()
    assert await first == "held"
    assert await asyncio.wait_for(second, 60) == "after"
    assert holding.calls == [["held"], ["after"]]
    assert await plan_names(db) >= {"held", "after"}


class Entering(Recorder):
    """A Recorder that says when each batch enters."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Queue[list[str]]()

    async def run(self, txn: Txn, items: list[str]) -> list[str]:
        self.entered.put_nowait(list(items))
        return await super().run(txn, items)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_postgresql_starts_a_second_transaction_only_for_half_a_batch(
    db: Database,
) -> None:
    # The first batch's COMMIT is held on PostgreSQL itself: a deferred trigger on its
    # row 'held' waits for an advisory lock this test holds.
    key = secrets.randbits(31)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN PERFORM pg_advisory_xact_lock({key}); RETURN NULL; END $$"
            )
        )
        await conn.execute(
            sa.text(
                "CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON plans "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.name = 'held') "
                "EXECUTE FUNCTION hold_commit()"
            )
        )
    recorder = Entering()
    async with db.engine.connect() as holder:
        await holder.execute(sa.text(f"SELECT pg_advisory_lock({key})"))
        first = [
            asyncio.create_task(db.write_batched(recorder, name))
            for name in ("held", "a", "b", "c")
        ]
        assert await asyncio.wait_for(recorder.entered.get(), 60) == ["held", "a", "b", "c"]
        assert db._executing is not None
        await asyncio.wait_for(asyncio.shield(db._executing), 60)  # its COMMIT is sent
        # One job is too few to be worth a transaction beside that batch of four: it
        # waits, though a place is free.
        later = [asyncio.create_task(db.write_batched(recorder, "after1"))]
        for _ in range(20):
            await asyncio.sleep(0)  # the writer's turns: it takes nothing meanwhile
        assert len(db._pending) == 1 and recorder.entered.empty()
        # Two, half the batch in flight, are: they go while its COMMIT still waits.
        later.append(asyncio.create_task(db.write_batched(recorder, "after2")))
        assert await asyncio.wait_for(recorder.entered.get(), 60) == ["after1", "after2"]
        assert await asyncio.wait_for(asyncio.gather(*later), 60) == ["done after1", "done after2"]
        assert not any(task.done() for task in first)
        await holder.execute(sa.text(f"SELECT pg_advisory_unlock({key})"))
        await holder.commit()
    assert await asyncio.wait_for(asyncio.gather(*first), 60) == [
        "done held",
        "done a",
        "done b",
        "done c",
    ]
    assert await plan_names(db) >= {"held", "a", "b", "c", "after1", "after2"}


async def test_closing_settles_the_callers_of_a_transaction_in_flight(db: Database) -> None:
    holding = Holding()
    first = asyncio.create_task(db.write_batched(holding, "held"))
    await holding.entered.wait()
    await db.close()
    with pytest.raises((HomingError, asyncio.CancelledError)):
        await first
    assert "held" not in await plan_names(db)


class _ThreadName:
    """A SyncBatcher answering with the name of the thread its batch ran on."""

    def run_sync(self, txn: SyncTxn, items: list[str]) -> list[str]:
        txn.conn.execute(new_plan(items[0]))
        return [threading.current_thread().name for _ in items]


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_postgresql_runs_update_batches_on_a_loop_of_their_own(db: Database) -> None:
    # Their round trips are not answered behind every HTTP request ready on the serving
    # loop; other writes stay on it.
    assert await db.write_batched_sync(_ThreadName(), "on-its-loop") == "homing-pg-writer"
    assert "on-its-loop" in await plan_names(db)

    async def unit(txn: Txn) -> str:
        await txn.conn.execute(new_plan("on-this-loop"))
        return threading.current_thread().name

    assert await db.write(unit) == threading.current_thread().name
    thread = next(t for t in threading.enumerate() if t.name == "homing-pg-writer")
    await db.close()
    assert not thread.is_alive()


class _Backend:
    """A SyncBatcher answering with the PostgreSQL backend its batch ran on; an item named
    'bad' fails its transaction."""

    def run_sync(self, txn: SyncTxn, items: list[str]) -> list[int]:
        if "bad" in items:
            txn.conn.execute(new_plan("twice"))
            txn.conn.execute(new_plan("twice"))  # a unique name: the transaction fails
        pid = txn.conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        return [pid for _ in items]


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_postgresql_keeps_its_batch_connection_between_batches(
    db: Database,
) -> None:
    backend = _Backend()
    first = await db.write_batched_sync(backend, "one")
    assert db._batch_engine is not None
    assert db._batch_engine.pool.checkedout() == 1  # kept out between batches
    assert await db.write_batched_sync(backend, "two") == first
    with pytest.raises(HomingError):
        await db.write_batched_sync(backend, "bad")
    after = await db.write_batched_sync(backend, "three")  # given back, rolled back
    assert await db.write_batched_sync(backend, "four") == after
    assert "twice" not in await plan_names(db)
    await db.close()
    assert db._batch_engine is None


async def _state(db: Database, pid: int) -> str:
    query = sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
    return str(await db.read(lambda conn: conn.scalar(query, {"pid": pid})))


class _Planned(_Backend):
    """A _Backend that also adds a plan named after each item."""

    def run_sync(self, txn: SyncTxn, items: list[str]) -> list[int]:
        for item in items:
            txn.conn.execute(new_plan(item))
        return super().run_sync(txn, items)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_postgresql_begins_each_batch_with_the_commit_before_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = sent_to_asyncpg(monkeypatch, control=True)  # each BEGIN and COMMIT message
    monkeypatch.setattr(db_module, "BEGUN_IDLE", 600.0)  # longer than the test
    backend = _Planned()
    pid = await db.write_batched_sync(backend, "one")
    assert sent == ["BEGIN", "COMMIT; BEGIN"]
    assert await _state(db, pid) == "idle in transaction"  # begun for the next batch
    sent.clear()
    assert await db.write_batched_sync(backend, "two") == pid
    assert sent == ["COMMIT; BEGIN"]  # no BEGIN of its own: a round trip less
    # A batch that fails is undone whole in that transaction; its connection is dropped.
    with pytest.raises(HomingError):
        await db.write_batched_sync(backend, "bad")
    assert "twice" not in await plan_names(db)
    # No batch for BEGUN_IDLE: the transaction begun for the next one ends.
    monkeypatch.setattr(db_module, "BEGUN_IDLE", 0.05)
    sent.clear()
    pid = await db.write_batched_sync(backend, "three")
    assert sent[:2] == ["BEGIN", "COMMIT; BEGIN"]
    deadline = asyncio.get_running_loop().time() + 30
    while await _state(db, pid) != "idle":
        assert asyncio.get_running_loop().time() < deadline, await _state(db, pid)
        await asyncio.sleep(0.02)
    assert sent == ["BEGIN", "COMMIT; BEGIN", "COMMIT"]
    sent.clear()
    assert await db.write_batched_sync(backend, "four") == pid
    assert sent[:2] == ["BEGIN", "COMMIT; BEGIN"]
    assert await plan_names(db) >= {"one", "two", "three", "four"}


class _Counted(_Planned):
    """A _Planned that counts the transactions it ran in (each run_sync call is one)."""

    def __init__(self) -> None:
        self.transactions = 0

    def run_sync(self, txn: SyncTxn, items: list[str]) -> list[int]:
        self.transactions += 1
        return super().run_sync(txn, items)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_postgresql_sends_no_batch_on_a_connection_the_server_ended(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the kept connection while it waits for the next batch (a restart,
    or its idle_in_transaction_session_timeout): the next batch goes whole on a new
    connection, not first on the dead one and then job by job."""
    monkeypatch.setattr(db_module, "BEGUN_IDLE", 600.0)  # kept, begun, for the whole test
    backend = _Counted()
    pid = await db.write_batched_sync(backend, "one")
    [kept] = db._batch_conns
    driver: Any = kept.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    # The driver tells its termination listeners on the batch loop, once it has marked
    # the connection closed.
    heard = asyncio.Event()
    here = asyncio.get_running_loop()
    driver.add_termination_listener(lambda _: here.call_soon_threadsafe(heard.set))
    ended = sa.text("SELECT pg_terminate_backend(:pid)")
    assert await db.read(lambda conn: conn.scalar(ended, {"pid": pid}))
    await asyncio.wait_for(heard.wait(), 30)
    assert driver.is_closed()
    backend.transactions = 0
    names = [f"after-{i}" for i in range(5)]
    pids = await asyncio.gather(*(db.write_batched_sync(backend, name) for name in names))
    assert backend.transactions == 1, "the batch was sent on the dead connection first"
    assert len(set(pids)) == 1 and pids[0] != pid
    assert await plan_names(db) >= {"one", *names}


def _driver_executes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of each asyncpg Connection.execute (BEGIN, COMMIT, ROLLBACK among them)."""
    import asyncpg  # type: ignore[import-untyped]

    sent: list[str] = []
    execute = asyncpg.Connection.execute

    async def recorded(self: object, query: str, *args: object, **kwargs: object) -> object:
        sent.append(query)
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", recorded)
    return sent


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_postgresql_reads_without_begin_or_rollback(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await db.write(lambda txn: txn.conn.execute(new_plan("read-me")))
    sent = _driver_executes(monkeypatch)
    assert "read-me" in await plan_names(db)
    # A statement compiled once and handed to the driver (a follow pass's) neither.
    assert await db.read(lambda conn: entries_after(conn, 0, "none.example", 0)) == []
    assert not sent  # each statement its own transaction: two round trips fewer

    async def one_snapshot(conn: sa.ext.asyncio.AsyncConnection) -> object:
        # A unit asking for REPEATABLE READ still reads from one snapshot: its first
        # statement's, taken before the write below commits.
        await conn.execution_options(isolation_level="REPEATABLE READ")
        await conn.execute(sa.select(plans.c.name))
        await db.write(lambda txn: txn.conn.execute(new_plan("meanwhile")))
        return await conn.scalar(sa.select(plans.c.name).where(plans.c.name == "meanwhile"))

    assert await db.read(one_snapshot) is None
    assert "meanwhile" in await plan_names(db)
    assert any(query.startswith("BEGIN") for query in sent)
