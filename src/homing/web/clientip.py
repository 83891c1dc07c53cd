"""The client's address: the peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Scope

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
        return self.of_scope(request.scope)

    def of_scope(self, scope: Scope) -> str:
        """of() of an ASGI scope (the update path reads it without a Request)."""
        client = scope.get("client")
        peer = client[0] if client is not None else "127.0.0.1"
        if not self.trusted or not self._is_trusted(peer):
            return peer
        forwarded = Headers(scope=scope).get("x-forwarded-for", "")
        # Walk from the nearest hop back; the first untrusted address is the client.
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer  # a garbled header from a trusted proxy: fall back to the peer
            if not self._is_trusted(hop):
                return hop
        return peer
