"""Signed session cookies: HttpOnly, SameSite=Lax, and Secure whenever the browser used https."""

from __future__ import annotations

import ipaddress

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from homing.web.portal.sessionkey import SessionKey

COOKIE = "homing_session"
MAX_AGE = 7 * 24 * 3600


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def trusted_networks(trusted_proxies: list[str]) -> Networks:
    try:
        return tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies)
    except ValueError as exc:
        raise ValueError(f"trusted_proxies: {exc}") from exc


def is_https(scope: Scope, trusted_proxies: Networks) -> bool:
    """https as the browser sees it: the scheme, or X-Forwarded-Proto from a trusted proxy."""
    if scope.get("scheme") == "https":
        return True
    client = scope.get("client")
    if not client or not trusted_proxies:
        return False
    try:
        peer = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if not any(peer in net for net in trusted_proxies):
        return False
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-proto":
            proto: str = value.decode("latin-1").split(",")[0].strip().lower()
            return proto == "https"
    return False


class Sessions:
    """Starlette's SessionMiddleware, keyed lazily, with the Secure flag chosen per request."""

    def __init__(self, app: ASGIApp, *, key: SessionKey, trusted_proxies: list[str]) -> None:
        self.app = app
        self.key = key
        self.trusted = trusted_networks(trusted_proxies)
        self._plain: SessionMiddleware | None = None
        self._secure: SessionMiddleware | None = None

    def _middleware(self, secure: bool) -> SessionMiddleware:
        if self._plain is None or self._secure is None:
            secret = self.key.get()
            self._plain, self._secure = (
                SessionMiddleware(
                    self.app,
                    secret,
                    session_cookie=COOKIE,
                    max_age=MAX_AGE,
                    same_site="lax",
                    https_only=secure_flag,
                )
                for secure_flag in (False, True)
            )
        return self._secure if secure else self._plain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        await self._middleware(is_https(scope, self.trusted))(scope, receive, send)
