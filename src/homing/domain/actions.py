"""What one update does to a host's addresses of one family, as named actions.

An update request is read into at most one action per record type (A, AAAA); a type
with no action stays as it is. The update batch applies them without knowing which
parameter they came from:

| action        | the RRset becomes                                           |
|---------------|-------------------------------------------------------------|
| SetIPs(a, b)  | exactly those addresses; SetIPs() (no address) deletes it   |
| PreserveIPs   | what it is (never an action in a request: the type is left out) |
| SetSubnet(n)  | each stored address with its network bits replaced by n's   |

Besides the actions, an IPv6 prefix (a router's delegated prefix) moves the host's
prefix hosts: each one's AAAA is the prefix with its interface id (`with_iid`).
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from homing.domain.errors import InvalidAddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SetIPs(NamedTuple):
    """Publish exactly these address texts (none: delete the RRset)."""

    texts: tuple[str, ...] = ()

    def records(self, _current: tuple[str, ...]) -> tuple[str, ...]:
        return self.texts


class PreserveIPs(NamedTuple):
    """Leave the RRset as it is (`preserve`); requests leave such a type out."""

    def records(self, current: tuple[str, ...]) -> tuple[str, ...]:
        return current


class SetSubnet(NamedTuple):
    """Keep each stored address's host bits and take the network bits from `network`."""

    network: Network

    def records(self, current: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({str(with_prefix(self.network, text)) for text in current}))


FamilyAction = SetIPs | PreserveIPs | SetSubnet


def with_prefix(network: Network, text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address `text` with its first `network.prefixlen` bits replaced by the network's."""
    address = ipaddress.ip_address(text)
    host_mask = int(network.hostmask)
    value = int(network.network_address) | (int(address) & host_mask)
    if network.version == 4:
        return ipaddress.IPv4Address(value)
    return ipaddress.IPv6Address(value)


def parse_prefix(text: str) -> ipaddress.IPv6Network:
    """An IPv6 prefix `ADDRESS/LEN` (host bits ignored, as routers send the LAN address's
    network); a bare address is taken as its /64, as a FRITZ!Box's LAN prefix is one."""
    candidate = text.strip()
    if "/" not in candidate:
        candidate += "/64"
    try:
        network = ipaddress.ip_network(candidate, strict=False)
    except ValueError as exc:
        raise InvalidAddress(f"not an IPv6 prefix: {text[:64]!r}") from exc
    if not isinstance(network, ipaddress.IPv6Network):
        raise InvalidAddress(f"not an IPv6 prefix: {text[:64]!r}")
    if network.prefixlen > 128 - 1 or network.prefixlen < 1:
        raise InvalidAddress(f"an IPv6 prefix needs a length from 1 to 127: {text[:64]!r}")
    return network


def parse_iid(text: str) -> ipaddress.IPv6Address:
    """An interface identifier in IPv6 form (`::1234:56ff:fe78:9abc`)."""
    try:
        iid = ipaddress.IPv6Address(text.strip())
    except ValueError as exc:
        raise InvalidAddress(f"not an interface id in IPv6 form: {text[:64]!r}") from exc
    if iid.scope_id is not None:
        raise InvalidAddress("scope IDs are not allowed in an interface id")
    if int(iid) == 0:
        raise InvalidAddress("an interface id of all zeros names the subnet, not a host")
    return iid


def iid_problem(iid: ipaddress.IPv6Address, prefixlen: int) -> str | None:
    """Why `iid` does not fit the host part of a /prefixlen, or None."""
    if int(iid) >> (128 - prefixlen):
        return f"interface id {iid} is longer than the host part of a /{prefixlen} prefix"
    return None


def with_iid(prefix: ipaddress.IPv6Network, iid: ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    """The prefix's bits, then the iid's in the host part; InvalidAddress when the iid is
    longer than the host part."""
    problem = iid_problem(iid, prefix.prefixlen)
    if problem is not None:
        raise InvalidAddress(problem)
    return ipaddress.IPv6Address(int(prefix.network_address) | int(iid))
