"""One throttle for every door that takes a secret, its state in the store.

A key names who is counted: a source prefix (`src:`, every failure from a /24 or /56), an
account from a prefix (`acct:USER@PREFIX`), an account from anywhere (`acct:USER`), sign-ups
from a prefix (`signup:`). Each key has several windows (a burst and a sustained rate), each
a row kept as a generic cell rate algorithm: `limit` attempts per `period` seconds, one more
every period/limit seconds once they are spent. A row is charged with one upsert and read
back in the same transaction, so parallel guesses cannot overrun a limit: on PostgreSQL the
upsert locks the row until the commit, on SQLite the one writer runs units one by one.

A slow check (argon2) reserves its attempt before hashing and gets it back when the
password was right; a cheap one (a SHA-256 secret) counts its failure after the check. Each
process keeps the locked source prefixes in memory, refreshed from the store about once a
second, so a locked source is refused before any hashing and without a store round trip.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.domain.errors import HomingError
from homing.domain.windows import Window
from homing.service.remembered import RememberedCredentials
from homing.store.db import Database, Txn
from homing.store.schema import throttle as rows

Clock = Callable[[], float]
MAX_LOCKED = 65536  # locked sources a process keeps in memory
PRUNE_EVERY = 600.0  # seconds between deletions of drained rows, per process
_EPSILON = 1e-6  # float slack when comparing arrival times


@dataclass(frozen=True)
class ThrottlePolicy:
    """The limits (from Settings); each key kind has its own windows."""

    source: tuple[Window, ...] = (Window(60, 60), Window(600, 3600))
    account_source: tuple[Window, ...] = (Window(5, 900), Window(20, 86400))
    account: tuple[Window, ...] = (Window(50, 3600), Window(200, 86400))
    signup: tuple[Window, ...] = (Window(5, 3600), Window(20, 86400))
    ipv4_prefix: int = 24
    ipv6_prefix: int = 56
    remember_seconds: float = 600.0
    remember_size: int = 4096


class Charge(NamedTuple):
    """A key and its windows: what one attempt is counted against."""

    key: str
    windows: tuple[Window, ...]


class Throttled(HomingError):
    """Refused before the secret was checked; `retry_after` seconds until the next attempt."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("Too many failed attempts; try again later.")
        self.retry_after = max(1.0, retry_after)


@dataclass
class Throttle:
    """The doors' one throttle over a store; one per process (Homing.throttle)."""

    db: Database
    policy: ThrottlePolicy = ThrottlePolicy()
    clock: Clock = time.time
    refresh: float = 1.0  # seconds between reads of the store's locked sources
    remembered: RememberedCredentials = field(init=False)
    _locked: dict[str, float] = field(init=False, default_factory=dict)  # prefix: until
    _refreshed: float = field(init=False, default=float("-inf"))
    _refreshing: bool = field(init=False, default=False)
    _pruned: float = field(init=False, default=float("-inf"))

    def __post_init__(self) -> None:
        self.remembered = RememberedCredentials(
            self.policy.remember_seconds, self.policy.remember_size
        )

    # -- keys -------------------------------------------------------------------

    def prefix(self, address: str) -> str:
        """The source prefix counted for an address (/24, /56); the text itself if unparsable."""
        return _prefix(address, self.policy.ipv4_prefix, self.policy.ipv6_prefix)

    def source(self, address: str) -> list[Charge]:
        return [Charge(f"src:{self.prefix(address)}", self.policy.source)]

    def account(self, user_key: str, address: str) -> list[Charge]:
        """A password guess: its source, the account from that source, the account."""
        prefix = self.prefix(address)
        user = user_key[:64]
        return [
            Charge(f"src:{prefix}", self.policy.source),
            Charge(f"acct:{user}@{prefix}", self.policy.account_source),
            Charge(f"acct:{user}", self.policy.account),
        ]

    def signup(self, address: str) -> list[Charge]:
        return [Charge(f"signup:{self.prefix(address)}", self.policy.signup)]

    # -- the doors ----------------------------------------------------------------

    async def check_source(self, address: str) -> None:
        """Raise Throttled when the address's prefix is locked; no store round trip but
        the refresh of the locked set, at most once per `refresh` seconds per process."""
        wait = await self.source_wait(address)
        if wait > 0:
            raise Throttled(wait)

    async def source_wait(self, address: str) -> float:
        """Seconds until the address's prefix may try again, as this process knows it."""
        if time.monotonic() - self._refreshed > self.refresh and not self._refreshing:
            await self._refresh()
        if not self._locked:
            return 0.0  # the common case: nothing locked, no prefix worked out
        return self._prefix_wait(self.prefix(address))

    def _prefix_wait(self, prefix: str) -> float:
        until = self._locked.get(prefix)
        return 0.0 if until is None else max(0.0, until - self.clock())

    async def wait_of(self, conn: AsyncConnection, charges: Sequence[Charge]) -> float:
        """Seconds until the charges' keys may all try again (0: now), read on `conn`: a
        right password must not pass a lock the wrong ones could not."""
        until = await conn.scalar(
            sa.select(sa.func.max(rows.c.until)).where(rows.c.key.in_([c.key for c in charges]))
        )
        return 0.0 if until is None else max(0.0, float(until) - self.clock())

    async def reserve(self, charges: Sequence[Charge]) -> None:
        """Take one attempt from every window of every key before a slow check, or raise
        Throttled. `refund()` gives it back when the secret was right. A refused attempt
        still counts for its source (unless the source itself refused it), so a source that
        keeps knocking on a locked account is soon refused from memory, without a write."""
        if self._locked or time.monotonic() - self._refreshed > self.refresh:
            await self.source_wait("")  # refreshed when stale
            for key, _ in charges:
                if key.startswith("src:") and (wait := self._prefix_wait(key[4:])) > 0:
                    raise Throttled(wait)
        now = self.clock()

        async def unit(txn: Txn) -> tuple[float, float]:
            await self._prune_now_and_then(txn.conn, now)
            cells = _cells(charges)
            wait = source_wait = source_until = 0.0
            for key, window in cells:
                tat, until = await self._charge(txn.conn, key, window, now, cap=False)
                if tat - now > window.period + _EPSILON:
                    wait = max(wait, tat - window.period - now)
                    if key.startswith("src:"):
                        source_wait = max(source_wait, tat - window.period - now)
                elif key.startswith("src:"):
                    source_until = max(source_until, until)
            if wait > 0:
                kept = source_wait == 0  # refused by the account: the source's charge stays
                await _refund(txn.conn, [c for c in cells if not (kept and _is_source(c[0]))])
                if kept:
                    source_wait = source_until - now
            return wait, source_wait

        wait, source_wait = await self.db.write(unit)
        if source_wait > 0:
            self._note_source(charges, now + source_wait)
        if wait > 0:
            raise Throttled(wait)

    async def refund(self, charges: Sequence[Charge]) -> None:
        """The reserved attempt succeeded: it counts against nothing."""

        async def unit(txn: Txn) -> None:
            await _refund(txn.conn, list(_cells(charges)))

        await self.db.write(unit)

    async def failed(self, charges: Sequence[Charge]) -> None:
        """Count a failure found by a cheap check (one write); the keys' state is kept at
        most one full window ahead, however many failures arrive at once."""
        now = self.clock()

        async def unit(txn: Txn) -> float:
            await self._prune_now_and_then(txn.conn, now)
            locked_until = 0.0
            for key, window in _cells(charges):
                _, until = await self._charge(txn.conn, key, window, now, cap=True)
                if key.startswith("src:"):
                    locked_until = max(locked_until, until)
            return locked_until

        locked_until = await self.db.write(unit)
        if locked_until > now:
            self._note_source(charges, locked_until)

    async def forget_account(self, user_key: str) -> None:
        """A new password: the account's failures and locks from every source are gone."""
        user = user_key[:64]

        async def unit(txn: Txn) -> None:
            prefix = f"acct:{user}@"
            await txn.conn.execute(
                sa.delete(rows).where(
                    sa.or_(
                        rows.c.key == f"acct:{user}",
                        sa.func.substr(rows.c.key, 1, len(prefix)) == prefix,
                    )
                )
            )

        await self.db.write(unit)

    async def prune(self) -> int:
        """Delete rows whose every attempt has drained (their state is the default)."""
        now = self.clock()

        async def unit(txn: Txn) -> int:
            result = await txn.conn.execute(sa.delete(rows).where(rows.c.tat <= now))
            return int(result.rowcount or 0)

        return await self.db.write(unit)

    async def _prune_now_and_then(self, conn: AsyncConnection, now: float) -> None:
        """With a failure, now and then: the table stays as small as the recent attacks."""
        if now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            await conn.execute(sa.delete(rows).where(rows.c.tat <= now))

    # -- the store ------------------------------------------------------------------

    async def _charge(
        self, conn: AsyncConnection, key: str, window: Window, now: float, *, cap: bool
    ) -> tuple[float, float]:
        """One more attempt on a row; its new arrival time and until when it is locked."""
        interval = window.interval
        base = sa.case((rows.c.tat > now, rows.c.tat), else_=sa.literal(now))
        tat: Any = base + interval
        if cap:
            tat = sa.case((tat > now + window.period, sa.literal(now + window.period)), else_=tat)
        insert: Any = (postgresql.insert if not self.db.is_sqlite else sqlite.insert)(rows)
        statement = (
            insert.values(
                key=key,
                period=window.period,
                tat=now + interval,
                until=now + 2 * interval - window.period,
            )
            .on_conflict_do_update(
                index_elements=[rows.c.key, rows.c.period],
                set_={"tat": tat, "until": tat - window.period + interval},
            )
            .returning(rows.c.tat, rows.c.until)
        )
        row = (await conn.execute(statement)).one()
        return float(row.tat), float(row.until)

    async def _refresh(self) -> None:
        """Merge the store's locked sources into this process's set (locks only expire)."""
        self._refreshing = True
        try:
            now = self.clock()

            async def query(conn: AsyncConnection) -> list[tuple[str, float]]:
                result = await conn.execute(
                    sa.select(rows.c.key, rows.c.until)
                    .where(rows.c.until > now, rows.c.key.like("src:%"))
                    .order_by(rows.c.until.desc())
                    .limit(MAX_LOCKED)
                )
                return [(str(key), float(until)) for key, until in result]

            found = await self.db.read(query)
            locked = {p: u for p, u in self._locked.items() if u > now}
            for key, until in found:
                prefix = key[4:]
                if until > locked.get(prefix, 0.0):
                    locked[prefix] = until
            self._locked = locked
        finally:
            self._refreshed = time.monotonic()
            self._refreshing = False

    def _note_source(self, charges: Sequence[Charge], until: float) -> None:
        for key, _ in charges:
            if key.startswith("src:") and until > self._locked.get(key[4:], 0.0):
                self._locked[key[4:]] = until


@functools.lru_cache(maxsize=4096)
def _prefix(address: str, ipv4_bits: int, ipv6_bits: int) -> str:
    """Remembered: while any source is locked, every update asks for its own prefix."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        network = int(ip) >> (32 - ipv4_bits) << (32 - ipv4_bits)
        return f"{ipaddress.IPv4Address(network)}/{ipv4_bits}"
    network = int(ip) >> (128 - ipv6_bits) << (128 - ipv6_bits)
    return f"{ipaddress.IPv6Address(network)}/{ipv6_bits}"


def _cells(charges: Iterable[Charge]) -> list[tuple[str, Window]]:
    """Every (key, window) row of the charges, in one order (no deadlock between writers)."""
    return sorted(
        ((key, window) for key, windows in charges for window in windows),
        key=lambda cell: (cell[0], cell[1].period),
    )


async def _refund(conn: AsyncConnection, cells: list[tuple[str, Window]]) -> None:
    for key, window in cells:
        await conn.execute(
            sa.update(rows)
            .where(rows.c.key == key, rows.c.period == window.period)
            .values(tat=rows.c.tat - window.interval, until=rows.c.until - window.interval)
        )


def _is_source(key: str) -> bool:
    return key.startswith("src:")
