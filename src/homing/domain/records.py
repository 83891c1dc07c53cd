"""Record values as the store and the journal carry them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

DEFAULT_HOST_TTL = 60

# An RRset as the store keeps it: owner name, type mnemonic, TTL, rdata texts one per line.
# Zones load from these without a value object per row.
StoredRRset = tuple[str, str, int, str]


class RRsetValue(NamedTuple):
    """One RRset: owner name (normalised, no final dot), type mnemonic, TTL and rdata texts.

    Empty `rdatas` means the RRset does not exist (a deletion). A named tuple rather than
    a frozen dataclass: the update batch makes several per update, and a frozen
    dataclass's __init__ cost three times as much (docs/benchmarks.md).
    """

    name: str
    rtype: str
    ttl: int
    rdatas: tuple[str, ...] = ()

    def encode(self) -> str:
        """The journal/store text of the rdatas: one per line, sorted for stable comparison."""
        return "\n".join(sorted(self.rdatas))

    @staticmethod
    def decode_rdatas(text: str | None) -> tuple[str, ...]:
        if not text:
            return ()
        return tuple(line for line in text.split("\n") if line)


class JournalEntry(NamedTuple):
    """One committed change of one RRset; `serial` is the zone's SOA serial after it.
    (A named tuple, as RRsetValue: one is made per change, on the update path.)"""

    position: int
    zone: str
    serial: int
    name: str
    rtype: str
    ttl: int
    old: tuple[str, ...]
    new: tuple[str, ...]
    actor: str
    via: str
    # The TTL `old` had (None when there was no old RRset, or for entries written before
    # it was kept): IXFR deletes exact records, TTL included (RFC 1995).
    old_ttl: int | None = None


@dataclass(frozen=True)
class ZoneMeta:
    """A zone's SOA parameters; the serial lives in ZoneData because it moves."""

    name: str
    mname: str
    rname: str
    refresh: int = 3600
    retry: int = 600
    expire: int = 1209600
    minimum: int = 60
    soa_ttl: int = 60
    # A secondary zone with no usable copy (before its first transfer, after its SOA
    # expire): every question in it is answered SERVFAIL (RFC 1034 4.3.5).
    expired: bool = False
