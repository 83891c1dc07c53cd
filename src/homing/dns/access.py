"""Who may update and transfer which zone, and whom to notify: keys and zone lists from the store.

`Access` is a plain snapshot the DNS handlers decide with; `AccessLoader` keeps one
fresh. Triggers in the store move a settings generation with every change of what a
snapshot is built from (migration 0021); the loader reads that one number every
`interval` (and at once when woken: PostgreSQL notifies every node of the change) and
reloads when it moved, so `homing zone set` or `homing host delete` (its keys go with
it), run anywhere, is in effect within the interval. A full reload every `full_interval`
is the fallback. A request naming a key it does not know also reloads soon
(rate-limited), so a key added with `homing key add` works on its first use.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.dns.tsig import Keyring, ScopedKey
from homing.domain.names import zone_for
from homing.domain.waits import woken
from homing.service.keys import TsigKey, all_keys
from homing.service.zones import TransferSettings, transfer_settings
from homing.store.db import Database
from homing.store.schema import settings_generation

__all__ = ["Access", "AccessLoader", "ZoneAccess", "parse_target", "read_generation"]

log = logging.getLogger(__name__)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_target(text: str) -> tuple[str, int]:
    """ "192.0.2.1:53" or "[2001:db8::1]:53" as (address, port); ValueError when malformed."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    ipaddress.ip_address(host)
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not ADDRESS:PORT: {text!r}")
    return host, int(port)


@dataclass(frozen=True)
class ZoneAccess:
    """One zone's notify targets, transfer address list, and external primary to push to."""

    notify: tuple[tuple[str, int], ...] = ()
    allow_transfer: tuple[IpNetwork, ...] = ()
    push: tuple[str, int] | None = None
    push_key: str | None = None  # the TSIG key's name
    primary: tuple[str, int] | None = None  # a secondary zone's primary
    primary_key: str | None = None  # the key of its SOA checks, transfers and NOTIFYs
    notify_key: str | None = None  # signs the NOTIFYs this zone sends

    @classmethod
    def from_settings(cls, settings: TransferSettings) -> ZoneAccess:
        targets = []
        for text in settings.notify:
            try:
                targets.append(parse_target(text))
            except ValueError:
                log.warning("zone %s: ignoring notify target %r", settings.zone, text)
        networks = []
        for text in settings.allow_transfer:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                log.warning("zone %s: ignoring allow-transfer entry %r", settings.zone, text)
        push = None
        if settings.push is not None and settings.push_key is not None:
            try:
                push = parse_target(settings.push)
            except ValueError:
                log.warning("zone %s: ignoring push target %r", settings.zone, settings.push)
        primary = None
        if settings.primary is not None:
            try:
                primary = parse_target(settings.primary)
            except ValueError:
                log.warning("zone %s: ignoring primary %r", settings.zone, settings.primary)
        return cls(
            tuple(targets),
            tuple(networks),
            push,
            settings.push_key if push else None,
            primary,
            settings.primary_key,
            settings.notify_key,
        )


@dataclass(frozen=True)
class Access:
    """A snapshot: the keyring and every zone's lists."""

    keyring: Keyring = field(default_factory=Keyring)
    zones: dict[str, ZoneAccess] = field(default_factory=dict)

    @classmethod
    def build(
        cls, keys: Iterable[TsigKey], settings: Iterable[TransferSettings], *, allow_md5: bool
    ) -> Access:
        zones = {s.zone: ZoneAccess.from_settings(s) for s in settings}
        names = frozenset(zones)
        scoped = []
        for key in keys:
            if key.zone is None and key.host is not None:
                # The store ties a host key to its host; the host's zone is what it is under.
                key = dataclasses.replace(key, zone=zone_for(key.host, names))
            scoped.append(key)
        return cls(Keyring(scoped, allow_md5=allow_md5), zones)

    def may_transfer(self, zone: str, key: ScopedKey | None, address: str) -> bool:
        """A zone key of this zone, or an address on the zone's allow-transfer list."""
        if key is not None and key.host is None and key.grants is None and zone in key.zones:
            return True  # a zone key without an update policy (a policy key only updates)
        lists = self.zones.get(zone)
        if lists is None or not lists.allow_transfer:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in network for network in lists.allow_transfer)

    def notify_targets(self, zone: str) -> tuple[tuple[str, int], ...]:
        lists = self.zones.get(zone)
        return () if lists is None else lists.notify


async def read_generation(conn: AsyncConnection) -> int | None:
    """The store's settings generation (None: a store without one)."""
    value = await conn.scalar(sa.select(settings_generation.c.generation))
    return None if value is None else int(value)


class AccessLoader:
    """Keeps `current` in step with the store."""

    def __init__(
        self,
        db: Database,
        *,
        allow_md5: bool = False,
        interval: float = 0.5,
        full_interval: float = 60.0,
        min_reload_gap: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.allow_md5 = allow_md5
        self.interval = interval
        self.full_interval = full_interval
        self.min_reload_gap = min_reload_gap
        self.current = Access()
        self.generation: int | None = None  # the store's, read just before `current`
        self.reloads = 0  # snapshots read (for tests and metrics)
        self._clock = clock
        self._started_at: float | None = None  # when the read behind `current` began
        self._lock = asyncio.Lock()
        self._woken = asyncio.Event()
        self.listeners: list[Callable[[Access], None]] = []

    def wake(self) -> None:
        """Look at the generation now (the store told us of a change), not at the next tick."""
        self._woken.set()

    async def reload(self) -> Access:
        """Read keys and zone lists in one snapshot and make them current."""
        started = self._clock()

        async def read(conn: AsyncConnection) -> tuple[int | None, Access]:
            # The generation first: what follows is at least that new, and a change
            # committed in between moves it again, so the next look reloads once more.
            generation = await read_generation(conn)
            access = Access.build(
                await all_keys(conn), await transfer_settings(conn), allow_md5=self.allow_md5
            )
            return generation, access

        generation, access = await self.db.read(read)
        self.reloads += 1
        if self._started_at is None or started >= self._started_at:
            self.current = access
            self.generation = generation
            self._started_at = started
        for listener in self.listeners:
            listener(self.current)
        return self.current

    async def refresh(self) -> Access:
        """A snapshot read after this call began: a request named a key we do not know, and
        it may have been added a moment ago.

        Concurrent callers share one read, and reads are at least `min_reload_gap` apart,
        so strangers naming random keys cannot make us read the store more often.
        """
        asked = self._clock()
        async with self._lock:
            last = self._started_at
            if last is not None and last >= asked:
                return self.current  # read while we queued for the lock
            if last is not None:
                wait = last + self.min_reload_gap - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)  # the rate limit itself: no event to wait for
            return await self.reload()

    async def check(self) -> bool:
        """Reload when the store's generation moved, or the last full read is
        `full_interval` old; whether it reloaded."""
        started = self._started_at
        if started is None or self._clock() - started >= self.full_interval:
            await self.reload()
            return True
        if await self.db.read(read_generation) == self.generation:
            return False
        await self.reload()
        return True

    async def run(self) -> None:
        """Look at the generation every `interval` seconds or when woken, forever; store
        errors are logged (once until it answers again) and retried."""
        failing = False
        while True:
            # The poll covers what wakes nothing (a SQLite store changed by another
            # process, a lost notification connection); a wake cuts it short.
            await woken(self._woken, self.interval)
            self._woken.clear()
            try:
                await self.check()
            except Exception:
                if not failing:
                    log.exception("reading TSIG keys and zone lists failed; retrying")
                failing = True
            else:
                if failing:
                    log.info("reading TSIG keys and zone lists again")
                failing = False
