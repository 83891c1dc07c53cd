"""The database handle: SQLite and PostgreSQL engines, migrations, the group-committing writer."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from homing.domain.errors import HomingError, StoreUnavailable
from homing.store import statements
from homing.store.sqlite import LoopThread, WriterThread, sqlite_pragmas

log = logging.getLogger(__name__)

T = TypeVar("T")


RERUNS = 3  # runs of a write transaction that finds what it read changed meanwhile
# PostgreSQL: a kept batch connection whose transaction its last COMMIT began (the next
# batch's) ends that transaction after this many seconds without a batch.
BEGUN_IDLE = 1.0


class ReadChanged(Exception):
    """Raised in a write transaction that finds, under a lock it has taken, that what it
    read before the lock was changed by another transaction committed meanwhile: the
    transaction is rolled back and run again from its first read (at most RERUNS runs)."""


@dataclass
class Txn:
    """What a write unit gets: its connection, one clock reading, a list for journal entries."""

    conn: AsyncConnection
    now: datetime
    emitted: list[Any] = field(default_factory=list)

    def emit(self, item: Any) -> None:
        """Queue an item (a journal entry) for the on_commit hooks; dropped on rollback."""
        self.emitted.append(item)

    async def run_sync(self, fn: Callable[[SyncTxn], T]) -> T:
        """Run synchronous write code (written once for both kinds of txn) in this transaction."""
        return await self.conn.run_sync(lambda conn: fn(SyncTxn(conn, self.now, self.emitted)))


@dataclass
class SyncTxn:
    """Txn for synchronous code: what a SyncBatcher gets, on the writer thread's connection."""

    conn: sa.Connection
    now: datetime
    emitted: list[Any] = field(default_factory=list)

    def emit(self, item: Any) -> None:
        """Queue an item (a journal entry) for the on_commit hooks; dropped on rollback."""
        self.emitted.append(item)


Unit = Callable[[Txn], Awaitable[T]]
Reader = Callable[[AsyncConnection], Awaitable[T]]
Item = TypeVar("Item")


class Batcher(Protocol[Item, T]):
    """Runs many callers' items of one kind as one piece of work (set-based SQL).

    `run` returns one result per item, in order; if it raises, each item is run alone.
    """

    async def run(self, txn: Txn, items: list[Item]) -> list[T]: ...


class SyncBatcher(Protocol[Item, T]):
    """A Batcher whose work is synchronous: on SQLite the whole batch, commit included, is
    one call on the writer thread's own connection instead of one await per statement
    (each await through aiosqlite is several hops to its thread). On PostgreSQL it runs
    through run_sync."""

    def run_sync(self, txn: SyncTxn, items: list[Item]) -> list[T]: ...


# The in-flight transaction's "COMMIT sent" future, in its own task's context.
_EXECUTING: contextvars.ContextVar[asyncio.Future[None] | None] = contextvars.ContextVar(
    "homing_executing", default=None
)
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MIGRATIONS = Path(__file__).parent / "migrations"


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything homing stores is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass
class _Job:
    future: asyncio.Future[Any]
    unit: Unit[Any] | None = None
    batcher: Batcher[Any, Any] | SyncBatcher[Any, Any] | None = None
    item: Any = None
    is_sync: bool = field(init=False)

    def __post_init__(self) -> None:
        self.is_sync = self.batcher is not None and hasattr(self.batcher, "run_sync")


def _groups(jobs: list[_Job]) -> list[list[_Job]]:
    """Units alone, and the items of each batcher together (at its first item's place)."""
    groups: list[list[_Job]] = []
    by_batcher: dict[int, list[_Job]] = {}
    for job in jobs:
        if job.batcher is None:
            groups.append([job])
            continue
        group = by_batcher.get(id(job.batcher))
        if group is None:
            group = by_batcher[id(job.batcher)] = []
            groups.append(group)
        group.append(job)
    return groups


class Database:
    """One engine plus a single writer task that batches concurrent units into one commit."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        max_batch: int = 256,
        in_flight: int = 2,
    ) -> None:
        """`in_flight`: PostgreSQL write transactions the writer keeps going at once (SQLite
        has one writer: always 1). While one commits (its WAL flush), the next batch
        already runs its statements on another connection; row locks order them. A batch
        is taken once the one before it has sent its COMMIT: taken sooner, it would only
        wait for that commit at its zone's row lock, and two small batches cost more than
        one twice their size."""
        self.url = sa.make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.schema = schema
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValueError(f"invalid database schema name: {schema!r}")
        self.engine = self._create_engine()
        # PostgreSQL: update batches (sync ones) run on a loop of their own, on an engine
        # of its own (asyncpg's connections belong to the loop that opened them). On the
        # serving loop each of their round trips waits its turn behind every HTTP request
        # ready beside it (docs/benchmarks.md, "on a loop of its own").
        self._loop_thread: LoopThread | None = None
        self._batch_engine: AsyncEngine | None = None
        self._batch_conns: list[AsyncConnection] = []  # open, between the batch loop's batches
        # Each kept connection in a transaction begun for the next batch: when it ends.
        self._idle_ends: dict[AsyncConnection, asyncio.TimerHandle] = {}
        self._ending: set[asyncio.Task[None]] = set()  # transactions ended for idleness
        # SQLite: sync batches run, commit included, on one thread with its own connection.
        self._sync_engine: sa.Engine | None = None
        self._thread: WriterThread | None = None
        self._sync_conn: sa.Connection | None = None  # the thread's own, opened on first use
        database = self.url.database
        if self.is_sqlite and database and database != ":memory:":
            self._sync_engine = sa.create_engine(
                self.url.set(drivername="sqlite+pysqlite"),
                connect_args={"timeout": 30, "check_same_thread": False},
                pool_size=1,
            )
            sqlite_pragmas(self._sync_engine)
        self.max_batch = max_batch
        self._pending: collections.deque[_Job] = collections.deque()  # jobs for the writer
        self._idle: asyncio.Future[None] | None = None  # the writer waits on it for jobs,
        self._wanted = 1  # until this many wait
        self._batch_size = 0  # of the newest transaction taken (PostgreSQL's in flight)
        self._writer: asyncio.Task[None] | None = None
        self.in_flight = 1 if self.is_sqlite else max(1, in_flight)
        self._slots: asyncio.Semaphore | None = None  # free places for one more transaction
        # Settled when the newest transaction in flight has sent its COMMIT (or ended).
        self._executing: asyncio.Future[None] | None = None
        self._running: set[asyncio.Task[None]] = set()  # transactions in flight (PostgreSQL)
        # Called with what each committed transaction emitted, in commit order (the journal hook).
        self.on_commit: list[Callable[[list[Any]], None]] = []
        # What each PostgreSQL batch whose COMMIT is under way emitted, until its on_commit
        # hooks have run: the store's notification of that commit can reach this process
        # first (homing.store.notify), and should not send it to read what it wrote.
        self.committing: list[list[Any]] = []
        self._committing_lock = threading.Lock()  # PostgreSQL's batch loop adds, this one drops

    def _create_engine(self, **options: Any) -> AsyncEngine:
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(self.url, connect_args={"timeout": 30})
            sqlite_pragmas(engine)
            return engine
        connect_args: dict[str, Any] = {}
        if self.schema:
            connect_args["server_settings"] = {"search_path": self.schema}
        engine = create_async_engine(self.url, connect_args=connect_args, pool_size=10, **options)
        statements.held_back(engine.sync_engine)
        return engine

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (creating the PostgreSQL schema if asked)."""
        # Alembic's plugin set-up lines (logged as it loads) say nothing to an operator;
        # its upgrades do.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        from alembic import command
        from alembic.config import Config

        if self.schema and not self.is_sqlite:
            async with self.engine.begin() as conn:
                await conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

        def upgrade(sync_conn: sa.Connection) -> None:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = sync_conn
            command.upgrade(config, "head")

        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(upgrade)
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise StoreUnavailable(f"cannot migrate the store: {exc}") from exc

    async def read(self, unit: Reader[T]) -> T:
        """Run a read-only unit on its own connection. On PostgreSQL in AUTOCOMMIT mode:
        READ COMMITTED takes each statement's snapshot as it starts in a transaction too,
        and without one a read sends no BEGIN and its connection's return no ROLLBACK (two
        round trips; each node's follower reads after every commit of another node). A
        unit that wants one snapshot for all its statements asks for REPEATABLE READ; one
        that streams rows through a server-side cursor calls `streamable` first."""
        try:
            async with self.engine.connect() as conn:
                if not self.is_sqlite:
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await unit(conn)
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise StoreUnavailable(f"store unavailable: {exc.__class__.__name__}") from exc

    async def write(self, unit: Unit[T]) -> T:
        """Run a unit in a write transaction; returns after its commit is durable.

        Concurrent callers share one transaction (group commit). A unit that raises is
        retried alone so one caller's error never undoes another's change.
        """
        return await self._submit(_Job(self._future(), unit=unit))  # type: ignore[no-any-return]

    async def write_batched(self, batcher: Batcher[Item, T], item: Item) -> T:
        """Like write(), but items of one batcher that wait together run as one call."""
        return await self._submit(_Job(self._future(), batcher=batcher, item=item))  # type: ignore[no-any-return]

    async def write_batched_sync(self, batcher: SyncBatcher[Item, T], item: Item) -> T:
        """Like write_batched(), for a batcher whose work is synchronous (the update hot path)."""
        return await self._submit(_Job(self._future(), batcher=batcher, item=item))  # type: ignore[no-any-return]

    def _future(self) -> asyncio.Future[Any]:
        # Every caller runs on the writer's loop (its jobs are settled there); asking for
        # the running loop instead is a getpid() system call on Python 3.11.
        writer = self._writer
        loop = asyncio.get_running_loop() if writer is None else writer.get_loop()
        return loop.create_future()

    async def _submit(self, job: _Job) -> Any:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="homing-writer")
        self._pending.append(job)
        idle = self._idle
        if idle is not None and len(self._pending) >= self._wanted:
            self._idle = None
            if not idle.done():
                idle.set_result(None)
        return await job.future

    async def _write_loop(self) -> None:
        pending = self._pending
        loop = asyncio.get_running_loop()
        while True:
            if not pending:
                self._wanted = 1
                self._idle = loop.create_future()
                await self._idle
                continue
            if self.in_flight == 1:
                jobs = [pending.popleft() for _ in range(min(len(pending), self.max_batch))]
                try:
                    await self._guarded(jobs)
                finally:
                    _closed(jobs)  # cancelled by close(): its callers hear so
                continue
            # Group commit across connections: a batch is taken once a place is free, so
            # the jobs that arrived meanwhile wait together for the next transaction.
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.in_flight)
            await self._slots.acquire()
            if self._executing is not None:
                await self._executing
            enough = self._batch_size // 2
            if self._running and len(pending) < enough:
                # Too few wait to be worth a transaction beside the one in flight: they
                # wait for it to end, or for half its size to gather. Taken at once, they
                # split the clients into large batches and small ones, and a request that
                # misses a small one waits a whole batch more (docs/benchmarks.md).
                self._wanted = enough
                self._idle = loop.create_future()
                await asyncio.wait(
                    (self._idle, *self._running), return_when=asyncio.FIRST_COMPLETED
                )
                self._idle = None
            jobs = [pending.popleft() for _ in range(min(len(pending), self.max_batch))]
            self._batch_size = len(jobs)
            executing = self._executing = loop.create_future()
            task = loop.create_task(self._in_flight_batch(jobs, self._slots, executing))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _in_flight_batch(
        self, jobs: list[_Job], slots: asyncio.Semaphore, executing: asyncio.Future[None]
    ) -> None:
        """One of the transactions in flight. Each settles as soon as it has committed:
        commits to one zone finish in serial order (its row lock is held until the
        commit), so the commit hooks still see each zone's journal in order."""
        _EXECUTING.set(executing)  # this task's own context: settled at its COMMIT
        try:
            await self._guarded(jobs)
        finally:
            _settled(executing)
            slots.release()
            _closed(jobs)  # cancelled by close(): its callers hear so

    async def _guarded(self, jobs: list[_Job]) -> None:
        try:
            await self._commit_batch(jobs)
        except Exception:  # a bug, not the caller's: never let the writer die
            log.exception("writer failed")
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(StoreUnavailable("internal store error"))

    async def _commit_batch(self, jobs: list[_Job]) -> None:
        if self._sync_engine is None and self.is_sqlite:
            await self._commit_jobs(jobs)
            return
        # Two connections, so two transactions: each set is committed (and retried) alone.
        sync_jobs = [job for job in jobs if job.is_sync]
        if sync_jobs:
            await self._commit_jobs(sync_jobs)
        if len(sync_jobs) < len(jobs):
            await self._commit_jobs([job for job in jobs if not job.is_sync])

    async def _commit_jobs(self, jobs: list[_Job]) -> None:
        """Commit the jobs together (or, that failing, one by one) and settle them."""
        if len(jobs) > 1:
            groups = _groups(jobs)
            try:
                results, emitted = await self._run_transaction(groups)
            except Exception:
                pass  # retried one by one below, so each caller gets its own answer
            else:
                # `results` are in group order: matched to the jobs the same way.
                self._settle([job for group in groups for job in group], results, emitted)
                return
        for job in jobs:
            try:
                results, emitted = await self._run_transaction([[job]])
            except HomingError as exc:
                job.future.set_exception(exc)
                continue
            except (OSError, sa.exc.SQLAlchemyError) as exc:
                log.warning("write failed: %s", exc)
                job.future.set_exception(StoreUnavailable(f"store unavailable: {exc}"))
                continue
            self._settle([job], results, emitted)

    async def _run_transaction(self, groups: list[list[_Job]]) -> tuple[list[Any], list[Any]]:
        """Results in the order of the groups' jobs, and what the transaction emitted; run
        again from the start when it found what it read changed meanwhile (ReadChanged)."""
        for _ in range(RERUNS - 1):
            try:
                return await self._run_once(groups)
            except ReadChanged as exc:
                log.info("write run again: %s", exc)
        try:
            return await self._run_once(groups)
        except ReadChanged as exc:
            raise StoreUnavailable(f"the store kept changing under the write: {exc}") from exc

    async def _run_once(self, groups: list[list[_Job]]) -> tuple[list[Any], list[Any]]:
        if self._sync_engine is not None and groups[0][0].is_sync:
            if self._thread is None:
                self._thread = WriterThread()
            return await self._thread.call(self._run_sync_transaction, groups)
        found = _EXECUTING.get()
        if self.is_sqlite or not groups[0][0].is_sync:
            return await self._transaction(self.engine, groups, found)
        if self._loop_thread is None:
            self._loop_thread = LoopThread()
            # Its transactions are begun and committed by the batches themselves
            # (statements.begin, statements.commit): each COMMIT begins the next.
            self._batch_engine = self._create_engine(isolation_level="AUTOCOMMIT")
        assert self._batch_engine is not None
        # Settled on this loop, from the batch's: the writer here takes the next batch.
        executing = None if found is None else _Elsewhere(asyncio.get_running_loop(), found)
        return await self._loop_thread.run(self._batch_transaction(groups, executing))

    async def _transaction(
        self, engine: AsyncEngine, groups: list[list[_Job]], executing: _Settable | None
    ) -> tuple[list[Any], list[Any]]:
        """Results in the order of the groups' jobs, and what the transaction emitted;
        `executing` is settled once its COMMIT is sent."""
        results = []
        started = time.perf_counter()
        emitted: list[Any] | None = None
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(homing_write=True)
                async with conn.begin():
                    # The clock is read once the write lock is held: a transaction of another
                    # process that committed first never carries a later time than this one.
                    txn = Txn(conn, now())
                    for group in groups:
                        first = group[0]
                        if first.unit is not None:
                            results.append(await first.unit(txn))
                        elif first.is_sync:
                            results.extend(
                                await txn.run_sync(functools.partial(_run_sync_group, group))
                            )
                        else:
                            batcher = cast(Batcher[Any, Any], first.batcher)
                            done = await batcher.run(txn, [job.item for job in group])
                            results.extend(_checked(group, done))
                    statements = time.perf_counter()
                    emitted = self._committing(txn.emitted, executing)
        except BaseException:
            if emitted is not None:
                self._forget_committing(emitted)
            raise
        if log.isEnabledFor(logging.DEBUG):  # the commit's time includes its WAL flush
            log.debug(
                "PostgreSQL batch of %d: statements %.1f ms, commit %.1f ms",
                len(results),
                (statements - started) * 1e3,
                (time.perf_counter() - statements) * 1e3,
            )
        return results, txn.emitted

    async def _batch_transaction(
        self, groups: list[list[_Job]], executing: _Settable | None
    ) -> tuple[list[Any], list[Any]]:
        """A transaction of sync jobs on the batch loop, on a connection kept open between
        batches (a pool check-out and return cost a batch as much CPU as its BEGIN and
        COMMIT), in the transaction the last batch's COMMIT began on it (a round trip
        less). A connection whose transaction failed is dropped, with whatever its
        transaction held; the next batch opens another."""
        assert self._batch_engine is not None
        kept = self._batch_conns
        conn = None
        while kept and conn is None:
            conn = kept.pop()
            idle_end = self._idle_ends.pop(conn, None)
            if idle_end is not None:
                idle_end.cancel()
            if _ended_by_server(conn):
                # PostgreSQL restarted, or its idle_in_transaction_session_timeout: sent
                # on this connection, the batch would fail and its jobs run one by one.
                log.warning("batch connection closed by the server; opening another")
                await conn.invalidate()
                conn = None
        if conn is None:
            conn = await self._batch_engine.connect()
        try:
            done = await conn.run_sync(self._sync_transaction, groups, executing)
        except BaseException:
            await conn.invalidate()
            raise
        kept.append(conn)
        loop = asyncio.get_running_loop()
        self._idle_ends[conn] = loop.call_later(BEGUN_IDLE, self._end_idle, conn)
        return done

    def _end_idle(self, conn: AsyncConnection) -> None:
        """A kept connection without a batch for BEGUN_IDLE: the transaction begun on it
        for the next batch ends, so no connection idles in one."""
        del self._idle_ends[conn]
        self._batch_conns.remove(conn)  # no batch takes it while it commits
        task = asyncio.get_running_loop().create_task(self._ended(conn))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _ended(self, conn: AsyncConnection) -> None:
        try:
            await conn.run_sync(statements.commit, begin_next=False)
        except Exception as exc:
            log.warning("batch connection dropped: %s", exc)
            await conn.invalidate()  # the next batch opens another
            return
        self._batch_conns.insert(0, conn)  # taken last: the others need no BEGIN

    async def _close_batch_conns(self) -> None:
        for idle_end in self._idle_ends.values():
            idle_end.cancel()
        self._idle_ends.clear()
        for task in list(self._ending):
            with contextlib.suppress(Exception):
                await task
        while self._batch_conns:
            await self._batch_conns.pop().close()
        assert self._batch_engine is not None
        await self._batch_engine.dispose()

    def _run_sync_transaction(self, groups: list[list[_Job]]) -> tuple[list[Any], list[Any]]:
        """On the writer thread: the whole batch and its durable commit, no hop in between."""
        assert self._sync_engine is not None
        # One connection for the thread's life: no pool check-out and reset per batch.
        conn = self._sync_conn
        if conn is None:
            conn = self._sync_conn = self._sync_engine.connect()
        try:
            return self._sync_transaction(conn, groups)
        except BaseException:
            # Rolled back; whatever went wrong, the next batch starts on a new connection.
            self._close_sync_conn()
            raise

    def _sync_transaction(
        self, conn: sa.Connection, groups: list[list[_Job]], executing: _Settable | None = None
    ) -> tuple[list[Any], list[Any]]:
        """A batch of sync jobs and its commit in one call: on SQLite's writer thread, and
        in one greenlet on PostgreSQL's batch loop, where SQLAlchemy's async layer is then
        crossed once a batch rather than at its BEGIN, its work and its COMMIT.
        `executing` (PostgreSQL) is settled just before the COMMIT is sent."""
        results = []
        started = time.perf_counter()
        emitted: list[Any] | None = None
        try:
            if not self.is_sqlite:
                statements.begin(conn)  # no round trip: begun by the COMMIT before it
            with conn.begin():
                # The clock is read once the write lock is held: a transaction of another
                # process that committed first never carries a later time than this one.
                txn = SyncTxn(conn, now())
                for group in groups:
                    results.extend(_run_sync_group(group, txn))
                worked = time.perf_counter()
                if not self.is_sqlite:
                    emitted = self._committing(txn.emitted, executing)
            if not self.is_sqlite:  # the writes held back, then COMMIT with the next BEGIN
                statements.commit(conn, begin_next=True)
        except BaseException:
            if emitted is not None:
                self._forget_committing(emitted)
            raise
        if log.isEnabledFor(logging.DEBUG):  # the commit's time includes its fsync
            committed = (time.perf_counter() - worked) * 1e3
            message = "%s batch of %d: statements %.1f ms, commit %.1f ms"
            store = "SQLite" if self.is_sqlite else "PostgreSQL"
            log.debug(message, store, len(results), (worked - started) * 1e3, committed)
        return results, txn.emitted

    def _close_sync_conn(self) -> None:
        conn, self._sync_conn = self._sync_conn, None
        if conn is not None:
            conn.close()

    def _committing(self, emitted: list[Any], executing: _Settable | None) -> list[Any]:
        """Just before a transaction's COMMIT is sent: what it emitted is listed as
        committing (its notification can arrive before _settle runs the hooks), and the
        writer may take the next batch. Returns `emitted`."""
        with self._committing_lock:
            self.committing.append(emitted)
        if executing is not None and not executing.done():
            executing.set_result(None)
        return emitted

    def _forget_committing(self, emitted: list[Any]) -> None:
        with self._committing_lock:
            for i, batch in enumerate(self.committing):
                if batch is emitted:
                    del self.committing[i]
                    return

    def _settle(self, jobs: list[_Job], results: list[Any], emitted: list[Any]) -> None:
        """Hooks first (DNS moves), then the callers hear of their commit; `results` are in
        the order of `jobs`."""
        if emitted:
            for hook in self.on_commit:
                try:
                    hook(emitted)
                except Exception:
                    log.exception("commit hook failed")
        self._forget_committing(emitted)
        for job, result in zip(jobs, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
            self._idle = None
            # Transactions in flight end (committed or not); their callers were cancelled
            # or hear the store is closed.
            for task in list(self._running):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._slots = None
            self._executing = None
            while self._pending:  # never taken by the writer: their callers hear so
                job = self._pending.popleft()
                if not job.future.done():
                    job.future.set_exception(StoreUnavailable("the store is closed"))
        if self._thread is not None:
            # A batch still on the thread finishes its commit; its callers were cancelled.
            await self._thread.stop(self._close_sync_conn)
            self._thread = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        if self._loop_thread is not None:
            assert self._batch_engine is not None
            await self._loop_thread.run(self._close_batch_conns())
            await self._loop_thread.stop()
            self._loop_thread = self._batch_engine = None
        await self.engine.dispose()


async def streamable(conn: AsyncConnection) -> None:
    """Make a read's connection able to stream rows (`conn.stream`): PostgreSQL keeps a
    server-side cursor only within a transaction, and `Database.read` runs without one."""
    sync = conn.sync_connection
    if sync is not None and sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        await conn.commit()  # ends SQLAlchemy's own record of a transaction: nothing is sent
        await conn.execution_options(isolation_level="READ COMMITTED")


class _Settable(Protocol):
    def done(self) -> bool: ...

    def set_result(self, value: None, /) -> None: ...


def _ended_by_server(conn: AsyncConnection) -> bool:
    """Whether the driver has heard the server end `conn` (no round trip: asyncpg marks a
    connection closed once the server's last message or the socket's end arrives)."""
    sync = conn.sync_connection
    driver: Any = None if sync is None else sync.connection.driver_connection
    return driver is None or bool(driver.is_closed())


class _Elsewhere:
    """A future of another loop, settled from this one (the batch's "COMMIT sent")."""

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
        self._loop = loop
        self._future = future
        self._set = False

    def done(self) -> bool:
        return self._set

    def set_result(self, value: None) -> None:
        self._set = True
        self._loop.call_soon_threadsafe(_settled, self._future)


def _settled(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _closed(jobs: list[_Job]) -> None:
    """Jobs the writer took but never settled (the store closed meanwhile) hear so."""
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(StoreUnavailable("the store is closed"))


def _run_sync_group(group: list[_Job], txn: SyncTxn) -> list[Any]:
    batcher = cast(SyncBatcher[Any, Any], group[0].batcher)
    results = batcher.run_sync(txn, [job.item for job in group])
    statements.flush(txn.conn)  # writes held back fail here, with their group
    return _checked(group, results)


def _checked(group: list[_Job], results: list[Any]) -> list[Any]:
    if len(results) != len(group):
        raise RuntimeError("a batcher returned the wrong number of results")
    return results
