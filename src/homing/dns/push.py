"""Hidden primary: push each change of a zone to an external primary (RFC 2136 + TSIG).

For an operator who already runs BIND, Knot or PowerDNS: homing commits every change
to its store and journal first, as always, then sends it on. `update_messages()` is
pure: RRset values in, UPDATE messages out, each changed RRset replaced (delete the
RRset, add its records) and each deleted one deleted; homing's SOA and apex NS are
its own and never sent (the external primary keeps its own). `Pusher` keeps one
worker per zone: a serial move (from `ChangeWatch`) wakes it; it reads the journal
entries since the zone's pushed serial, sends them in order over TCP, and records
each acknowledged serial in the store. A failure is retried with growing intervals
until the external primary has everything; updates waiting for their serial
(`Pusher.pushed`) hear of success or failure at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.update
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.dns.access import Access, AccessLoader, parse_target
from homing.domain.records import JournalEntry, RRsetValue
from homing.domain.servable import rrset_problem
from homing.domain.waits import woken
from homing.service.journal import entries_after, load_zone
from homing.service.push import PushState, mark_pushed, push_state
from homing.store.db import Database

__all__ = ["PushFailed", "PushWatch", "Pusher", "changed_rrsets", "update_messages"]

log = logging.getLogger(__name__)

# Journal entries (or, for a whole zone, RRsets) per UPDATE message: well inside 64 KiB.
MAX_RRSETS_PER_MESSAGE = 200
# Further behind than this, replacing every RRset is cheaper than replaying the journal.
FULL_PUSH_GAP = 5000


# What signing makes (homing.dnssec): the external primary signs its zone, or does not.
_SIGNING_TYPES = frozenset({"RRSIG", "NSEC3", "NSEC3PARAM", "DNSKEY", "CDS", "CDNSKEY"})


def _own(zone: str, value: RRsetValue) -> bool:
    """homing's SOA and apex NS stay here: the external primary has its own; so do the
    records signing makes."""
    return (
        value.rtype == "SOA"
        or (value.rtype == "NS" and value.name == zone)
        or value.rtype in _SIGNING_TYPES
    )


def changed_rrsets(zone: str, entries: Sequence[JournalEntry]) -> list[RRsetValue]:
    """Each RRset the entries touch, at its last value (empty rdatas: deleted), in the
    order of first change; replacing RRsets in any order ends in the same zone."""
    latest: dict[tuple[str, str], RRsetValue] = {}
    for entry in entries:
        value = RRsetValue(entry.name, entry.rtype, entry.ttl, entry.new)
        latest.pop((entry.name, entry.rtype), None)
        latest[(entry.name, entry.rtype)] = value
    return [value for value in latest.values() if not _own(zone, value)]


def update_messages(
    zone: str, values: Sequence[RRsetValue], *, per_message: int = MAX_RRSETS_PER_MESSAGE
) -> list[dns.update.UpdateMessage]:
    """UPDATEs of `zone` that make each RRset in `values` what it is (replace, or delete
    when it has no rdatas); no prerequisites: homing's data wins. Unsigned (the sender signs).

    A stored RRset the index cannot serve (it skips such rows) is sent as a delete, so the
    external primary holds what homing answers and the zone's pushes keep moving."""
    origin = dns.name.from_text(zone)
    wanted = [value for value in values if not _own(zone, value)]
    messages = []
    for start in range(0, len(wanted), per_message):
        message = dns.update.UpdateMessage(origin)
        for value in wanted[start : start + per_message]:
            try:
                owner = dns.name.from_text(value.name)
            except dns.exception.DNSException:
                continue  # an owner no name server can hold: nothing to send for it
            rdtype = dns.rdatatype.from_text(value.rtype)
            if value.rdatas and rrset_problem(value) is None:
                rdataset = dns.rdataset.from_text_list(
                    dns.rdataclass.IN, rdtype, value.ttl, list(value.rdatas)
                )
                message.replace(owner, rdataset)
            else:
                message.delete(owner, rdtype)
        messages.append(message)
    return messages


def _chunks(entries: list[JournalEntry], size: int) -> Iterator[list[JournalEntry]]:
    for start in range(0, len(entries), size):
        yield entries[start : start + size]


def pushes_nowhere(access: Access, zone: str) -> bool:
    """The zone is loaded in `access` and has no push target (unknown zones: not known)."""
    lists = access.zones.get(zone)
    return lists is not None and lists.push is None


class PushFailed(Exception):
    """The external primary did not take a push (no answer, an error rcode, no key)."""


@dataclass
class _Zone:
    """One zone's worker and what its waiters watch."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    news: asyncio.Event = field(default_factory=asyncio.Event)  # replaced after each set
    pushed: int | None = None  # the last serial the external primary acknowledged
    failed: int | None = None  # the target serial of the last failed attempt, since a success
    failures: int = 0  # attempts failed so far
    target: int | None = None  # the serial the attempt in progress goes up to
    task: asyncio.Task[None] | None = None

    def announce(self) -> None:
        """Wake every waiter: progress, or a failure."""
        self.news.set()
        self.news = asyncio.Event()


class Pusher:
    """Pushes each zone with a push target to its external primary; `pushed()` waits for it."""

    def __init__(
        self,
        db: Database,
        access: AccessLoader,
        *,
        timeout: float = 2.0,
        retry_min: float = 0.5,
        retry_max: float = 60.0,
        per_message: int = MAX_RRSETS_PER_MESSAGE,
    ) -> None:
        if timeout <= 0 or retry_min <= 0 or retry_max < retry_min or per_message < 1:
            raise ValueError("timeout > 0, 0 < retry_min <= retry_max and per_message >= 1")
        self.db = db
        self.access = access
        self.timeout = timeout
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.per_message = per_message
        self._zones: dict[str, _Zone] = {}
        self._unknown: set[str] = set()
        self._refreshing: asyncio.Task[None] | None = None
        self._closed = False
        self._targets: dict[str, tuple[tuple[str, int] | None, str | None]] = {}
        access.listeners.append(self._reloaded)

    # -- what the journal follower and the updates call ---------------------

    def changed(self, zone: str) -> None:
        """The zone's serial moved: push it if it has a push target."""
        if self._closed:
            return
        current = self.access.current
        if zone not in current.zones:
            # A zone added a moment ago (by the CLI): its push target is not loaded yet.
            self._unknown.add(zone)
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
            return
        if current.zones[zone].push is None and zone not in self._zones:
            return  # pushes nowhere (a worker, once started, finds out itself)
        self._state(zone).wake.set()

    def pushes_nowhere(self, zone: str) -> bool:
        return pushes_nowhere(self.access.current, zone)

    async def pushed(self, zone: str, serial: int, within: float) -> bool:
        """True once the zone's external primary acknowledged `serial` (at once when the
        zone pushes nowhere); False when an attempt made after this call and covering
        `serial` failed, or after `within` seconds.

        The call wakes the zone's worker, so a worker in back-off tries again now (at most
        every `retry_min`): a client waiting for its update gets the freshest verdict.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        lists = self.access.current.zones.get(zone)
        if lists is None:
            await self.access.refresh()  # a zone added a moment ago
            lists = self.access.current.zones.get(zone)
        if lists is None or lists.push is None:
            return True
        state = self._state(zone)
        failures = state.failures
        if state.pushed is None or state.pushed < serial:
            state.wake.set()
        while True:
            if state.pushed is not None and state.pushed >= serial:
                return True
            if state.failures > failures and state.failed is not None and state.failed >= serial:
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if not await woken(state.news, remaining):
                return False

    async def close(self) -> None:
        """Stop every worker (unpushed changes stay in the store for the next start)."""
        self._closed = True
        tasks = [s.task for s in self._zones.values() if s.task is not None]
        if self._refreshing is not None:
            tasks.append(self._refreshing)
        for state in self._zones.values():
            # Python 3.11's wait_for can swallow a cancel that meets a result: the worker
            # then ends at its next wake-up instead, which this is.
            state.wake.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._zones.clear()

    def _reloaded(self, access: Access) -> None:
        """A zone given a push target (`homing zone set`) gets its first push now, not at
        its next change."""
        if self._closed:
            return
        for zone in [zone for zone in self._zones if zone not in access.zones]:
            gone = self._zones.pop(zone)  # deleted from the store: nothing left to push
            self._targets.pop(zone, None)
            if gone.task is not None:
                gone.task.cancel()
        for zone, lists in access.zones.items():
            target = (lists.push, lists.push_key)
            if self._targets.get(zone) != target:
                self._targets[zone] = target
                if lists.push is not None:
                    self._state(zone).wake.set()

    # -- workers ------------------------------------------------------------

    def _state(self, zone: str) -> _Zone:
        state = self._zones.get(zone)
        if state is None:
            state = self._zones[zone] = _Zone()
            state.task = asyncio.get_running_loop().create_task(
                self._worker(zone, state), name=f"push {zone}"
            )
        return state

    async def _refresh(self) -> None:
        try:
            await self.access.refresh()
        except Exception:
            log.exception("loading zone push targets failed")
            return
        zones, self._unknown = self._unknown, set()
        for zone in zones:
            if zone in self.access.current.zones:
                self.changed(zone)

    async def _worker(self, zone: str, state: _Zone) -> None:
        loop = asyncio.get_running_loop()
        delay = self.retry_min
        while True:
            await state.wake.wait()
            state.wake.clear()
            if self._closed:
                return
            try:
                await self._push_all(zone, state)
            except Exception as exc:  # PushFailed, the store, or our bug: retry all the same
                failed_at = loop.time()
                state.failed = state.target
                state.failures += 1
                state.announce()
                if isinstance(exc, PushFailed):
                    log.warning("push of %s failed: %s; retrying in %.1fs", zone, exc, delay)
                else:
                    log.exception("push of %s failed; retrying in %.1fs", zone, delay)
                # Retry when the back-off is over, or sooner for a newer change (a client
                # is waiting for it), but never sooner than retry_min after this failure.
                if not await woken(state.wake, delay):
                    delay = min(delay * 2, self.retry_max)
                else:
                    rest = failed_at + self.retry_min - loop.time()
                    if rest > 0:
                        await asyncio.sleep(rest)  # the rate limit itself: no event to wait for
                state.wake.set()
            else:
                delay = self.retry_min

    async def _push_all(self, zone: str, state: _Zone) -> None:
        """Push until the external primary has the zone's serial as read at the start."""
        while True:
            current = await self.db.read(lambda conn: push_state(conn, zone))
            if current is None or current.target is None or current.key is None:
                return  # the zone is gone or pushes nowhere any more
            state.target = current.serial
            state.pushed = current.pushed  # the store's word (a new target starts over)
            if current.pushed is not None and current.pushed >= current.serial:
                state.failed = None
                state.announce()
                return
            key = await self._key(current.key)
            address = self._address(current.target)
            behind = None if current.pushed is None else current.serial - current.pushed
            entries: list[JournalEntry] | None = None
            if behind is not None and behind <= FULL_PUSH_GAP:
                entries = await self._entries(current)
            if entries is None:
                await self._push_zone(current, key, address, state)
            else:
                for chunk in _chunks(entries, self.per_message):
                    messages = update_messages(
                        zone, changed_rrsets(zone, chunk), per_message=len(chunk)
                    )
                    for message in messages:
                        await self._send(message, key, address)
                    await self._acknowledged(current, chunk[-1].serial, state)

    async def _entries(self, current: PushState) -> list[JournalEntry] | None:
        """The entries since the pushed serial, or None when the journal has a gap there."""
        assert current.pushed is not None

        async def read(conn: AsyncConnection) -> list[JournalEntry]:
            return await entries_after(conn, current.zone_id, current.zone, current.pushed or 0)

        entries = await self.db.read(read)
        serials = [entry.serial for entry in entries]
        if serials != list(range(current.pushed + 1, current.pushed + 1 + len(serials))):
            log.info("push of %s: the journal has a gap after %d", current.zone, current.pushed)
            return None
        return entries

    async def _push_zone(
        self, current: PushState, key: dns.tsig.Key, address: tuple[str, int], state: _Zone
    ) -> None:
        """Every RRset of the zone as it is now (a new target, or too far behind)."""
        _meta, serial, values = await self.db.read(lambda conn: load_zone(conn, current.zone_id))
        log.info(
            "pushing all of %s at serial %d (%d RRsets) to %s", current.zone, serial, len(values),
            current.target,
        )  # fmt: skip
        for message in update_messages(current.zone, values, per_message=self.per_message):
            await self._send(message, key, address)
        await self._acknowledged(current, serial, state)

    async def _acknowledged(self, current: PushState, serial: int, state: _Zone) -> None:
        assert current.target is not None
        if not await mark_pushed(self.db, current.zone, current.target, serial):
            # Pointed elsewhere meanwhile (or already recorded): the next round reads afresh.
            log.info("push of %s to %s: the zone's target changed", current.zone, current.target)
        self._progress(state, serial)
        if state.target is not None and serial >= state.target:
            state.failed = None
        state.announce()
        log.info("pushed %s up to serial %d to %s", current.zone, serial, current.target)

    @staticmethod
    def _progress(state: _Zone, serial: int) -> None:
        if state.pushed is None or serial > state.pushed:
            state.pushed = serial

    async def _key(self, name: str) -> dns.tsig.Key:
        key_name = dns.name.from_text(name)
        scoped = self.access.current.keyring.get(key_name)
        if scoped is None:
            scoped = (await self.access.refresh()).keyring.get(key_name)  # added a moment ago?
        if scoped is None:
            raise PushFailed(f"no TSIG key {name} (homing key add {name} --zone ZONE)")
        return scoped.key

    @staticmethod
    def _address(target: str) -> tuple[str, int]:
        try:
            return parse_target(target)
        except ValueError as exc:
            raise PushFailed(f"bad push target {target!r}") from exc

    async def _send(
        self, message: dns.update.UpdateMessage, key: dns.tsig.Key, address: tuple[str, int]
    ) -> None:
        """One signed UPDATE over TCP; PushFailed unless it is answered NOERROR (signed)."""
        message.use_tsig(key)
        try:
            response = await dns.asyncquery.tcp(
                message, address[0], timeout=self.timeout, port=address[1]
            )
        except (dns.exception.DNSException, OSError, EOFError) as exc:
            raise PushFailed(f"{address[0]}:{address[1]}: {exc.__class__.__name__}: {exc}") from exc
        rcode = response.rcode()
        if rcode != dns.rcode.Rcode.NOERROR:
            raise PushFailed(f"{address[0]}:{address[1]} answered {dns.rcode.to_text(rcode)}")


class PushWatch:
    """The waiter of a worker that does not push itself (`--workers`: worker 0 pushes): it
    reads the pushed serial from the store. Another process moves it and no event crosses
    over, so this polls every `interval` seconds, bounded by the caller's wait."""

    def __init__(self, db: Database, access: AccessLoader, interval: float = 0.05) -> None:
        self.db = db
        self.access = access
        self.interval = interval

    def pushes_nowhere(self, zone: str) -> bool:
        return pushes_nowhere(self.access.current, zone)

    async def pushed(self, zone: str, serial: int, within: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        lists = self.access.current.zones.get(zone)
        if lists is None:
            lists = (await self.access.refresh()).zones.get(zone)
        if lists is None or lists.push is None:
            return True
        while True:
            state = await self.db.read(lambda conn: push_state(conn, zone))
            if state is None or state.target is None:
                return True
            if state.pushed is not None and state.pushed >= serial:
                return True
            if loop.time() + self.interval > deadline:
                return False
            await asyncio.sleep(self.interval)  # polling: no event crosses the processes
