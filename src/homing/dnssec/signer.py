"""Signatures and NSEC3 records as the store keeps them: text, one record per line.

The signed data (RFC 4034 3.1.8.1: the RRSIG's fields, then each record in canonical
form and order) is built here from the records' wire and signed with `cryptography`, as
dns.dnssec.sign would but without its objects per record; dnspython parses only rdata of
types other than addresses. ECDSA signatures are deterministic (RFC 6979), so the same
RRset signed with the same times gives the same bytes, those dns.dnssec.sign gives.
"""

from __future__ import annotations

import base64
import calendar
import functools
import socket
import struct
import time
import zlib
from collections.abc import Iterable
from typing import Any

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from homing.dns.rrwire import name_wire
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

_RRSIG_FIXED = struct.Struct("!HBBLLLH")  # covered type, algorithm, labels, TTL, times, tag
_RECORD = struct.Struct("!HHLH")  # type, class, TTL, rdata length
_IN = int(dns.rdataclass.RdataClass.IN)
_FAMILIES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}
_ECDSA = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_ECDSA_ALGORITHM = 13  # ECDSAP256SHA256 (RFC 6605): r and s, 32 bytes each


@functools.lru_cache(maxsize=64)
def _type(rtype: str) -> dns.rdatatype.RdataType:
    return dns.rdatatype.from_text(rtype)


def _canonical(rtype: str, text: str) -> bytes:
    """One rdata's canonical wire (RFC 4034 6.2): addresses by inet_pton, the rest by
    dnspython (names in it lower-cased where the RFC says)."""
    family = _FAMILIES.get(rtype)
    if family is not None:
        try:
            return socket.inet_pton(family, text)
        except OSError:
            pass  # dnspython's parser gives the error its usual words
    return dns.rdata.from_text(dns.rdataclass.IN, _type(rtype), text).to_digestable()


def _labels(owner: bytes) -> int:
    """The RRSIG labels field of a wire owner: its labels, a leading wildcard not counted."""
    count = 0
    pos = 0
    while owner[pos]:
        count += 1
        pos += owner[pos] + 1
    return count - 1 if owner.startswith(b"\x01*") else count


def _raw_signature(key: ZoneKey, data: bytes) -> bytes:
    """The signature field for `data`: ECDSA's r and s (RFC 6605 4), or Ed25519's (RFC 8080)."""
    if key.algorithm == _ECDSA_ALGORITHM:
        r, s = decode_dss_signature(key.private.sign(data, _ECDSA))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return bytes(key.private.sign(data))


def _base64(data: bytes) -> str:
    """Base64 in groups of 32 characters, as dnspython writes a signature's text."""
    text = base64.b64encode(data).decode()
    return " ".join(text[i : i + 32] for i in range(0, len(text), 32))


def _sigtime(moment: int) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(moment))


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
        self.deferred: dict[tuple[str, str, int, str], RRsetValue] | None = None
        self.zone = zone
        self.origin = dns.name.from_text(zone)
        keys = list(keys)
        self.key_signers = [(k, k.tag) for k in keys if k.signs_keys]
        self.zone_signers = [(k, k.tag) for k in keys if k.signs_zone]
        self.signer_wire = name_wire(zone)
        self.signer_text = self.origin.canonicalize().to_text()
        self.now = time.time() if now is None else now

    def signatures(self, value: RRsetValue) -> list[str]:
        """The RRSIG texts of one RRset (none for an empty one)."""
        if not value.rdatas:
            return []
        if self.memo is not None:
            key = (value.name, value.rtype, value.ttl, value.encode())
            made = self.memo.get(key)
            if made is None:
                if self.deferred is not None:  # only noted: see sign_deferred()
                    self.deferred[key] = value
                    return []
                made = self.memo[key] = self._sign(value)
            return made
        return self._sign(value)

    def defer(self) -> None:
        """From now on, note the RRsets asked for instead of signing them (their
        signatures read as none) until sign_deferred(): the reads and the signing can
        then run apart, the signing in a thread of its own."""
        if self.memo is None:
            self.memo = {}
        self.deferred = {}

    def sign_deferred(self) -> None:
        """Sign every RRset noted since defer() into the memo."""
        deferred, self.deferred = self.deferred or {}, None
        assert self.memo is not None
        for key, value in deferred.items():
            self.memo[key] = self._sign(value)

    def _sign(self, value: RRsetValue) -> list[str]:
        signers = self.key_signers if value.rtype in KEY_TYPES else self.zone_signers
        if not signers:
            return []
        rtype = value.rtype.upper()
        rdtype = _type(rtype)
        owner = name_wire(value.name)
        records = b"".join(
            owner + _RECORD.pack(rdtype, _IN, value.ttl, len(rdata)) + rdata
            for rdata in sorted({_canonical(rtype, text) for text in value.rdatas})
        )
        labels = _labels(owner)
        spread = zlib.crc32(f"{value.name} {value.rtype}".encode()) % SPREAD
        inception = (int(self.now) - BACKDATE) % 2**32
        expiration = (int(self.now) + VALIDITY + spread) % 2**32
        times = f"{_sigtime(expiration)} {_sigtime(inception)}"
        texts = []
        for key, tag in signers:
            fixed = _RRSIG_FIXED.pack(
                rdtype, key.algorithm, labels, value.ttl, expiration, inception, tag
            )
            signature = _raw_signature(key, fixed + self.signer_wire + records)
            texts.append(
                f"{rtype} {key.algorithm} {labels} {value.ttl} {times} {tag} "
                f"{self.signer_text} {_base64(signature)}"
            )
        return texts


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
