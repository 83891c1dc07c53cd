"""Login throttling: failures per user+address and per address, in sliding windows, then lockout."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class LoginThrottle:
    """In-memory (per process). `retry_after()` before checking a password, `failed()` after.

    A user+address pair is locked after `max_failures` within `window` seconds; an address
    after `max_failures_per_address` across all user IDs (guessing many accounts).
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        max_failures_per_address: int = 30,
        window: float = 900.0,
        lockout: float = 900.0,
        max_buckets: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or max_failures_per_address < max_failures:
            raise ValueError("login throttle: need 1 <= max_failures <= max_failures_per_address")
        if window <= 0 or lockout <= 0 or max_buckets < 1:
            raise ValueError("login throttle: window, lockout and max_buckets must be positive")
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.window = window
        self.lockout = lockout
        self.max_buckets = max_buckets
        self.clock = clock
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()

    @staticmethod
    def _keys(user_id: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("user", f"{user_id.strip().casefold()}\x00{address}"), ("addr", address)

    def retry_after(self, user_id: str, address: str) -> float:
        """Seconds until this user+address may try again; 0 when not locked."""
        now = self.clock()
        waits = [0.0]
        for key in self._keys(user_id, address):
            bucket = self._buckets.get(key)
            if bucket is not None:
                waits.append(bucket.locked_until - now)
        return max(waits)

    def failed(self, user_id: str, address: str) -> None:
        now = self.clock()
        user_key, address_key = self._keys(user_id, address)
        for key, limit in (
            (user_key, self.max_failures),
            (address_key, self.max_failures_per_address),
        ):
            bucket = self._buckets.pop(key, None) or _Bucket()
            self._buckets[key] = bucket  # most recently used last
            bucket.failures.append(now)
            while bucket.failures and bucket.failures[0] <= now - self.window:
                bucket.failures.popleft()
            if len(bucket.failures) >= limit:
                bucket.locked_until = now + self.lockout
                bucket.failures.clear()
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)  # forget the longest-idle pair

    def succeeded(self, user_id: str, address: str) -> None:
        """A good password clears the pair's failures (not the address's: others may guess)."""
        user_key, _ = self._keys(user_id, address)
        self._buckets.pop(user_key, None)
