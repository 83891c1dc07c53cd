"""Login throttling: failures per user+address and per address, in sliding windows, then lockout.

The failures and locks live in the store, so every worker process (`serve --workers N`)
and every node sharing a PostgreSQL store counts the same failures: a guesser gains
nothing by landing on another worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from homing.store.db import Database, Txn
from homing.store.schema import login_failures, login_locks


class LoginThrottle:
    """`retry_after()` before checking a password, `failed()` or `succeeded()` after.

    A user+address pair is locked after `max_failures` within `window` seconds; an address
    after `max_failures_per_address` across all user IDs (guessing many accounts).
    """

    def __init__(
        self,
        db: Database,
        *,
        max_failures: int = 5,
        max_failures_per_address: int = 30,
        window: float = 900.0,
        lockout: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_failures < 1 or max_failures_per_address < max_failures:
            raise ValueError("login throttle: need 1 <= max_failures <= max_failures_per_address")
        if window <= 0 or lockout <= 0:
            raise ValueError("login throttle: window and lockout must be positive")
        self.db = db
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.window = window
        self.lockout = lockout
        self.clock = clock

    @staticmethod
    def _keys(user_id: str, address: str) -> tuple[str, str]:
        return f"user:{user_id.strip().casefold()[:64]}|{address}", f"addr:{address}"

    async def retry_after(self, user_id: str, address: str) -> float:
        """Seconds until this user+address may try again; 0 when not locked."""
        now = self.clock()
        keys = self._keys(user_id, address)

        async def query(conn: AsyncConnection) -> float | None:
            until = await conn.scalar(
                sa.select(sa.func.max(login_locks.c.until)).where(login_locks.c.key.in_(keys))
            )
            return None if until is None else float(until)

        until = await self.db.read(query)
        return max(0.0, (until or 0.0) - now)

    async def failed(self, user_id: str, address: str) -> None:
        """Count one failure for the pair and the address; lock whichever reached its limit."""
        now = self.clock()
        user_key, address_key = self._keys(user_id, address)
        limits = ((user_key, self.max_failures), (address_key, self.max_failures_per_address))

        async def unit(txn: Txn) -> None:
            conn = txn.conn
            # Forget what has left every window, so the tables stay as small as the attacks.
            await conn.execute(
                sa.delete(login_failures).where(login_failures.c.at <= now - self.window)
            )
            await conn.execute(sa.delete(login_locks).where(login_locks.c.until <= now))
            for key, limit in limits:
                await conn.execute(sa.insert(login_failures).values(key=key, at=now))
                count = await conn.scalar(
                    sa.select(sa.func.count()).where(login_failures.c.key == key)
                )
                if (count or 0) >= limit:
                    await conn.execute(sa.delete(login_failures).where(login_failures.c.key == key))
                    await conn.execute(sa.delete(login_locks).where(login_locks.c.key == key))
                    await conn.execute(
                        sa.insert(login_locks).values(key=key, until=now + self.lockout)
                    )

        await self.db.write(unit)

    async def succeeded(self, user_id: str, address: str) -> None:
        """A good password clears the pair's failures (not the address's: others may guess)."""
        user_key, _ = self._keys(user_id, address)

        async def unit(txn: Txn) -> None:
            await txn.conn.execute(
                sa.delete(login_failures).where(login_failures.c.key == user_key)
            )

        await self.db.write(unit)

    async def forget_user(self, user_id: str) -> None:
        """A password reset clears the account's failures and locks from every address."""
        prefix = self._keys(user_id, "")[0]  # "user:<key>|"

        async def unit(txn: Txn) -> None:
            for table in (login_failures, login_locks):
                await txn.conn.execute(
                    sa.delete(table).where(sa.func.substr(table.c.key, 1, len(prefix)) == prefix)
                )

        await self.db.write(unit)
