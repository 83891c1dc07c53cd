"""The database handle: SQLite and PostgreSQL engines, migrations, the group-committing writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from homing.domain.errors import HomingError, StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Txn:
    """What a write unit gets: its connection, one clock reading, a list for journal entries."""

    conn: AsyncConnection
    now: datetime
    emitted: list[Any] = field(default_factory=list)

    def emit(self, item: Any) -> None:
        """Queue an item (a journal entry) for the on_commit hooks; dropped on rollback."""
        self.emitted.append(item)


Unit = Callable[[Txn], Awaitable[T]]
Reader = Callable[[AsyncConnection], Awaitable[T]]

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
    unit: Unit[Any]
    future: asyncio.Future[Any]


class Database:
    """One engine plus a single writer task that batches concurrent units into one commit."""

    def __init__(self, url: str, *, schema: str | None = None, max_batch: int = 256) -> None:
        self.url = sa.make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.schema = schema
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValueError(f"invalid database schema name: {schema!r}")
        self.engine = self._create_engine()
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Job] | None = None
        self._writer: asyncio.Task[None] | None = None
        # Called with what each committed transaction emitted, in commit order (the journal hook).
        self.on_commit: list[Callable[[list[Any]], None]] = []

    def _create_engine(self) -> AsyncEngine:
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(self.url, connect_args={"timeout": 30})
            _sqlite_pragmas(engine)
            return engine
        connect_args: dict[str, Any] = {}
        if self.schema:
            connect_args["server_settings"] = {"search_path": self.schema}
        return create_async_engine(self.url, connect_args=connect_args, pool_size=10)

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (creating the PostgreSQL schema if asked)."""
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
        """Run a read-only unit on its own connection."""
        try:
            async with self.engine.connect() as conn:
                return await unit(conn)
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise StoreUnavailable(f"store unavailable: {exc.__class__.__name__}") from exc

    async def write(self, unit: Unit[T]) -> T:
        """Run a unit in a write transaction; returns after its commit is durable.

        Concurrent callers share one transaction (group commit). A unit that raises is
        retried alone so one caller's error never undoes another's change.
        """
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._write_loop(), name="homing-writer")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(unit, future))
        return await future

    async def _write_loop(self) -> None:
        assert self._queue is not None
        while True:
            jobs = [await self._queue.get()]
            while len(jobs) < self.max_batch and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            try:
                await self._commit_batch(jobs)
            except Exception:  # a bug, not the caller's: never let the writer die
                log.exception("writer failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(StoreUnavailable("internal store error"))

    async def _commit_batch(self, jobs: list[_Job]) -> None:
        if len(jobs) > 1:
            try:
                results, emitted = await self._run_transaction(jobs)
            except Exception:
                pass  # retried one by one below, so each caller gets its own answer
            else:
                self._settle(jobs, results, emitted)
                return
        for job in jobs:
            try:
                results, emitted = await self._run_transaction([job])
            except HomingError as exc:
                job.future.set_exception(exc)
                continue
            except (OSError, sa.exc.SQLAlchemyError) as exc:
                log.warning("write failed: %s", exc)
                job.future.set_exception(StoreUnavailable(f"store unavailable: {exc}"))
                continue
            self._settle([job], results, emitted)

    async def _run_transaction(self, jobs: list[_Job]) -> tuple[list[Any], list[Any]]:
        results = []
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(homing_write=True)
            txn = Txn(conn, now())
            async with conn.begin():
                for job in jobs:
                    results.append(await job.unit(txn))
        return results, txn.emitted

    def _settle(self, jobs: list[_Job], results: list[Any], emitted: list[Any]) -> None:
        if emitted:
            for hook in self.on_commit:
                try:
                    hook(emitted)
                except Exception:
                    log.exception("commit hook failed")
        for job, result in zip(jobs, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
            self._queue = None
        await self.engine.dispose()


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    """WAL, durable commits, foreign keys; write transactions take the lock up front."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's own handling defers it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        # IMMEDIATE avoids the deadlock of two processes upgrading read locks to write.
        if conn.get_execution_options().get("homing_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
