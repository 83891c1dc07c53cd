"""PostgreSQL LISTEN on the journal channel: other nodes' commits wake this node's follower.

A trigger (migration 0018) sends `pg_notify(CHANNEL, 'SCHEMA ZONE SERIAL')` in the
transaction that moves a zone's serial, so the notification arrives once the change is
visible; one this process already answers with (its own commits, applied directly) is
not passed on, so a busy node does not read the store again after each of its own. One
dedicated connection per process listens; when it is lost it is opened again, and the
follower is woken after each (re)connect, since notifications sent meanwhile are gone.
The follower's poll stays as the fallback for whatever a lost connection hides.

The same connection listens on the settings channel: a trigger (migration 0021) sends
`pg_notify(SETTINGS_CHANNEL, 'SCHEMA')` in a transaction that changes keys or zone
lists, which wakes the TSIG key and zone list loader (homing.dns.access).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa

log = logging.getLogger(__name__)

CHANNEL = "homing_journal"
SETTINGS_CHANNEL = "homing_settings"
RETRY_FIRST = 0.5  # seconds before the first reconnect; doubled up to RETRY_MAX
RETRY_MAX = 15.0
CONNECT_TIMEOUT = 10.0


def asyncpg_dsn(url: sa.URL) -> str:
    """The SQLAlchemy URL as a DSN asyncpg takes (without the +asyncpg driver name)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class JournalListener:
    """Calls `on_zone(zone, serial)` (or `on_change()`, without it) when a zone in `schema`
    moved on another connection (any node), unless `known(zone, serial)` says this process
    answers with that serial already; `on_change()` after each (re)connect, for whatever
    moved unheard; `on_settings` when keys or zone lists in `schema` changed."""

    def __init__(
        self,
        url: sa.URL,
        schema: str | None,
        on_change: Callable[[], None],
        known: Callable[[str, int], bool] = lambda _zone, _serial: False,
        on_settings: Callable[[], None] | None = None,
        on_zone: Callable[[str, int], None] | None = None,
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        self.schema = schema or "public"
        self.on_change = on_change
        self.on_zone = on_zone
        self.known = known
        self.on_settings = on_settings
        self.settings_notifications = 0  # received for our schema
        self.connected = False
        self.notifications = 0  # received for our schema
        self.skipped = 0  # of those, serials this process had already
        self.reconnects = 0
        self.errors = 0  # connections lost or refused
        self.backend_pid: int | None = None  # the listening connection's server process

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        schema, zone, serial = (payload.split(" ") + ["", ""])[:3]
        if schema != self.schema:
            return  # another store in the same database
        self.notifications += 1
        if not serial.isdigit():
            self.on_change()
        elif self.known(zone, int(serial)):
            self.skipped += 1
        elif self.on_zone is not None:
            self.on_zone(zone, int(serial))
        else:
            self.on_change()

    def _settings_received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload != self.schema or self.on_settings is None:
            return
        self.settings_notifications += 1
        self.on_settings()

    async def run(self) -> None:
        """Listen forever; each lost connection is opened again after a growing pause."""
        delay = RETRY_FIRST
        while True:
            lost = asyncio.get_running_loop().create_future()
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT)
                conn.add_termination_listener(functools.partial(_ended, lost))
                await conn.add_listener(CHANNEL, self._received)
                if self.on_settings is not None:
                    await conn.add_listener(SETTINGS_CHANNEL, self._settings_received)
                if self.reconnects or self.errors:
                    log.info("listening for journal notifications again")
                self.backend_pid = conn.get_server_pid()
                self.connected = True
                delay = RETRY_FIRST
                self.on_change()  # what was committed while we were not listening
                if self.on_settings is not None:
                    self.on_settings()
                await self._watch(conn, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                log.warning(
                    "journal notifications: %s; polling until reconnected in %.1f s",
                    exc.__class__.__name__,
                    delay,
                )
            finally:
                self.connected = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(2.0):  # not wait_for: see homing.domain.waits
                            await conn.close()
            await asyncio.sleep(delay)  # the pause before a reconnect: nothing to wait for
            delay = min(delay * 2, RETRY_MAX)
            self.reconnects += 1

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Future[None]) -> None:
        """Return when the connection is gone. A dead peer (a pulled cable, a killed
        server host) is found by a small query every few seconds, not by TCP alone."""
        while True:
            try:
                async with asyncio.timeout(5.0):  # not wait_for: see homing.domain.waits
                    await asyncio.shield(lost)
            except TimeoutError:
                async with asyncio.timeout(5.0):
                    await conn.fetchval("SELECT 1")
                continue
            raise ConnectionError("listener connection closed")


def _ended(lost: asyncio.Future[None], _conn: object) -> None:
    if not lost.done():
        lost.set_result(None)
