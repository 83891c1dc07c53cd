"""The answers a Responder keeps between queries, and their forgetting as the zones change.

Two stores, both bounded and filed by what their answers depend on:

- prepared answers of the slow path (the apex, CNAME chains, ANY, referrals), rendered by
  dnspython once, keyed by the lower-cased question and our OPT record, filed by zone:
  they carry the apex's SOA, so any change in the zone forgets them;
- whole positive UDP replies, keyed by the query's bytes after its ID lower-cased,
  filed by owner: the same query again, in any letter case, is answered with one
  lower-casing, one dictionary lookup and the new ID, as PowerDNS's packet cache does; a
  change at that owner forgets them. A signed zone's NODATA replies with DO are kept too,
  filed by zone (they carry the SOA): any change in the zone forgets them. A resolver
  that randomises the letter case of its names (0x20) asks the same question in new
  bytes each time: its own spelling of the name is put back into the reply kept
  (`kept_reply`). The answer records name their owner by a pointer to the question, so
  they echo that spelling too.

Neither is ever staler than the zone index: the index counts its changes (a generation),
and the stores catch up with the changes they have not seen before they are read.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Generic, TypeVar

from homing.dns.index import ZoneIndex
from homing.dns.wire import COPIED_FLAGS, ID_FLAGS, Question, truncated

__all__ = [
    "DEFAULT_CACHE_SIZE",
    "DEFAULT_REPLY_CACHE_SIZE",
    "EXACT",
    "Filed",
    "KeptAnswers",
    "Prepared",
    "kept_reply",
]

# Prepared answers kept; at about 400 bytes each this bounds the cache near 160 MB even
# under a flood of random names. A zone's whole query mix should fit (see benchmarks).
DEFAULT_CACHE_SIZE = 400_000
# Whole UDP replies kept (about 350 bytes each with their filing: some 45 MB when full);
# the positive answers of a 100,000-host zone's query mix fit (see benchmarks).
DEFAULT_REPLY_CACHE_SIZE = 131_072
_EVICT_FRACTION = 8  # when full, the oldest 1/8 of the answers go


@dataclass(frozen=True, slots=True)
class Prepared:
    """A response for a lower-cased question, cut around the question section."""

    flags: int
    counts: bytes  # QDCOUNT..ARCOUNT, 8 bytes
    tail: bytes  # everything after the question section
    fits_tcp: bool = True  # False: even 65535 bytes are too few, every reply is truncated

    def render(self, q: Question, limit: int) -> bytes:
        """The response for `q`, truncated to the question alone if over `limit` bytes."""
        flags = self.flags | (q.flags & COPIED_FLAGS)
        if self.fits_tcp and 12 + len(q.question) + len(self.tail) <= limit:
            return ID_FLAGS.pack(q.ident, flags) + self.counts + q.question + self.tail
        return truncated(q.ident, flags, q.question, q.opt)


V = TypeVar("V")


class Filed(Generic[V]):
    """A bounded cache whose keys are filed under groups (a zone, an owner), so that a
    change forgets its group's keys and nothing else; when full, the oldest entries go."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: dict[bytes, V] = {}
        self._groups: dict[bytes, list[bytes]] = {}
        self._filed = 0  # keys filed since the groups were last emptied

    def put(self, key: bytes, value: V, group: bytes | None) -> None:
        """Keep `value`; filed under `group`, or under none (only clear() forgets it)."""
        if len(self.entries) >= self.size:
            self._evict()
        self.entries[key] = value
        if group is not None:
            self._groups.setdefault(group, []).append(key)
            self._filed += 1

    def forget(self, group: bytes) -> None:
        for key in self._groups.pop(group, ()):
            self.entries.pop(key, None)

    def clear(self) -> None:
        self.entries.clear()  # in place: a caller may hold the dict (Responder.udp_replies)
        self._groups.clear()
        self._filed = 0

    def _evict(self) -> None:
        """Drop the entries kept longest ago (an evicted hot one is soon kept again).

        The groups may still hold evicted keys (forgetting them is a no-op); once they
        hold far more keys than the cache, everything starts over.
        """
        if self._filed > 4 * self.size:
            self.clear()
            return
        for key in list(itertools.islice(self.entries, max(1, self.size // _EVICT_FRACTION))):
            del self.entries[key]


class KeptAnswers:
    """The prepared answers (filed by zone, wire origin) and the whole UDP replies (filed
    by owner name) of one zone index; `catch_up()` forgets what the index changed since."""

    def __init__(self, index: ZoneIndex, *, cache_size: int, reply_cache_size: int) -> None:
        for setting, size in (("cache_size", cache_size), ("reply_cache_size", reply_cache_size)):
            if size < 1:
                raise ValueError(f"{setting} must be at least 1, not {size}")
        self.index = index
        self.prepared: Filed[Prepared] = Filed(cache_size)
        self.replies: Filed[Kept] = Filed(reply_cache_size)
        self.generation = index.generation  # the index as both stores last saw it

    def catch_up(self) -> None:
        """Forget what changed since our last look: the prepared answers of every zone
        changed, the replies kept for every owner changed."""
        changes = self.index.changes_since(self.generation)
        self.generation = self.index.generation
        if changes is None:  # too many changes to tell
            self.forget_all()
            return
        origins: set[bytes] = set()
        names: list[bytes] = []  # owners' full names: how the replies are filed
        for origin, owner in changes:
            if owner is None:  # a zone came or went, or a zone cut did
                self.forget_all()
                return
            origins.add(origin)
            names.append(owner + origin)
        for origin in origins:
            self.prepared.forget(origin)
            self.replies.forget(origin)  # a signed zone's NODATA replies (and the apex's)
        for name in names:
            self.replies.forget(name)

    def keep_reply(self, wire: bytes, reply: bytes, name: bytes, group: bytes = b"") -> None:
        """Keep `reply` to the plain UDP query `wire`, whose name lower-cased is `name`,
        both with that name in lower case (see `kept_reply`); filed under `name`, or
        under `group`: a zone's origin for a reply any change in the zone forgets."""
        rest = 12 + len(name)
        outside = wire[2:12] + wire[rest:]  # the header after the ID, type, class, EDNS
        if outside.lower() != outside or outside.upper() != outside:
            # A letter outside the name (type 65 is "A", type 97 "a"): lower-casing would
            # confuse it with another question, so it is kept for its own bytes alone.
            key = EXACT + wire[2:12] + name + wire[rest:]
        else:
            key = wire[2:12] + name + wire[rest:]
        self.replies.put(key, (reply[2:12], len(name), reply[rest:]), group or name)

    def forget_all(self) -> None:
        self.prepared.clear()
        self.replies.clear()


# Before the key of a query kept for its own bytes alone: no lower-cased query starts so.
EXACT = b"A"
# A kept UDP reply in the parts around its question's name, which each asker's datagram
# gives in its own letter case: the header after the ID (10 bytes), the name's length,
# and what follows the name (type, class, the answer's sections).
Kept = tuple[bytes, int, bytes]


def kept_reply(replies: dict[bytes, Kept], wire: bytes) -> bytes | None:
    """The kept reply to the UDP query `wire` (`replies` from Responder.udp_replies),
    with `wire`'s ID and spelling of its name; None when none is kept.

    The lookup is by the query after its ID lower-cased: only queries whose bytes outside
    the name hold no letter are kept under that key, so a hit differs from `wire` in the
    letter case of the name alone. The header needs no check: it is the kept query's. The
    UDP server does the same in its loop, in place in the datagram's buffer
    (homing.dns.udp.DatagramBatch.queue_kept); keep the two alike.
    """
    asked = wire[2:]
    kept = replies.get(asked.lower())
    if kept is None:
        kept = replies.get(EXACT + asked)  # a letter outside the name: its own bytes only
        if kept is None:
            return None
    header, length, tail = kept
    return wire[:2] + header + wire[12 : 12 + length] + tail
