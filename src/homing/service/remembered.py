"""Recently verified account passwords, so a router's honest update does not pay argon2 each time.

An entry is an HMAC-SHA256, under a key drawn at random when the process starts, of the user
key, the password and the account's stored password hash. Nothing in memory turns back into
a password, and a changed password (a new stored hash) matches no entry, in this process or
any other. Entries live `ttl` seconds; the oldest go first past `size`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable


class RememberedCredentials:
    def __init__(
        self, ttl: float, size: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, float] = OrderedDict()  # digest: expiry

    def _digest(self, user_key: str, password: str, stored_hash: str) -> bytes:
        message = b"\0".join(s.encode("utf-8", "surrogatepass") for s in (user_key, stored_hash))
        message += b"\0" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def known(self, user_key: str, password: str, stored_hash: str) -> bool:
        """True when this password was verified for this stored hash within `ttl` seconds."""
        if self.ttl <= 0 or not self._entries:
            return False
        digest = self._digest(user_key, password, stored_hash)
        expiry = self._entries.get(digest)
        if expiry is None:
            return False
        if expiry <= self.clock():
            del self._entries[digest]
            return False
        return True

    def remember(self, user_key: str, password: str, stored_hash: str) -> None:
        if self.ttl <= 0 or self.size <= 0:
            return
        digest = self._digest(user_key, password, stored_hash)
        self._entries[digest] = self.clock() + self.ttl
        self._entries.move_to_end(digest)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget_all(self) -> None:
        self._entries.clear()
