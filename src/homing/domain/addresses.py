"""IP address parsing for updates."""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import unquote

from homing.domain.errors import InvalidAddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> IPAddress:
    """One IPv4 or IPv6 address; percent-encoded IPv6 (as inadyn sends it) is accepted."""
    try:
        # The common case, a dotted quad: the C parser accepts what ipaddress accepts
        # (four decimal octets, no leading zeros) at a tenth of the cost.
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError):  # not one (ValueError: a NUL or a lone surrogate in it)
        pass
    candidate = unquote(text.strip())
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError as exc:
        raise InvalidAddress(f"not an IP address: {text[:64]!r}") from exc
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_publishable(address: IPAddress) -> bool:
    """Unspecified and multicast addresses are never published."""
    return not (address.is_unspecified or address.is_multicast)


@dataclass(frozen=True)
class AddressSet:
    """The addresses one update asks for, by family; None means leave that family alone."""

    ipv4: ipaddress.IPv4Address | None = None
    ipv6: ipaddress.IPv6Address | None = None

    @classmethod
    def parse(cls, texts: list[str]) -> AddressSet:
        """At most one address per family, as dyndns2's `myip=v4,v6` list carries them."""
        ipv4: ipaddress.IPv4Address | None = None
        ipv6: ipaddress.IPv6Address | None = None
        for text in texts:
            address = parse_address(text)
            if not is_publishable(address):
                raise InvalidAddress(f"address cannot be published: {address}")
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

    def to_text(self) -> str:
        """`v4`, `v6` or `v4,v6`: the form the answer echoes."""
        return ",".join(text for _, text in self.by_type)
