"""Signatures and NSEC3 records as the store keeps them: text, one record per line.

Signing is dnspython's (dns.dnssec.sign over `cryptography`); ECDSA signatures are
deterministic (RFC 6979), so the same RRset signed with the same times gives the same bytes.
"""

from __future__ import annotations

import calendar
import time
import zlib
from collections.abc import Iterable
from typing import Any

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from homing.dnssec.keys import ZoneKey
from homing.domain.records import RRsetValue

# A signature is valid this long after it is made, with some spread so that the signatures
# of a zone signed at once do not all fall due together; re-signed when fewer than
# RESIGN_BEFORE seconds remain. The inception is back-dated for clocks behind ours.
VALIDITY = 14 * 86400
SPREAD = 2 * 86400
RESIGN_BEFORE = 7 * 86400
BACKDATE = 3600
# Types signed by the entry keys (RFC 7344 4.1 for CDS/CDNSKEY); the rest by zone keys.
KEY_TYPES = frozenset({"DNSKEY", "CDS", "CDNSKEY"})
# Types the signer writes itself: never signed as data.
OWN_TYPES = frozenset({"RRSIG", "NSEC3"})
# NSEC3 parameters per RFC 9276: SHA-1, no extra iterations, no salt, no opt-out.
NSEC3PARAM = "1 0 0 -"


class Signer:
    """Signs a zone's RRsets with its active keys, at one moment."""

    def __init__(
        self,
        zone: str,
        keys: Iterable[ZoneKey],
        now: float | None = None,
        memo: dict[tuple[str, str, int, str], list[str]] | None = None,
    ) -> None:
        """`memo`: signatures made before, by RRset (name, type, TTL, rdatas), reused for
        an RRset that is the same and made (and kept) for the others."""
        self.memo = memo
        self.zone = zone
        self.origin = dns.name.from_text(zone)
        keys = list(keys)
        self.key_signers = [k for k in keys if k.signs_keys]
        self.zone_signers = [k for k in keys if k.signs_zone]
        self.now = time.time() if now is None else now

    def signatures(self, value: RRsetValue) -> list[str]:
        """The RRSIG texts of one RRset (none for an empty one)."""
        if not value.rdatas:
            return []
        if self.memo is not None:
            key = (value.name, value.rtype, value.ttl, value.encode())
            made = self.memo.get(key)
            if made is None:
                made = self.memo[key] = self._sign(value)
            return made
        return self._sign(value)

    def _sign(self, value: RRsetValue) -> list[str]:
        signers = self.key_signers if value.rtype in KEY_TYPES else self.zone_signers
        owner = dns.name.from_text(value.name)
        rrset = dns.rrset.from_text_list(
            owner, value.ttl, dns.rdataclass.IN, value.rtype, list(value.rdatas)
        )
        spread = zlib.crc32(f"{value.name} {value.rtype}".encode()) % SPREAD
        inception = int(self.now) - BACKDATE
        expiration = int(self.now) + VALIDITY + spread
        return [
            dns.dnssec.sign(
                rrset,
                key.private,
                self.origin,
                key.dnskey,
                inception=inception,
                expiration=expiration,
            ).to_text()
            for key in signers
        ]


def soa_value(apex: str, row: Any, serial: int) -> RRsetValue:
    """The SOA RRset homing serves for a zone (its `zones` row) at `serial`."""
    mname, rname = (n if n.endswith(".") else n + "." for n in (row.mname, row.rname))
    text = f"{mname} {rname} {serial % 2**32} {row.refresh} {row.retry} {row.expire} {row.minimum}"
    return RRsetValue(apex, "SOA", row.soa_ttl, (text,))


def covered(signature: str) -> str:
    """The type an RRSIG text covers."""
    return signature.split(" ", 1)[0].upper()


def expiration(signature: str) -> int:
    """When an RRSIG text expires, Unix time."""
    field = signature.split(" ")[4]
    if field.isdigit() and len(field) == 14:
        return calendar.timegm(time.strptime(field, "%Y%m%d%H%M%S"))
    return int(field)


def hashed_owner(name: str, zone: str) -> str:
    """The NSEC3 owner of `name` in `zone` (RFC 5155 5), lower-case."""
    digest = dns.dnssec.nsec3_hash(name + ".", None, 0, 1).lower()
    return f"{digest}.{zone}"


def nsec3_text(next_owner: str, types: Iterable[str]) -> str:
    """An NSEC3 record's text: our parameters, the next hashed owner, the types at the name."""
    digest = next_owner.split(".", 1)[0]
    bitmap = " ".join(sorted(set(types), key=lambda t: int(dns.rdatatype.from_text(t))))
    return f"{NSEC3PARAM} {digest} {bitmap}".rstrip()


def negative_ttl(minimum: int, soa_ttl: int) -> int:
    """The NSEC3 TTL: the negative-caching TTL (RFC 9077)."""
    return min(minimum, soa_ttl)
