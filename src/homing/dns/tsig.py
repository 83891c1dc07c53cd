"""TSIG (RFC 8945) for UPDATE, NOTIFY and zone transfers: the keyring, checking requests,
error answers.

Sans-I/O: the keyring is filled by whoever reads the store (see `homing.dns.access`).
`check()` verifies a request with homing's own code, in the order RFC 8945 5.2 gives:
key, then MAC, then time, then truncation. It never asks dnspython to validate, so no
installed version can move the time check ahead of the MAC. A failure raises
`TsigRejected`, which carries the key only when the request's MAC verified: that is
what allows `rejection_wire()` to sign the error answer (RFC 8945 5.3.2). An answer
signed over a MAC nobody verified is a signing oracle for whoever chose that MAC (the
CVE-2017-3142/3143 and CVE-2017-11104 pattern).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from homing.dns.responses import response_to
from homing.service.keypolicy import Grant
from homing.service.keys import LEGACY, TsigKey

__all__ = [
    "ALGORITHM_NAMES",
    "Checked",
    "Keyring",
    "MalformedTsig",
    "ScopedKey",
    "TsigRejected",
    "check",
    "rejection_wire",
]

# Our algorithm words (`homing key add --algorithm`) and their names on the wire.
ALGORITHM_NAMES: dict[str, dns.name.Name] = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}
# The hash behind each wire name, as hashlib names it.
_HASHES: dict[dns.name.Name, str] = {
    dns.tsig.HMAC_MD5: "md5",
    dns.tsig.HMAC_SHA1: "sha1",
    dns.tsig.HMAC_SHA224: "sha224",
    dns.tsig.HMAC_SHA256: "sha256",
    dns.tsig.HMAC_SHA384: "sha384",
    dns.tsig.HMAC_SHA512: "sha512",
}
_MAC_SIZES = {name: hashlib.new(hash_name).digest_size for name, hash_name in _HASHES.items()}
# RFC 8945 5.2.2.1: a MAC shorter than this (or than half the hash) is malformed.
_MIN_MAC = 10

_U16 = struct.Struct("!H")
_COUNTS = struct.Struct("!HHHH")
_RR_FIXED = struct.Struct("!HHI")  # type, class, TTL
_RR_DIGESTED = struct.Struct("!HI")  # class ANY, TTL 0, as the MAC covers them
_TIMES = struct.Struct("!HIH")  # time signed (48 bits), fudge
_TIME48 = struct.Struct("!HI")
_ERROR_OTHER = struct.Struct("!HH")


@dataclass(frozen=True)
class ScopedKey:
    """A usable key and what it may touch: its zones (under its grants), or one host."""

    key: dns.tsig.Key
    zone: str
    host: str | None  # None: a zone key
    also: tuple[str, ...] = ()  # a zone key's further zones
    grants: tuple[Grant, ...] | None = None  # None: anything in its zones

    @property
    def name(self) -> str:
        return str(self.key.name.to_text(omit_final_dot=True)).lower()

    @property
    def zones(self) -> tuple[str, ...]:
        return (self.zone, *self.also)


class Keyring:
    """The TSIG keys the server accepts, by key name; replaced whole on reload."""

    def __init__(self, keys: Iterable[TsigKey] = (), *, allow_md5: bool = False) -> None:
        self._keys: dict[dns.name.Name, ScopedKey] = {}
        for k in keys:
            algorithm = ALGORITHM_NAMES.get(k.algorithm.lower())
            if algorithm is None or (k.algorithm.lower() in LEGACY and not allow_md5):
                continue  # unknown, or legacy and not enabled: as if the key did not exist
            zone = k.zone
            if zone is None:
                continue  # the loader fills in a host key's zone; without one it is useless
            name = dns.name.from_text(k.name)
            key = dns.tsig.Key(name, k.secret, algorithm)
            self._keys[name] = ScopedKey(key, zone, k.host, k.also, k.policy)

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, name: dns.name.Name) -> ScopedKey | None:
        return self._keys.get(name)


class TsigRejected(Exception):
    """A signed request that fails TSIG: answer NOTAUTH with `error` (RFC 8945 5.2).

    `key` is set only when the request's MAC verified (BADTIME, BADTRUNC); only then
    may the answer be signed.
    """

    def __init__(
        self,
        error: dns.rcode.Rcode,
        reason: str,
        query: dns.message.Message,
        key: dns.tsig.Key | None = None,
    ) -> None:
        super().__init__(reason)
        self.error = error
        self.query = query
        self.key = key


class MalformedTsig(dns.exception.FormError):
    """A TSIG record RFC 8945 calls malformed: answered FORMERR, unsigned."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)  # type: ignore[no-untyped-call]


class Checked(NamedTuple):
    """A parsed request and the key whose MAC it carried (None: it was unsigned)."""

    message: dns.message.Message
    signer: ScopedKey | None


def check(
    wire: bytes,
    keyring: Keyring,
    *,
    one_rr_per_rrset: bool = False,
    now: float | None = None,
) -> Checked:
    """Parse a request and verify its TSIG, if it has one.

    Raises TsigRejected for an unknown key or algorithm (BADKEY), a wrong MAC (BADSIG),
    a time outside the fudge (BADTIME) or a MAC truncated below our policy of full
    length (BADTRUNC); dns.exception.DNSException for what cannot be parsed, a MAC
    longer than the hash or shorter than RFC 8945 5.2.2.1 allows, and a request that
    carries a TSIG error (the client's FORMERR). A verified message is returned ready
    to be answered: dns.message.make_response() (and response_to()) signs its answers
    with the key.
    """
    message = dns.message.from_wire(wire, keyring=False, one_rr_per_rrset=one_rr_per_rrset)
    if message.tsig is None:
        return Checked(message, None)
    rdata = message.tsig[0]
    assert isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG)
    owner = message.tsig.name
    scoped = keyring.get(owner)
    if scoped is None:
        raise TsigRejected(dns.rcode.Rcode.BADKEY, "unknown key", message)
    key = scoped.key
    hash_name = _HASHES.get(key.algorithm)
    if rdata.algorithm != key.algorithm or hash_name is None:
        raise TsigRejected(dns.rcode.Rcode.BADKEY, "algorithm does not match the key", message)
    full = _MAC_SIZES[key.algorithm]
    size = len(rdata.mac)
    if size > full or size < max(_MIN_MAC, full // 2):
        raise MalformedTsig(f"a MAC of {size} bytes for a {full}-byte hash")
    unsigned = _without_tsig(wire)
    expected = _mac(key, hash_name, _digest_input(unsigned, owner, rdata))
    if not hmac.compare_digest(expected[:size], rdata.mac):
        raise TsigRejected(dns.rcode.Rcode.BADSIG, "bad signature", message)
    # From here on the request is the key holder's own: its answers may be signed.
    if rdata.error:
        raise MalformedTsig("a request carries no TSIG error")
    clock = time.time() if now is None else now
    if abs(rdata.time_signed - clock) > rdata.fudge:
        raise TsigRejected(dns.rcode.Rcode.BADTIME, "time outside the fudge", message, key)
    if size < full:
        raise TsigRejected(dns.rcode.Rcode.BADTRUNC, "truncated MAC", message, key)
    message.keyring = key
    return Checked(message, scoped)


def rejection_wire(rejected: TsigRejected, *, now: float | None = None) -> bytes:
    """The NOTAUTH answer to a request that failed TSIG (RFC 8945 5.3.2).

    BADKEY and BADSIG answers carry an unsigned TSIG record with the error set and no
    MAC: the request proved nothing, so nothing is signed for it. BADTIME and BADTRUNC
    (the MAC verified) are signed over the request's MAC; BADTIME carries our clock in
    the other data and the request's own time, so the client can verify the answer and
    see that its clock is off.
    """
    query = rejected.query
    assert query.tsig is not None
    request = query.tsig[0]
    assert isinstance(request, dns.rdtypes.ANY.TSIG.TSIG)
    owner = query.tsig.name
    response = response_to(query)  # unsigned: check() never gave it the key
    response.set_rcode(dns.rcode.Rcode.NOTAUTH)
    unsigned = response.to_wire()
    clock = int(time.time() if now is None else now)
    error = int(rejected.error)
    key = rejected.key
    if key is None:
        rdata = _replaced(request, time_signed=clock, mac=b"", error=error, other=b"")
    else:
        hash_name = _HASHES[key.algorithm]
        badtime = rejected.error == dns.rcode.Rcode.BADTIME
        rdata = _replaced(
            request,
            time_signed=request.time_signed if badtime else clock,
            mac=b"",
            error=error,
            other=_TIME48.pack(clock >> 32, clock & 0xFFFFFFFF) if badtime else b"",
        )
        digest = _U16.pack(len(request.mac)) + request.mac + _digest_input(unsigned, owner, rdata)
        rdata = _replaced(rdata, mac=_mac(key, hash_name, digest))
    return _with_tsig(unsigned, owner, rdata)


def _replaced(rdata: dns.rdtypes.ANY.TSIG.TSIG, **changes: Any) -> dns.rdtypes.ANY.TSIG.TSIG:
    new = rdata.replace(**changes)
    assert isinstance(new, dns.rdtypes.ANY.TSIG.TSIG)
    return new


def _mac(key: dns.tsig.Key, hash_name: str, data: bytes) -> bytes:
    return hmac.new(key.secret, data, hash_name).digest()


def _digest_input(unsigned: bytes, owner: dns.name.Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    """What the MAC covers (RFC 8945 4.3.3): the message without its TSIG, under the
    original ID, then the TSIG variables."""
    signed_time = rdata.time_signed
    return b"".join(
        (
            _U16.pack(rdata.original_id),
            unsigned[2:],
            owner.to_digestable(),
            _RR_DIGESTED.pack(dns.rdataclass.ANY, 0),
            rdata.algorithm.to_digestable(),
            _TIMES.pack(signed_time >> 32, signed_time & 0xFFFFFFFF, rdata.fudge),
            _ERROR_OTHER.pack(rdata.error, len(rdata.other)),
            rdata.other,
        )
    )


def _without_tsig(wire: bytes) -> bytes:
    """The request as it was before it was signed: its last record (the TSIG, as the
    parser made sure) cut off and the additional count one less."""
    try:
        qdcount, ancount, nscount, arcount = _COUNTS.unpack_from(wire, 4)
        at = 12
        for _ in range(qdcount):
            at = _skip_name(wire, at) + 4
        for _ in range(ancount + nscount + arcount - 1):
            at = _skip_name(wire, at) + 8
            (rdlength,) = _U16.unpack_from(wire, at)
            at += 2 + rdlength
    except (IndexError, struct.error) as exc:
        raise MalformedTsig("records run past the message") from exc
    if at >= len(wire):
        raise MalformedTsig("no TSIG record where the counts put it")
    return wire[:10] + _U16.pack(arcount - 1) + wire[12:at]


def _skip_name(wire: bytes, at: int) -> int:
    """The offset after a (possibly compressed) name; the parser already followed it."""
    while True:
        length = wire[at]
        if length == 0:
            return at + 1
        if length >= 0xC0:
            return at + 2
        at += 1 + length


def _with_tsig(unsigned: bytes, owner: dns.name.Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    """A message with a TSIG record appended and counted."""
    body = rdata.to_wire()
    assert body is not None  # without a file, to_wire returns the bytes
    name = owner.to_wire()
    assert name is not None
    record = name + _RR_FIXED.pack(dns.rdatatype.TSIG, dns.rdataclass.ANY, 0)
    record += _U16.pack(len(body)) + body
    (arcount,) = _U16.unpack_from(unsigned, 10)
    return unsigned[:10] + _U16.pack(arcount + 1) + unsigned[12:] + record
