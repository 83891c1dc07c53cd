"""The threads write batches run on (SQLite's, and PostgreSQL's update batches), and
SQLite's connection settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")

log = logging.getLogger(__name__)


class WriterThread:
    """The thread SQLite's sync batches run on, one call at a time, in order.

    Lighter than run_in_executor: one asyncio future, settled from the thread, instead of
    a concurrent future, its asyncio wrapper and their callbacks. At DEBUG each call's
    times are logged: queued (waiting for the thread), ran, and heard (until the event
    loop ran the settling callback: a busy loop shows here, not in the store)."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="homing-writer", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`fn(*args)` on the thread; the future has its result (or exception)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls.put((future, fn, args, time.perf_counter()))
        return future

    async def stop(self, last: Callable[[], None]) -> None:
        """Run `last` after the calls already queued, then end the thread."""
        await self.call(last)
        self._calls.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            future, fn, args, queued = call
            started = time.perf_counter()
            try:
                result = fn(*args)
            except BaseException as exc:  # the caller's to handle, on its own thread
                self._settle(future, None, exc, (queued, started))
            else:
                self._settle(future, result, None, (queued, started))

    @staticmethod
    def _settle(
        future: asyncio.Future[Any],
        result: Any,
        exc: BaseException | None,
        times: tuple[float, float],
    ) -> None:
        ran = time.perf_counter()

        def settle() -> None:
            if log.isEnabledFor(logging.DEBUG):
                queued, started = times
                log.debug(
                    "writer call: queued %.1f ms, ran %.1f ms, heard %.1f ms",
                    (started - queued) * 1e3,
                    (ran - started) * 1e3,
                    (time.perf_counter() - ran) * 1e3,
                )
            if future.cancelled():
                return
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            future.get_loop().call_soon_threadsafe(settle)


class LoopThread:
    """A thread running an event loop of its own: PostgreSQL's update batches run there,
    so each of their round trips is taken up as it is answered, not after the serving
    loop's turn through every HTTP request ready beside it."""

    def __init__(self) -> None:
        try:
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a dependency
            self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="homing-pg-writer", daemon=True
        )
        self._thread.start()

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """`work` on the thread's loop; cancelling the caller cancels it there."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    async def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self.loop.close()


def sqlite_pragmas(engine: AsyncEngine | sa.Engine) -> None:
    """WAL, durable commits, foreign keys; write transactions take the lock up front."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    writer_only = sync_engine is engine  # the writer thread's sync engine only ever writes

    @event.listens_for(sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's own handling defers it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        # IMMEDIATE avoids the deadlock of two processes upgrading read locks to write.
        if writer_only or conn.get_execution_options().get("homing_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
