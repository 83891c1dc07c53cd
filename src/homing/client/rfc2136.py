"""RFC 2136 UPDATE signed with TSIG, for hosts whose provider speaks DNS; no I/O here.

The host's `secret` is the key in `nsupdate -y` form (ALG:NAME:SECRET), as
`homing key add` prints it; the server is a `dns://HOST[:PORT]` URL.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import urlsplit

import dns.name
import dns.rcode
import dns.tsig
import dns.update

from homing.client.protocol import Result, Verdict
from homing.domain.addresses import AddressSet
from homing.domain.outcomes import Outcome

DEFAULT_TTL = 60
ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-md5": dns.tsig.HMAC_MD5,
}


class KeyError_(ValueError):
    """The secret is not a usable ALG:NAME:SECRET key."""


@dataclass(frozen=True)
class TsigKey:
    name: dns.name.Name
    algorithm: dns.name.Name
    secret: bytes

    @classmethod
    def parse(cls, text: str) -> TsigKey:
        """ALG:NAME:SECRET (nsupdate -y form); ALG may be left out for hmac-sha256."""
        parts = text.strip().split(":")
        if len(parts) == 2:
            parts = ["hmac-sha256", *parts]
        if len(parts) != 3 or not all(parts):
            raise KeyError_("the key must look like hmac-sha256:NAME:BASE64SECRET")
        algorithm, name, secret = parts
        if algorithm.lower() not in ALGORITHMS:
            raise KeyError_(f"unknown TSIG algorithm {algorithm!r}")
        try:
            raw = base64.b64decode(secret, validate=True)
        except binascii.Error as exc:
            raise KeyError_("the key's secret is not base64") from exc
        return cls(dns.name.from_text(name), ALGORITHMS[algorithm.lower()], raw)

    def dnspython_key(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, self.algorithm)


def server_address(url: str) -> tuple[str, int]:
    """(host, port) of a dns://HOST[:PORT] server URL."""
    parts = urlsplit(url)
    if parts.scheme != "dns" or not parts.hostname:
        raise ValueError(f"{url!r} is not a dns://HOST[:PORT] URL")
    return parts.hostname, parts.port or 53


def zone_of(host: str, zone: str | None) -> str:
    """The zone to update: given, or the host name without its first label."""
    return zone or host.split(".", 1)[1]


def build_update(
    host: str, zone: str | None, key: TsigKey, addresses: AddressSet, ttl: int = DEFAULT_TTL
) -> dns.update.UpdateMessage:
    """Replace the host's A and/or AAAA RRset; a family not given is left alone."""
    update = dns.update.UpdateMessage(
        zone_of(host, zone), keyring=key.dnspython_key(), keyalgorithm=key.algorithm
    )
    owner = dns.name.from_text(host)
    for rtype, address in (("A", addresses.ipv4), ("AAAA", addresses.ipv6)):
        if address is not None:
            update.replace(owner, ttl, rtype, str(address))
    return update


# What each rcode means for the client: the key or zone is wrong (stop), or the server failed.
_FATAL = {
    dns.rcode.Rcode.NOTAUTH: (Outcome.BADAUTH, "the server does not accept this key"),
    dns.rcode.Rcode.REFUSED: (Outcome.BADAUTH, "the server refused the update for this key"),
    dns.rcode.Rcode.NOTZONE: (Outcome.NOHOST, "the host is not in the zone"),
    dns.rcode.Rcode.NXDOMAIN: (Outcome.NOHOST, "a prerequisite failed: no such name"),
    dns.rcode.Rcode.YXDOMAIN: (Outcome.BAD_REQUEST, "a prerequisite failed"),
    dns.rcode.Rcode.YXRRSET: (Outcome.BAD_REQUEST, "a prerequisite failed"),
    dns.rcode.Rcode.NXRRSET: (Outcome.BAD_REQUEST, "a prerequisite failed"),
    dns.rcode.Rcode.FORMERR: (Outcome.BAD_REQUEST, "the server could not read the update"),
    dns.rcode.Rcode.NOTIMP: (Outcome.BAD_REQUEST, "the server does not take updates"),
}


def parse_rcode(rcode: dns.rcode.Rcode, addresses: AddressSet) -> Result:
    """Classify the server's answer to an UPDATE."""
    name = dns.rcode.to_text(rcode)
    if rcode == dns.rcode.Rcode.NOERROR:
        return Result(Verdict.OK, "NOERROR", "updated", address=addresses.to_text(), status="ACT")
    fatal = _FATAL.get(rcode)
    if fatal is not None:
        outcome, meaning = fatal
        return Result(Verdict.FATAL, name, meaning, status=outcome.dvr)
    return Result(Verdict.FAILOVER, name, "the server failed", status=Outcome.DNSERR.dvr)
