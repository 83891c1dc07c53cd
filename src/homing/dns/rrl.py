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

IPV4_MASK = (1 << 24) - 1  # a little-endian read of an address, down to its /24 ...
IPV6_MASK = (1 << 56) - 1  # ... or of an IPv6 address's first 8 bytes, to its /56
DEFAULT_TABLE = 65536  # prefixes counted in one second; past that, the count starts over


def prefix_of(host: str) -> int:
    """The prefix key of an address in text, as the UDP transport reads it from a
    sockaddr: its first bytes read little-endian, masked to the /24 or /56."""
    if ":" in host:
        packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
        return int.from_bytes(packed[:8], "little") & IPV6_MASK
    return int.from_bytes(socket.inet_pton(socket.AF_INET, host), "little") & IPV4_MASK


class RateLimiter:
    """Answers per second per source prefix; counts what it held back.

    The counts of the current second are a plain dict the transport updates itself
    (`window()`): a dictionary look, an add and a store per query. A new second, or a
    table grown past `table_size` (a flood of spoofed prefixes), starts a fresh one.
    """

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
        self._second = -1
        self._table: dict[int, int] = {}  # prefix -> answers in this second

    def window(self, second: int) -> dict[int, int]:
        """The counts for `second`: prefix -> answers so far. Ask again for every batch
        of queries; the table may be replaced in between."""
        if second != self._second or len(self._table) >= self.table_size:
            self._second = second
            self._table = {}
        return self._table

    def over(self, count: int) -> int:
        """SLIP or DROP for a prefix's `count`-th answer of a second, `count` > rate."""
        # NSD's rrl-slip: 1 truncates every limited answer, 2 every other one, 0 none.
        if self.slip and (count - self.rate) % self.slip == 0:
            return SLIP
        return DROP

    def check(self, prefix: int, second: int) -> int:
        """ANSWER, SLIP (a truncated empty answer) or DROP for one more answer to `prefix`."""
        table = self.window(second)
        count = table[prefix] = table.get(prefix, 0) + 1
        return ANSWER if count <= self.rate else self.over(count)

    def held(self, verdict: int) -> None:
        """Count a SLIP or DROP the transport carried out (a query that proved its
        address with a DNS cookie is answered instead, and not counted)."""
        if verdict == SLIP:
            self.slipped += 1
        else:
            self.dropped += 1

    def __len__(self) -> int:
        """Prefixes counted in the current second."""
        return len(self._table)

    @property
    def limited(self) -> int:
        """Answers dropped or sent truncated so far."""
        return self.dropped + self.slipped
