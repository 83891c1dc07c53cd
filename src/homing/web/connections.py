"""uvicorn's httptools protocol with the bounds an internet-facing server needs.

uvicorn (with httptools) closes a connection only after a response and a keep-alive
pause: one that never finishes its first request stays open for ever and counts
against `limit_concurrency`, and httptools buffers a request head of any size. This
subclass adds, per connection:

- a deadline for each request to arrive whole (head and body), from the connection's
  opening or the request's first byte, answered 408 and closed;
- a bound on the request head (request line and headers), in bytes checked before
  they reach the parser, and in fields, answered 431 and closed;
- a cap of open connections per source (an IPv4 address, an IPv6 /56), refused with
  503 for that source alone; trusted proxies are exempt (they carry many clients);
- a cap of open connections in all: at the cap the oldest connection without a
  request in hand makes room, so idle sockets cannot lock others out;
- a cap of requests in progress, which (unlike uvicorn's) does not count idle
  connections.

The deadlines are plain numbers that one sweep a second looks at, so a connection
costs no timer of its own; a request costs a few attribute checks.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field

from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 16 * 1024  # request line and headers; dyndns2 requests are a few hundred bytes
MAX_HEADERS = 100
SOURCE_PREFIX_V6 = 56  # one subscriber's IPv6 allocation, as the store's throttle counts it
SWEEP = 1.0  # seconds between looks at the deadlines: a deadline holds to within this

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
    _sweeping: bool = False

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

    def count(self, why: str) -> None:
        self.refused[why] = self.refused.get(why, 0) + 1

    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Sweep the deadlines while connections are open (started by the first one)."""
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(SWEEP, self._sweep, loop)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        late = [c for c in self._open if c.deadline is not None and c.deadline <= now]
        for connection in late:
            connection.timed_out()
        if self._open:
            loop.call_later(SWEEP, self._sweep, loop)
        else:
            self._sweeping = False


_Base = HttpToolsProtocol  # called directly, not through super(): this runs per request

HELD_MAX = 64 * 1024  # bytes a connection holds back within a turn before it writes


class TurnWrites:
    """A transport whose writes within one event-loop turn go out as one.

    uvicorn writes a response's status line and headers, then its body, each at once: two
    system calls and two segments for an answer of a few dozen bytes. Here they wait for
    the end of the turn (`call_soon`), at most HELD_MAX bytes of them, and are written
    together; close() writes what is held first, abort() drops it. Everything else is the
    wrapped transport's."""

    __slots__ = ("_transport", "_loop", "_held", "_size")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None
        self._size = 0

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = [data]
            self._size = len(data)
            self._loop.call_soon(self._flush)
        else:
            held.append(data)
            self._size += len(data)
        if self._size >= HELD_MAX:
            self._flush()

    def writelines(self, lines: list[bytes]) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():  # closed meanwhile: nobody to send to
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def is_closing(self) -> bool:  # asked on every request: no __getattr__ round
        return self._transport.is_closing()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


class GuardedHttp(HttpToolsProtocol):
    """HttpToolsProtocol with the deadlines and caps of ConnectionLimits."""

    limits: ConnectionLimits = ConnectionLimits()
    # Per-connection state, set on the instance as it changes (no __init__ of our own:
    # one less call per connection). uvicorn's own limit_concurrency stays unset: it
    # would count idle connections.
    deadline: float | None = None  # for the request being received
    _source: str | None = None
    _head: int | None = 0  # head bytes so far; None once the head is whole

    # -- connection -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _Base.connection_made(self, transport)
        self.transport = TurnWrites(transport, self.loop)  # type: ignore[assignment]
        limits = self.limits
        host = self.client[0] if self.client else None
        if host is None or limits.exempt or ":" in host:
            source = None if host is None else limits.source_of(host)
        else:
            source = host  # IPv4 without trusted proxies: the address is the key
        if source is not None and limits._sources.get(source, 0) >= limits.per_source:
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
        self.deadline = self.loop.time() + limits.request_timeout
        if not limits._sweeping:
            limits.watch(self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self._count_out()
        _Base.connection_lost(self, exc)

    def _count_out(self) -> None:
        """Leave the counts (once: eviction counts a connection out before it is lost)."""
        self.deadline = None
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
        if self.deadline is None:
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                # A new request begins (after a keep-alive pause).
                self.deadline = self.loop.time() + self.limits.request_timeout
        if self._head is not None:
            room = self.limits.max_head - self._head
            if len(data) > room:
                # Only as much as the head may still take goes to the parser: the rest
                # is either the body or an oversized head, refused unparsed.
                self._head += room
                _Base.data_received(self, data[:room])
                if self._head is not None and self.limits.max_head <= self._head:
                    if not self.transport.is_closing():
                        self.limits.count("head")
                        self._refuse(431, b"request header fields too large\n")
                    return
                if not self.transport.is_closing():
                    self.data_received(data[room:])
                return
            self._head += len(data)
        _Base.data_received(self, data)

    def on_headers_complete(self) -> None:
        self._head = None
        limits = self.limits
        if self.transport.is_closing():
            return  # a request pipelined behind a refused one is never run
        if len(self.headers) > limits.max_headers:
            limits.count("headers")
            self._refuse(431, b"too many header fields\n")
            return
        if len(self.tasks) < limits.requests:
            _Base.on_headers_complete(self)
            return
        limits.count("requests")
        app, self.app = self.app, service_unavailable
        try:
            _Base.on_headers_complete(self)
        finally:
            self.app = app

    def on_body(self, body: bytes) -> None:
        if self.cycle is not None and self.cycle.scope is self.scope:
            _Base.on_body(self, body)  # else the head was refused: nothing to give the body to

    def on_message_complete(self) -> None:
        self.deadline = None
        self._head = 0  # what comes next is the next request's head
        if self.cycle is not None and self.cycle.scope is self.scope:
            _Base.on_message_complete(self)

    def timed_out(self) -> None:
        """The request did not arrive whole in time: 408, or close if an answer began."""
        self.deadline = None
        if self.transport.is_closing():
            return
        self.limits.count("timeout")
        self._refuse(408, b"request not received in time\n")

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


_REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttp]:
    """A protocol class for uvicorn's `http` setting that applies `limits`."""
    return type("GuardedHttp", (GuardedHttp,), {"limits": limits})
