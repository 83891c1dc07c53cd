"""NOTIFY out (RFC 1996): tell a zone's secondaries that its serial moved.

`ChangeWatch` sits between the journal follower and the zone index and reports every
zone whose serial moved, whether the change was committed here or picked up from
another process. `Notifier` keeps one small worker per zone and target: a change
sets its event; the worker sends one NOTIFY with the serial of the moment, so a
burst of changes while a NOTIFY is in flight becomes a single further NOTIFY. An
unanswered NOTIFY is retried with growing intervals, and a newer change starts the
round over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype

from homing.dns.access import AccessLoader
from homing.dns.index import ZoneData, ZoneIndex
from homing.domain.records import JournalEntry, ZoneMeta
from homing.domain.waits import woken

__all__ = ["ChangeWatch", "Notifier", "notify_message"]

log = logging.getLogger(__name__)

Target = tuple[str, int]


def notify_message(index: ZoneIndex, zone: str) -> dns.message.Message | None:
    """A NOTIFY for `zone` carrying its current SOA (a hint, RFC 1996 3.7), or None."""
    data = index.zone(zone)
    if data is None:
        return None
    message = dns.message.make_query(data.origin, dns.rdatatype.RdataType.SOA)
    message.flags = dns.flags.Flag.AA  # no RD: NOTIFY is not a recursive question
    message.set_opcode(dns.opcode.Opcode.NOTIFY)  # after: the opcode lives in the flags
    message.answer.append(data.soa())
    return message


class ChangeWatch:
    """The follower's sink: the index, plus calls for every zone whose serial moved (the
    notifier, and the pusher of a hidden primary)."""

    def __init__(self, index: ZoneIndex, *on_change: Callable[[str], None]) -> None:
        self.index = index
        self.listeners = on_change

    def on_change(self, zone: str) -> None:
        for listener in self.listeners:
            try:
                listener(zone)
            except Exception:  # our bug; the other listeners still hear of the change
                log.exception("change listener failed for %s", zone)

    def serial_of(self, name: str) -> int | None:
        return self.index.serial_of(name)

    def loading(self, meta: ZoneMeta, serial: int) -> ZoneData:
        return self.index.loading(meta, serial)

    def loaded(self, zone: object) -> ZoneData:
        data = self.index.loaded(zone)
        self.on_change(data.meta.name)
        return data

    def drop_zone(self, name: str) -> None:
        self.index.drop_zone(name)

    def apply(self, entry: JournalEntry) -> bool:
        before = self.index.serial_of(entry.zone)
        applied = self.index.apply(entry)
        if applied and before != self.index.serial_of(entry.zone):
            self.on_change(entry.zone)
        return applied


@dataclass
class Delivery:
    """One NOTIFY answered: for logs and tests."""

    zone: str
    target: Target
    serial: int
    attempts: int
    rcode: dns.rcode.Rcode
    seconds: float


class Notifier:
    """Sends NOTIFY to each zone's targets after its serial moves."""

    def __init__(
        self,
        index: ZoneIndex,
        access: AccessLoader,
        *,
        timeout: float = 1.0,
        attempts: int = 5,
        backoff: float = 2.0,
        held: bool = False,
    ) -> None:
        """`held`: changes are noted but nothing is sent until release() (at start, until
        our DNS listens: a secondary answers a NOTIFY by asking us for the SOA)."""
        if timeout <= 0 or attempts < 1 or backoff < 1:
            raise ValueError("timeout > 0, attempts >= 1 and backoff >= 1 are required")
        self.index = index
        self.access = access
        self._refreshing: asyncio.Task[None] | None = None
        self._unknown: set[str] = set()
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._events: dict[tuple[str, Target], asyncio.Event] = {}
        self._workers: dict[tuple[str, Target], asyncio.Task[None]] = {}
        self.delivered: list[Delivery] = []  # the last few, newest last
        self._closed = False
        self._open = asyncio.Event()
        if not held:
            self._open.set()

    def release(self) -> None:
        """Send what was held back, and from now on at once."""
        self._open.set()

    def changed(self, zone: str) -> None:
        """The zone's serial moved: (re)arm a NOTIFY to each of its targets."""
        if self._closed:
            return
        current = self.access.current
        if zone not in current.zones:
            # A zone added a moment ago (by the CLI): its notify list is not loaded yet.
            self._unknown.add(zone)
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
            return
        for target in current.notify_targets(zone):
            key = (zone, target)
            event = self._events.get(key)
            if event is None:
                event = self._events[key] = asyncio.Event()
                self._workers[key] = asyncio.get_running_loop().create_task(
                    self._worker(zone, target, event), name=f"notify {zone} {target}"
                )
            event.set()

    async def _refresh(self) -> None:
        try:
            await self.access.refresh()
        except Exception:
            log.exception("loading zone notify lists failed")
            return
        zones, self._unknown = self._unknown, set()
        for zone in zones:
            if zone in self.access.current.zones:
                self.changed(zone)

    async def close(self) -> None:
        """Stop every worker."""
        self._closed = True
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
        for task in self._workers.values():
            task.cancel()
        for task in self._workers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers.clear()
        self._events.clear()

    async def _worker(self, zone: str, target: Target, event: asyncio.Event) -> None:
        await self._open.wait()
        while True:
            await event.wait()
            event.clear()
            try:
                await self._round(zone, target, event)
            except Exception:
                log.exception("NOTIFY of %s to %s failed", zone, target)

    async def _round(self, zone: str, target: Target, event: asyncio.Event) -> None:
        """Send until answered, `attempts` times at most; a newer change ends the round."""
        wait = self.timeout
        started = time.monotonic()
        for attempt in range(1, self.attempts + 1):
            message = notify_message(self.index, zone)
            if message is None:
                return  # the zone is gone
            self._sign(message, zone)
            serial = self.index.serial_of(zone) or 0
            try:
                response = await self._send(message, target, event)
            except (dns.exception.Timeout, OSError, dns.exception.DNSException) as exc:
                log.info(
                    "NOTIFY of %s serial %d to %s:%d unanswered (%s), attempt %d of %d",
                    zone, serial, target[0], target[1], exc.__class__.__name__, attempt,
                    self.attempts,
                )  # fmt: skip
            else:
                if response is None:
                    return  # a newer change came first: the worker starts over with it
                rcode = response.rcode()
                self._delivered(
                    Delivery(zone, target, serial, attempt, rcode, time.monotonic() - started)
                )
                return
            # Wait before the next try, but a newer change ends this round at once: the
            # worker then starts over with the new serial.
            if await woken(event, wait):
                return
            wait *= self.backoff
        log.warning("NOTIFY of %s to %s:%d: no answer after %d tries", zone, *target, self.attempts)

    def _sign(self, message: dns.message.Message, zone: str) -> None:
        """With the zone's notify key (`zone set --notify-key`), for a secondary that wants
        NOTIFYs signed (a homing secondary with --primary-key does)."""
        settings = self.access.current.zones.get(zone)
        if settings is None or settings.notify_key is None:
            return
        scoped = self.access.current.keyring.get(dns.name.from_text(settings.notify_key))
        if scoped is None:
            log.warning("NOTIFY of %s: key %s unknown, sent unsigned", zone, settings.notify_key)
            return
        key = scoped.key
        message.use_tsig({key.name: key}, keyname=key.name, algorithm=key.algorithm)

    async def _send(
        self, message: dns.message.Message, target: Target, event: asyncio.Event
    ) -> dns.message.Message | None:
        """The answer, or None when a newer change arrives before it (the send is dropped)."""
        send = asyncio.ensure_future(
            dns.asyncquery.udp(message, target[0], timeout=self.timeout, port=target[1])
        )
        newer = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({send, newer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (send, newer):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if send.cancelled():
            return None
        return send.result()

    def _delivered(self, delivery: Delivery) -> None:
        level = logging.INFO if delivery.rcode == dns.rcode.Rcode.NOERROR else logging.WARNING
        log.log(
            level,
            "NOTIFY of %s serial %d to %s:%d answered %s",
            delivery.zone, delivery.serial, delivery.target[0], delivery.target[1],
            delivery.rcode.name,
        )  # fmt: skip
        self.delivered.append(delivery)
        del self.delivered[:-100]
