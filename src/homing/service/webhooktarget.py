"""Where a webhook may connect: the address its host name resolved to, checked once, then
used for the connection itself (with the name in Host and in TLS SNI).

Resolving the name again to connect would let a name answer a public address to the
check and a private one to the connection (DNS rebinding). Only public unicast addresses
pass, including those an IPv6 address carries inside it (IPv4-mapped and -compatible,
NAT64, 6to4, Teredo).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))


class TargetRefused(Exception):
    """The webhook's host cannot be resolved or is not public; the message is for the log."""


@dataclass(frozen=True)
class Target:
    """A checked webhook destination."""

    url: str  # the URL with the checked address in place of the host name
    host_header: str  # the name (and port) as the receiver expects it
    server_name: str | None  # for TLS: the name to send as SNI and check the certificate for
    address: str


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for `host`, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%")[0] for info in infos]


def refusal(address: Address) -> str | None:
    """Why a webhook may not connect to `address`; None when it is public unicast."""
    if address in METADATA:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        translated = _translated(address)
        if translated is not None:  # the packet goes to this IPv4 address: judge it alone
            why = refusal(translated)
            return None if why is None else f"it stands for {translated}, {why}"
        for inner in _tunnelled(address):
            why = refusal(inner)
            if why is not None:
                return f"it carries {inner}, {why}"
        if address in NAT64_LOCAL:
            return "a local-use NAT64 address"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address in CGNAT, "carrier-grade NAT space"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not globally routed"),
    )
    for failed, why in checks:
        if failed:
            return why
    return None


def _translated(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, -compatible or NAT64 address is translated to."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _tunnelled(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a 6to4 or Teredo address tunnels through."""
    found = []
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


async def webhook_target(url: str, resolve: Resolver, *, allow_private: bool = False) -> Target:
    """Resolve the URL's host once and check every address; the first is connected to.

    Raises TargetRefused when the name does not resolve or any of its addresses is not
    public (unless `allow_private`, for tests and in-house receivers).
    """
    parsed = httpx.URL(url)
    name = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        literal: Address | None = ipaddress.ip_address(name)
    except ValueError:
        literal = None
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = await resolve(parsed.raw_host.decode("ascii"), port)
        except (OSError, UnicodeError) as exc:
            raise TargetRefused(f"cannot resolve {name}: {exc}") from exc
    addresses = []
    for text in found:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError as exc:
            raise TargetRefused(f"{name} resolved to {text!r}, not an address") from exc
    if not addresses:
        raise TargetRefused(f"{name} resolves to no address")
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why is not None:
                raise TargetRefused(f"{name} resolves to {address}: {why}")
    chosen = addresses[0]
    return Target(
        url=str(parsed.copy_with(host=str(chosen))),
        host_header=parsed.netloc.decode("ascii"),
        server_name=parsed.raw_host.decode("ascii") if parsed.scheme == "https" else None,
        address=str(chosen),
    )
