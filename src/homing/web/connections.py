"""uvicorn's httptools protocol with the bounds an internet-facing server needs.

uvicorn (with httptools) closes a connection only after a response and a keep-alive
pause: one that never finishes its first request stays open for ever and counts
against `limit_concurrency`, and httptools buffers a request head of any size. This
subclass adds, per connection:

- a deadline for each request to arrive whole (head and body), armed at the first
  byte and when the connection opens, answered 408 and closed;
- a bound on the request head (request line and headers, in bytes and in headers),
  checked before the bytes reach the parser, answered 431 and closed;
- a cap of open connections per source (an IPv4 address, an IPv6 /56), refused with
  503 for that source alone; trusted proxies are exempt (they carry many clients);
- a cap of open connections in all: at the cap the oldest connection without a
  request in hand makes room, so idle sockets cannot lock others out;
- a cap of requests in progress, which (unlike uvicorn's) does not count idle
  connections.

Nothing here runs per request beyond a few attribute checks and one timer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024  # request line and headers; dyndns2 requests are a few hundred bytes
MAX_HEADERS = 100
SOURCE_PREFIX_V6 = 56  # one subscriber's IPv6 allocation, as the store's throttle counts it

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


@dataclass
class ConnectionLimits:
    """The bounds, and the shared counts of one process's connections."""

    request_timeout: float = 10.0  # seconds for a request to arrive whole
    per_source: int = 32  # open connections per source
    total: int = 4096  # open connections in all
    requests: int = 2048  # requests in progress
    max_head: int = MAX_HEAD
    max_headers: int = MAX_HEADERS
    exempt: Networks = ()  # trusted proxies: many clients share their address
    refused: dict[str, int] = field(default_factory=dict)  # why -> how often
    _sources: dict[str, int] = field(default_factory=dict)
    _open: dict[GuardedHttp, bool] = field(default_factory=dict)  # oldest first

    def __post_init__(self) -> None:
        if self.request_timeout <= 0 or min(self.per_source, self.total, self.requests) < 1:
            raise ValueError("connection limits must be positive")
        if self.max_head < 1024 or self.max_headers < 8:
            raise ValueError("request head limits too small to serve any request")

    def source_of(self, host: str) -> str | None:
        """The key a connection from `host` counts under; None when it is exempt."""
        if ":" not in host and not self.exempt:
            return host
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host
        if any(address in net for net in self.exempt):
            return None
        if address.version == 6:
            mapped = address.ipv4_mapped
            if mapped is not None:
                return str(mapped)
            return str(ipaddress.ip_network(f"{address}/{SOURCE_PREFIX_V6}", strict=False))
        return host

    def connections_from(self, source: str) -> int:
        return self._sources.get(source, 0)

    def count(self, why: str) -> None:
        self.refused[why] = self.refused.get(why, 0) + 1


class GuardedHttp(HttpToolsProtocol):
    """HttpToolsProtocol with the deadlines and caps of ConnectionLimits."""

    limits: ConnectionLimits = ConnectionLimits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limit_concurrency = None  # ours counts requests, not idle connections
        self._source: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head: int | None = 0  # head bytes so far; None once the head is whole
        self._headers = 0
        self._refusal: tuple[int, bytes] | None = None

    # -- connection -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self.limits
        source = limits.source_of(self.client[0]) if self.client else None
        if source is not None and limits.connections_from(source) >= limits.per_source:
            limits.count("per_source")
            self._refuse(503, b"too many connections from your address\n")
            return
        if len(limits._open) >= limits.total and not self._make_room():
            limits.count("total")
            self._refuse(503, b"Service Unavailable\n")
            return
        if source is not None:
            self._source = source
            limits._sources[source] = limits._sources.get(source, 0) + 1
        limits._open[self] = True
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._count_out()
        super().connection_lost(exc)

    def _count_out(self) -> None:
        """Leave the counts (once: eviction counts a connection out before it is lost)."""
        self._disarm()
        limits = self.limits
        if limits._open.pop(self, False) is False:
            return
        if self._source is not None:
            left = limits._sources[self._source] - 1
            if left:
                limits._sources[self._source] = left
            else:
                del limits._sources[self._source]

    def _make_room(self) -> bool:
        """Close the oldest connection that has no request in hand; False if there is none."""
        for other in self.limits._open:
            if other.cycle is None or other.cycle.response_complete:
                other._count_out()
                other.transport.close()
                self.limits.count("evicted")
                return True
        return False

    # -- the request head and its deadline --------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # a new request begins (after a keep-alive pause)
        if self._head is not None:
            room = self.limits.max_head - self._head
            if len(data) > room:
                # Only as much as the head may still take goes to the parser: the rest
                # is either the body or an oversized head, refused unparsed.
                self._head += room
                super().data_received(data[:room])
                if self._head is not None and self.limits.max_head <= self._head:
                    if not self.transport.is_closing():
                        self.limits.count("head")
                        self._refuse(431, b"request header fields too large\n")
                    return
                if not self.transport.is_closing():
                    self.data_received(data[room:])
                return
            self._head += len(data)
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers = 0
        if self._timer is None:
            self._arm()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers += 1
        if self._headers > self.limits.max_headers:
            self._refusal = (431, b"too many header fields\n")
            raise _HeadTooLarge  # surfaces as a parser error: send_400_response below
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head = None
        limits = self.limits
        if len(self.tasks) < limits.requests:
            super().on_headers_complete()
            return
        limits.count("requests")
        app, self.app = self.app, service_unavailable
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        self._disarm()
        self._head = 0  # what comes next is the next request's head
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:
            self.limits.count("headers")
            self._refuse(*self._refusal)
            return
        super().send_400_response(msg)

    def _arm(self) -> None:
        self._timer = self.loop.call_later(self.limits.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        self.limits.count("timeout")
        if self.cycle is None or not self.cycle.response_started:
            self._refuse(408, b"request not received in time\n")
        else:
            self.transport.close()

    def _refuse(self, status: int, body: bytes) -> None:
        """Answer `status` and close, whatever the parser has seen so far."""
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        reason = _REASONS.get(status, b"")
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, reason, len(body), body)
        )
        self.transport.close()


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing an oversized head."""


_REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttp]:
    """A protocol class for uvicorn's `http` setting that applies `limits`."""
    return type("GuardedHttp", (GuardedHttp,), {"limits": limits})
