"""Response rate limiting for DNS over UDP, as NSD's rrl-ratelimit and rrl-slip.

A spoofed source can aim our answers at a victim: a 48-byte query buys a reply many
times its size. Each source prefix (/24 for IPv4, /56 for IPv6, what one site holds)
gets `rate` answers per second; past that, every `slip`-th answer goes out as an empty
truncated one (a real resolver behind the prefix retries over TCP, which a spoofer
cannot), and the others are dropped. TCP is never limited: its handshake proves the
address.

Sans-I/O: the UDP transport asks `check(prefix, second)` once per query, with the
prefix as raw address bytes it already holds, so the hot path costs a dictionary look
and two integer compares.
"""

from __future__ import annotations

import socket

__all__ = ["ANSWER", "DROP", "SLIP", "RateLimiter", "prefix_of"]

ANSWER = 0
SLIP = 1
DROP = 2

IPV4_PREFIX = 3  # bytes of the address that name its /24
IPV6_PREFIX = 7  # ... and an IPv6 address's /56
DEFAULT_TABLE = 65536  # prefixes remembered at once; past that, quiet ones are forgotten


def prefix_of(host: str) -> bytes:
    """The prefix key of an address in text ("192.0.2.7" -> its /24's three bytes)."""
    if ":" in host:
        return socket.inet_pton(socket.AF_INET6, host.partition("%")[0])[:IPV6_PREFIX]
    return socket.inet_pton(socket.AF_INET, host)[:IPV4_PREFIX]


class RateLimiter:
    """Answers per second per source prefix; counts what it held back."""

    def __init__(self, rate: int, slip: int, *, table_size: int = DEFAULT_TABLE) -> None:
        if rate < 1:
            raise ValueError(f"rrl_rate must be at least 1 answer per second, not {rate}")
        if slip < 0:
            raise ValueError(f"rrl_slip must be 0 (drop all) or more, not {slip}")
        if table_size < 1:
            raise ValueError(f"table_size must be at least 1, not {table_size}")
        self.rate = rate
        self.slip = slip
        self.table_size = table_size
        self.dropped = 0
        self.slipped = 0
        # prefix -> [second, answers in it]; lists, so a busy prefix allocates nothing.
        self._table: dict[bytes, list[int]] = {}

    def check(self, prefix: bytes, second: int) -> int:
        """ANSWER, SLIP (a truncated empty answer) or DROP for one more answer to `prefix`."""
        entry = self._table.get(prefix)
        if entry is None:
            if len(self._table) >= self.table_size:
                self._evict(second)
            self._table[prefix] = [second, 1]
            return ANSWER
        if entry[0] != second:
            entry[0] = second
            entry[1] = 1
            return ANSWER
        count = entry[1] = entry[1] + 1
        if count <= self.rate:
            return ANSWER
        # NSD's rrl-slip: 1 truncates every limited answer, 2 every other one, 0 none.
        if self.slip and (count - self.rate) % self.slip == 0:
            return SLIP
        return DROP

    def held(self, verdict: int) -> None:
        """Count a SLIP or DROP the transport carried out (a query that proved its
        address with a DNS cookie is answered instead, and not counted)."""
        if verdict == SLIP:
            self.slipped += 1
        else:
            self.dropped += 1

    def __len__(self) -> int:
        """Prefixes remembered now."""
        return len(self._table)

    @property
    def limited(self) -> int:
        """Answers dropped or sent truncated so far."""
        return self.dropped + self.slipped

    def _evict(self, second: int) -> None:
        """Forget the prefixes not heard from this second; if that is not enough, all.

        A flood of random spoofed prefixes then costs a table rebuild now and then, and
        every prefix that is really over its rate is over it again within the second.
        """
        table = self._table
        for prefix in [p for p, entry in table.items() if entry[0] != second]:
            del table[prefix]
        if len(table) >= self.table_size:
            table.clear()
