"""TSIG (RFC 8945) for UPDATE and zone transfers: the keyring, checking requests, error answers.

Sans-I/O: the keyring is filled by whoever reads the store (see `homing.dns.access`);
`check()` turns request bytes into a verified message or a `TsigRejected` carrying
the answer RFC 8945 5.2 prescribes.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from homing.service.keys import LEGACY, TsigKey

__all__ = [
    "ALGORITHM_NAMES",
    "Keyring",
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

_ARCOUNT = struct.Struct("!H")
_RR_FIXED = struct.Struct("!HHI")  # type, class, TTL


def _wire(data: bytes | None) -> bytes:
    assert data is not None  # without a file, to_wire returns the bytes
    return data


def _prefixed(data: bytes) -> bytes:
    return _ARCOUNT.pack(len(data)) + data


@dataclass(frozen=True)
class ScopedKey:
    """A usable key and what it may touch: one zone, or one host in that zone."""

    key: dns.tsig.Key
    zone: str
    host: str | None  # None: a zone key

    @property
    def name(self) -> str:
        return str(self.key.name.to_text(omit_final_dot=True)).lower()


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
            self._keys[name] = ScopedKey(key, zone, k.host)

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, name: dns.name.Name) -> ScopedKey | None:
        return self._keys.get(name)

    def dnspython_key(
        self, _message: dns.message.Message, name: dns.name.Name
    ) -> dns.tsig.Key | None:
        """The lookup `dns.message.from_wire(keyring=...)` calls."""
        scoped = self._keys.get(name)
        return None if scoped is None else scoped.key


class TsigRejected(Exception):
    """A signed request that fails TSIG: answer NOTAUTH with `error` (RFC 8945 5.2)."""

    def __init__(self, error: dns.rcode.Rcode, reason: str) -> None:
        super().__init__(reason)
        self.error = error


def signer_of(message: dns.message.Message, keyring: Keyring) -> ScopedKey | None:
    """The verified key of a message `check()` returned, or None when it was unsigned."""
    name = message.keyname
    return None if name is None else keyring.get(name)


def key_name_of(wire: bytes) -> dns.name.Name | None:
    """The TSIG key name of a request, without checking anything; None when unsigned.

    Raises dns.exception.DNSException for a message that cannot be parsed at all.
    """
    message = dns.message.from_wire(wire, keyring=False)
    return message.keyname


def check(wire: bytes, keyring: Keyring, *, one_rr_per_rrset: bool = False) -> dns.message.Message:
    """Parse a request and verify its TSIG, if it has one.

    Raises TsigRejected for an unknown key or algorithm (BADKEY), a wrong MAC (BADSIG)
    or a time outside the fudge (BADTIME); other parse errors propagate as
    dns.exception.DNSException (the client's FORMERR).
    """
    try:
        return dns.message.from_wire(
            wire, keyring=keyring.dnspython_key, one_rr_per_rrset=one_rr_per_rrset
        )
    except dns.message.UnknownTSIGKey as exc:
        raise TsigRejected(dns.rcode.Rcode.BADKEY, "unknown key") from exc
    except dns.tsig.BadAlgorithm as exc:
        raise TsigRejected(dns.rcode.Rcode.BADKEY, "algorithm does not match the key") from exc
    except dns.tsig.BadKey as exc:
        raise TsigRejected(dns.rcode.Rcode.BADKEY, "unknown key") from exc
    except dns.tsig.BadSignature as exc:
        raise TsigRejected(dns.rcode.Rcode.BADSIG, "bad signature") from exc
    except dns.tsig.BadTime as exc:
        raise TsigRejected(dns.rcode.Rcode.BADTIME, "time outside the fudge") from exc
    except NotImplementedError as exc:  # an algorithm dnspython has no HMAC for
        raise TsigRejected(dns.rcode.Rcode.BADKEY, "unsupported algorithm") from exc


def rejection_wire(wire: bytes, rejected: TsigRejected, keyring: Keyring) -> bytes | None:
    """The NOTAUTH answer to a request that failed TSIG, or None if it cannot be read.

    BADKEY and BADSIG answers carry an unsigned TSIG record with the error set (there
    is no key to sign with that the client would trust); BADTIME is signed and carries
    our clock in the other data, so the client can tell its own clock is off.
    """
    try:
        query = dns.message.from_wire(wire, keyring=False)
    except dns.exception.DNSException:
        return None
    rdata = query.tsig[0] if query.tsig else None
    if not isinstance(rdata, dns.rdtypes.ANY.TSIG.TSIG) or query.keyname is None:
        return None
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.Rcode.NOTAUTH)
    now = int(time.time())
    scoped = keyring.get(query.keyname)
    if rejected.error == dns.rcode.Rcode.BADTIME and scoped is not None:
        response.use_tsig(
            scoped.key,
            original_id=rdata.original_id,
            tsig_error=int(rejected.error),
            other_data=struct.pack("!HI", (now >> 32) & 0xFFFF, now & 0xFFFFFFFF),
            fudge=rdata.fudge,
        )
        response.request_mac = rdata.mac
        return response.to_wire()
    response.tsig = None
    unsigned = response.to_wire()
    rdata = rdata.replace(time_signed=now, mac=b"", error=int(rejected.error), other=b"")
    record = (
        _wire(query.keyname.to_wire())
        + _RR_FIXED.pack(dns.rdatatype.TSIG, dns.rdataclass.ANY, 0)
        + _prefixed(_wire(rdata.to_wire()))
    )
    (arcount,) = _ARCOUNT.unpack_from(unsigned, 10)
    return unsigned[:10] + _ARCOUNT.pack(arcount + 1) + unsigned[12:] + record
