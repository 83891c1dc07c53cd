"""The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddress:
    """Precomputes the trusted proxy networks; `of(request)` decides in one pass."""

    def __init__(self, trusted_proxies: list[str]) -> None:
        try:
            self.trusted: tuple[Network, ...] = tuple(
                ipaddress.ip_network(p, strict=False) for p in trusted_proxies
            )
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {exc}") from exc

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def of(self, request: Request) -> str:
        peer = request.client.host if request.client else "127.0.0.1"
        if not self.trusted or not self._is_trusted(peer):
            return peer
        forwarded = request.headers.get("x-forwarded-for", "")
        # Walk from the nearest hop back; the first untrusted address is the client.
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer  # a garbled header from a trusted proxy: fall back to the peer
            if not self._is_trusted(hop):
                return hop
        return peer
