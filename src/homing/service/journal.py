"""Following the journal: load zones from the store, then move them forward by serial.

The follower catches what other processes (CLI, other workers, other nodes) committed.
Changes committed in this process reach the sink directly after their commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import StoreUnavailable
from homing.domain.records import JournalEntry, RRsetValue, StoredRRset, ZoneMeta
from homing.domain.waits import woken
from homing.service.zones import zone_meta
from homing.store.db import Database, streamable
from homing.store.schema import journal, rrsets, zones
from homing.store.statements import fetch_all

log = logging.getLogger(__name__)

# Past this many journal entries behind, reading the zone afresh is cheaper (bulk imports).
RELOAD_GAP = 5000
# Rows handed to a loading zone at a time: the whole zone is never in memory twice.
LOAD_BATCH = 20_000


class ZoneLoad(Protocol):
    """A zone being loaded: RRsets in the store's form go in batch by batch."""

    def load(self, rows: Iterable[StoredRRset]) -> None: ...


class Sink(Protocol):
    """What follows the journal (the DNS zone index)."""

    def serial_of(self, name: str) -> int | None: ...

    def loading(self, meta: ZoneMeta, serial: int) -> ZoneLoad: ...

    def loaded(self, zone: ZoneLoad) -> object: ...

    def apply(self, entry: JournalEntry) -> bool: ...

    def drop_zone(self, name: str) -> None: ...


async def load_zone(conn: AsyncConnection, zone_id: int) -> tuple[ZoneMeta, int, list[RRsetValue]]:
    """A zone's SOA parameters, serial and RRsets, read in one snapshot."""
    row = (await conn.execute(sa.select(zones).where(zones.c.id == zone_id))).one()
    values = [
        RRsetValue(r.name, r.rtype, r.ttl, RRsetValue.decode_rdatas(r.rdatas))
        for r in await conn.execute(sa.select(rrsets).where(rrsets.c.zone_id == zone_id))
    ]
    return zone_meta(row), row.serial, values


async def _partitions(
    conn: AsyncConnection, query: sa.Select[Any]
) -> AsyncIterator[Sequence[tuple[Any, ...]]]:
    """The query's rows, LOAD_BATCH at a time, in the transaction `conn` is in.

    On SQLite the rows come straight from the driver's cursor, one hop per batch and no
    Row object per row: at a million hosts about half the CPU of SQLAlchemy's stream.
    """
    if conn.dialect.name != "sqlite":
        await streamable(conn)
        result = await conn.stream(query)
        async for rows in result.partitions(LOAD_BATCH):
            yield rows
        return
    compiled = query.compile(dialect=conn.dialect)
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    driver = (await conn.get_raw_connection()).driver_connection  # aiosqlite's Connection
    assert driver is not None
    cursor = await driver.execute(compiled.string, params)
    try:
        while rows := await cursor.fetchmany(LOAD_BATCH):
            yield rows
    finally:
        await cursor.close()


async def stream_zone(conn: AsyncConnection, zone_id: int, sink: Sink) -> int:
    """Load a zone into `sink`, streaming its rows in batches; returns how many RRsets."""
    row = (await conn.execute(sa.select(zones).where(zones.c.id == zone_id))).one()
    zone = sink.loading(zone_meta(row), row.serial)
    query = sa.select(rrsets.c.name, rrsets.c.rtype, rrsets.c.ttl, rrsets.c.rdatas).where(
        rrsets.c.zone_id == zone_id
    )
    count = 0
    async for batch in _partitions(conn, query):
        zone.load(batch)
        count += len(batch)
    sink.loaded(zone)
    log.info("zone %s loaded at serial %d (%d rrsets)", row.name, row.serial, count)
    return count


_AFTER = (
    sa.select(
        journal.c.id, journal.c.serial, journal.c.name, journal.c.rtype, journal.c.ttl,
        journal.c.old, journal.c.new, journal.c.actor, journal.c.via, journal.c.old_ttl,
    )
    .where(journal.c.zone_id == sa.bindparam("zone_id"), journal.c.serial > sa.bindparam("serial"))
    .order_by(journal.c.serial)
)  # fmt: skip


async def entries_after(
    conn: AsyncConnection, zone_id: int, zone_name: str, serial: int
) -> list[JournalEntry]:
    """A zone's journal entries past `serial`, in serial order. Every follow pass of a
    node runs it, so it goes to the driver as a statement compiled once
    (`statements.fetch_all`): half the CPU of SQLAlchemy's execute and rows."""

    def fetch(sync: sa.Connection) -> list[tuple[Any, ...]]:
        return fetch_all(sync, _AFTER, {"zone_id": zone_id, "serial": serial})[1]

    rows = await conn.run_sync(fetch)
    decode = RRsetValue.decode_rdatas
    return [
        JournalEntry(
            position=position, zone=zone_name, serial=at, name=name, rtype=rtype, ttl=ttl,
            old=decode(old), new=decode(new), actor=actor, via=via, old_ttl=old_ttl,
        )
        for position, at, name, rtype, ttl, old, new, actor, via, old_ttl in rows
    ]  # fmt: skip


class Follower:
    """Keeps a sink at the store's serials: direct after local commits; others' commits by
    `moved()` (a PostgreSQL notification, or a gap behind a local commit: that zone's
    journal alone), `wake()` (sibling workers, a reconnect: every zone) and by polling as
    the fallback."""

    def __init__(
        self, db: Database, sink: Sink, interval: float = 0.5, *, secondaries: bool = False
    ) -> None:
        """`secondaries`: also keep secondary zones at the store's copy (reloaded whole when
        its serial moves: they have no journal). Off where a `Secondaries` manager owns them."""
        self.db = db
        self.sink = sink
        self.interval = interval
        self.secondaries = secondaries
        self._wake = asyncio.Event()
        # Zones that could not be followed, by name: the stored serial they failed at. They
        # are tried again when that serial moves, not on every pass (the log says it once).
        self._failed: dict[str, int] = {}
        self.errors = 0  # passes that failed (the store unreachable), for /metrics
        self.passes = 0  # passes run, whole or of moved zones only, for /metrics
        self._known: dict[str, int] = {}  # zones in the store at the last pass: name -> id
        self._journaled: dict[str, int] = {}  # of those, the ones with a journal (primaries)
        # Zones heard to have moved since the last pass: name -> the highest serial heard.
        # While only these moved, a pass reads their journals and not every zone's serial.
        self._moved: dict[str, int] = {}
        self._whole = False  # the next pass reads every zone (a wake with nothing named)
        db.on_commit.append(self.committed)

    def committed(self, emitted: list[object]) -> None:
        """Apply a local commit's journal entries to the sink (the zone index).

        A `Database.on_commit` hook: the writer calls it after each durable commit and
        before the committing callers (an update's `good`) hear of it. Entries are the
        ones `changes.apply_changes_sync` emitted in that transaction."""
        for item in emitted:
            if not isinstance(item, JournalEntry):
                continue
            try:
                applied = self.sink.apply(item)
            except Exception:  # our bug: the commit stands, and the store is caught up from
                log.exception(
                    "zone %s serial %d: applying a committed change failed", item.zone, item.serial
                )
                applied = False
            if not applied:  # a gap (another node's commit before it), or a new zone
                self.moved(item.zone, item.serial)

    def wake(self) -> None:
        """Catch up now with every zone (another process committed something)."""
        self._whole = True
        self._wake.set()

    def moved(self, zone: str, serial: int) -> None:
        """Catch up now with `zone`, which another process moved to `serial`."""
        if serial > self._moved.get(zone, -1):
            self._moved[zone] = serial
        self._wake.set()

    async def sync(self) -> None:
        """One catch-up pass over all zones."""

        async def read(conn: AsyncConnection) -> None:
            states = (
                await conn.execute(
                    sa.select(zones.c.id, zones.c.name, zones.c.serial, zones.c.primary_target)
                )
            ).all()
            self._forget_deleted(states)
            self._journaled = {s.name: s.id for s in states if s.primary_target is None}
            for state in states:
                if self._failed.get(state.name) == state.serial:
                    continue
                try:
                    await self._catch_up(conn, state)
                except (StoreUnavailable, sa.exc.DBAPIError, OSError):
                    raise  # the store, not the zone: run() retries the whole pass
                except Exception:
                    # One zone that cannot be followed (our bug, or data the index could
                    # not take) must not hold the other zones back.
                    log.exception(
                        "zone %s serial %d: following the journal failed", state.name, state.serial
                    )
                    self._failed[state.name] = state.serial
                else:
                    self._failed.pop(state.name, None)

        await self.db.read(read)

    def _forget_deleted(self, states: Sequence[Any]) -> None:
        """Stop serving zones deleted from the store (or deleted and made again: the new
        one is loaded afresh)."""
        now = {state.name: state.id for state in states}
        for name, zone_id in self._known.items():
            if now.get(name) != zone_id:
                self.sink.drop_zone(name)
                self._failed.pop(name, None)
                log.info("zone %s deleted from the store: no longer served", name)
        self._known = now

    async def _catch_up(self, conn: AsyncConnection, state: Any) -> None:
        """Bring one zone (a row of id, name, serial, primary_target) to its stored serial."""
        loaded = self.sink.serial_of(state.name)
        if state.primary_target is not None:
            # A secondary zone: its serial is the primary's and it has no journal.
            if self.secondaries and loaded != state.serial:
                await stream_zone(conn, state.id, self.sink)
            return
        if loaded is None or state.serial - loaded > RELOAD_GAP:
            await stream_zone(conn, state.id, self.sink)
        elif loaded != state.serial:
            for entry in await entries_after(conn, state.id, state.name, loaded):
                if not self.sink.apply(entry):
                    await stream_zone(conn, state.id, self.sink)
                    break
            else:
                if (self.sink.serial_of(state.name) or 0) < state.serial:
                    # The serial moved with no journal entry (the SOA's values changed,
                    # zoneoptions.set_zone_options): the store holds the zone as it is now.
                    await stream_zone(conn, state.id, self.sink)

    async def sync_moved(self, moved: dict[str, int]) -> bool:
        """Bring the zones in `moved` (name -> serial heard of) to at least that serial by
        their journals alone. False when that is not enough (a zone new, reloaded,
        failed, secondary, or moved with no journal entry): then a whole pass must run."""
        todo = []
        for name, serial in moved.items():
            loaded = self.sink.serial_of(name)
            zone_id = self._journaled.get(name)
            if loaded is None or zone_id is None or name in self._failed:
                return False
            if serial - loaded > RELOAD_GAP:
                return False
            if loaded < serial:
                todo.append((name, zone_id, serial))
        if not todo:
            return True

        async def read(conn: AsyncConnection) -> bool:
            for name, zone_id, serial in todo:
                loaded = self.sink.serial_of(name) or 0  # a local commit may have moved it
                entries = await entries_after(conn, zone_id, name, loaded)
                try:
                    if not all(self.sink.apply(entry) for entry in entries):
                        return False
                except Exception:  # our bug: the whole pass tries again, and names the zone
                    return False
                if (self.sink.serial_of(name) or 0) < serial:
                    return False
            return True

        return await self.db.read(read)

    async def run(self) -> None:
        """Poll (or wake) forever; errors are logged and retried. A pass reads every zone
        when woken without a zone named, at the poll interval, and at least once per
        interval while woken without pause; otherwise only the zones heard to move."""
        loop = asyncio.get_running_loop()
        whole_at = loop.time()
        while True:
            await woken(self._wake, self.interval)
            self._wake.clear()
            moved, self._moved = self._moved, {}
            whole = self._whole or not moved or loop.time() - whole_at >= self.interval
            self._whole = False
            self.passes += 1
            try:
                if not whole and await self.sync_moved(moved):
                    continue
                whole_at = loop.time()
                await self.sync()
            except Exception:
                self.errors += 1
                log.exception("journal follow failed; retrying")
