"""IP address parsing for updates, and the rules an address must meet to be published.

Every door an address comes in by (dyndns2, DVR, portal, API, RFC 2136, imports, the
client) parses it here, so one set of rules holds everywhere:

- never published: an IPv6 scope ID (`fe80::1%eth0`: it means something only on the
  host that wrote it, and no DNS record can carry it), the unspecified address
  (0.0.0.0/8, ::), broadcast (255.255.255.255), multicast (224.0.0.0/4, ff00::/8),
  reserved (240.0.0.0/4), IPv4-compatible IPv6 (::/96, deprecated by RFC 4291),
  site-local IPv6 (fec0::/10, deprecated by RFC 3879), and IPv4-mapped IPv6
  (::ffff:0:0/96) in an AAAA record (the parser turns it into its IPv4 address);
- refused unless the operator allows local addresses: loopback (127.0.0.0/8, ::1) and
  link-local (169.254.0.0/16, fe80::/10);
- allowed: everything else, private ranges included (RFC 1918, CGNAT 100.64.0.0/10,
  ULA fc00::/7): people publish the addresses of their LAN.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import unquote

from homing.domain.actions import FamilyAction, SetIPs
from homing.domain.errors import InvalidAddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Longer than any address form (a full IPv6 with an embedded IPv4 and brackets is 47).
_MAX_TEXT = 128
_LOCAL_HINT = " (an operator may allow it with allow_local_addresses)"
_V6_LOOPBACK = bytes(15) + b"\x01"
_V6_MAPPED = bytes(10) + b"\xff\xff"


def _v4_problem(packed: bytes, allow_local: bool) -> str | None:
    first = packed[0]
    if 0 < first < 224 and first != 127 and not (first == 169 and packed[1] == 254):
        return None  # the common case, decided by one byte
    if first == 0:
        if packed == bytes(4):
            return "the unspecified address 0.0.0.0 cannot be published"
        return "0.0.0.0/8 ('this network') is not routable"
    if packed == b"\xff\xff\xff\xff":
        return "the broadcast address 255.255.255.255 cannot be published"
    if first >= 240:
        return "reserved addresses (240.0.0.0/4) cannot be published"
    if first >= 224:
        return "multicast addresses cannot be published"
    if allow_local:
        return None
    if first == 127:
        return "loopback addresses are not allowed" + _LOCAL_HINT
    return "link-local addresses are not allowed" + _LOCAL_HINT


def _v6_problem(packed: bytes, allow_local: bool) -> str | None:
    first = packed[0]
    if 0 < first < 0xFE:
        return None  # global unicast, ULA and the rest: decided by one byte
    if first == 0xFF:
        return "multicast addresses cannot be published"
    if first == 0xFE:
        second = packed[1] & 0xC0
        if second == 0xC0:
            return "site-local IPv6 addresses (fec0::/10) are deprecated and cannot be published"
        if second != 0x80 or allow_local:
            return None
        return "link-local addresses are not allowed" + _LOCAL_HINT
    if packed.startswith(bytes(12)):
        if packed == bytes(16):
            return "the unspecified address :: cannot be published"
        if packed == _V6_LOOPBACK:
            return None if allow_local else "loopback addresses are not allowed" + _LOCAL_HINT
        return "IPv4-compatible IPv6 addresses (::/96) are deprecated and cannot be published"
    if packed.startswith(_V6_MAPPED):
        return "IPv4-mapped IPv6 addresses cannot be published as AAAA: give the IPv4 address"
    return None


def address_problem(address: IPAddress, *, allow_local: bool = False) -> str | None:
    """Why the address may not be published (a sentence naming the rule), or None."""
    if isinstance(address, ipaddress.IPv4Address):
        return _v4_problem(address.packed, allow_local)
    if address.scope_id is not None:
        return "scope IDs are not allowed in an address"
    return _v6_problem(address.packed, allow_local)


def record_address_problem(rtype: str, text: str, *, allow_local: bool = True) -> str | None:
    """Why the text of an A or AAAA record's value may not be published, or None.

    The text must be the address's plain form (no scope, no brackets): what the DNS index
    renders. Cheap (one inet_pton and a byte or two), for the checks before a commit.
    """
    family = socket.AF_INET if rtype == "A" else socket.AF_INET6
    try:
        packed = socket.inet_pton(family, text)
    except (OSError, ValueError, TypeError):
        if "%" in text:
            return "scope IDs are not allowed in an address"
        return f"not an {'IPv4' if rtype == 'A' else 'IPv6'} address: {text[:64]!r}"
    if family == socket.AF_INET:
        return _v4_problem(packed, allow_local)
    return _v6_problem(packed, allow_local)


def check_record_address(rtype: str, text: str, *, allow_local: bool = False) -> None:
    """Raise InvalidAddress naming the rule when an A/AAAA value may not be published
    (RFC 2136 and other paths that get an address as record text)."""
    problem = record_address_problem(rtype, text, allow_local=allow_local)
    if problem is not None:
        raise InvalidAddress(problem)


def parse_address(text: str, *, allow_local: bool = False) -> IPAddress:
    """One IPv4 or IPv6 address that may be published (see the rules above); InvalidAddress
    naming the rule otherwise. Percent-encoded IPv6 (as inadyn sends it) and brackets are
    accepted; an IPv4-mapped IPv6 address is returned as its IPv4 address."""
    try:
        # The common case, a dotted quad: the C parser accepts what ipaddress accepts
        # (four decimal octets, no leading zeros) at a tenth of the cost.
        packed = socket.inet_pton(socket.AF_INET, text)
    except (OSError, ValueError):  # not one (ValueError: a NUL or a lone surrogate in it)
        pass
    else:
        problem = _v4_problem(packed, allow_local)
        if problem is not None:
            raise InvalidAddress(problem)
        return ipaddress.IPv4Address(packed)
    if len(text) > _MAX_TEXT:
        raise InvalidAddress(f"not an IP address: {text[:64]!r}")
    candidate = unquote(text.strip())
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError as exc:
        raise InvalidAddress(f"not an IP address: {text[:64]!r}") from exc
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            raise InvalidAddress("scope IDs are not allowed in an address")
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
    problem = address_problem(address, allow_local=allow_local)
    if problem is not None:
        raise InvalidAddress(problem)
    return address


def is_publishable(address: IPAddress, *, allow_local: bool = False) -> bool:
    """True when the address meets every rule above (scope, range; local by the setting)."""
    return address_problem(address, allow_local=allow_local) is None


@dataclass(frozen=True)
class AddressSet:
    """The addresses one update asks for, by family; None means leave that family alone."""

    ipv4: ipaddress.IPv4Address | None = None
    ipv6: ipaddress.IPv6Address | None = None
    # What else the update does, by record type (a type in neither stays as it is):
    # deleting it (SetIPs()) or rewriting its addresses' network bits (SetSubnet).
    others: tuple[tuple[str, FamilyAction], ...] = ()
    # A router's delegated IPv6 prefix: the AAAA of its prefix hosts follow it.
    prefix: ipaddress.IPv6Network | None = None

    @classmethod
    def parse(cls, texts: list[str], *, allow_local: bool = False) -> AddressSet:
        """At most one address per family, as dyndns2's `myip=v4,v6` list carries them;
        each must meet the publishing rules (parse_address)."""
        ipv4: ipaddress.IPv4Address | None = None
        ipv6: ipaddress.IPv6Address | None = None
        for text in texts:
            address = parse_address(text, allow_local=allow_local)
            if isinstance(address, ipaddress.IPv4Address):
                if ipv4 is not None and ipv4 != address:
                    raise InvalidAddress("more than one IPv4 address")
                ipv4 = address
            else:
                if ipv6 is not None and ipv6 != address:
                    raise InvalidAddress("more than one IPv6 address")
                ipv6 = address
        return cls(ipv4, ipv6)

    @classmethod
    def of(cls, address: IPAddress) -> AddressSet:
        if isinstance(address, ipaddress.IPv4Address):
            return cls(ipv4=address)
        return cls(ipv6=address)

    def __bool__(self) -> bool:
        return self.ipv4 is not None or self.ipv6 is not None

    @functools.cached_property
    def by_type(self) -> tuple[tuple[str, str], ...]:
        """(record type, address text) of each family given, A first (worked out once:
        an update reads it in its batch and again for its answer)."""
        pairs = (("A", self.ipv4), ("AAAA", self.ipv6))
        return tuple((rtype, str(address)) for rtype, address in pairs if address is not None)

    @functools.cached_property
    def actions(self) -> tuple[tuple[str, FamilyAction], ...]:
        """(record type, action) for each type the update changes (domain/actions.py)."""
        return tuple((rtype, SetIPs((text,))) for rtype, text in self.by_type) + self.others

    def to_text(self) -> str:
        """`v4`, `v6` or `v4,v6`: the form the answer echoes."""
        return ",".join(text for _, text in self.by_type)
