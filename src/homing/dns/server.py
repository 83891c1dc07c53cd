"""The DNS server: one UDP socket and one TCP listener around the sans-I/O Responder.

UDP is served in batches (homing.dns.udp) or through asyncio's datagram protocol; TCP
connections are homing.dns.tcp's.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, cast

from homing.dns.answer import Responder
from homing.dns.chaos import ServerIdentity
from homing.dns.cookies import ServerCookies, address_bytes
from homing.dns.dispatch import Dispatcher, needs_dispatch
from homing.dns.index import ZoneIndex
from homing.dns.rrl import DROP, SLIP, RateLimiter, prefix_of
from homing.dns.tcp import Clients, TcpConnection, TcpLimits
from homing.dns.udp import MAX_UDP_DISPATCHES, BatchReceiver, batch_receiver_available

__all__ = ["DnsServer", "TcpLimits", "limited_count", "parse_listen", "query_count", "start_dns"]

logger = logging.getLogger(__name__)

_PORT_ZERO_ATTEMPTS = 20


class _Counter:
    """Messages one server answered: plain ints bumped in the loop's thread, no lock."""

    __slots__ = ("tcp", "udp")

    def __init__(self) -> None:
        self.udp = 0
        self.tcp = 0

    def add_udp(self, count: int) -> None:
        self.udp += count

    def add_tcp(self) -> None:
        self.tcp += 1


# Every server this process started, closed ones too: the count is the process's.
_COUNTERS: list[_Counter] = []


def query_count() -> int:
    """DNS messages answered by this process so far (UDP and TCP, every server it ran)."""
    return sum(counter.udp + counter.tcp for counter in _COUNTERS)


# The rate limiters of every server this process started.
_LIMITERS: list[RateLimiter] = []


def limited_count() -> int:
    """UDP answers this process dropped or sent truncated for response rate limiting."""
    return sum(limiter.limited for limiter in _LIMITERS)


def parse_listen(text: str) -> tuple[str, int]:
    """Split "127.0.0.1:8053" or "[::1]:53" into host and port; ValueError when malformed."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"listen address {text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"listen address {text!r}: {host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"listen address {text!r}: write an IPv6 address in brackets, as [::1]:53")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"listen address {text!r}: port must be 0..65535")
    return host, int(port_text)


class DnsServer:
    """A running DNS server: one UDP socket and one TCP listener on the same address."""

    def __init__(
        self,
        udp: BatchReceiver | _UdpProtocol,
        tcp: asyncio.Server,
        clients: Clients,
    ) -> None:
        self._udp = udp
        self._tcp = tcp
        self._clients = clients
        sockname = tcp.sockets[0].getsockname()
        self.host: str = sockname[0]
        self.port: int = sockname[1]

    @property
    def tcp_connections(self) -> int:
        """How many TCP clients are connected now."""
        return len(self._clients.connections)

    def tcp_buffered(self) -> int:
        """Bytes of queries the TCP clients sent that wait in this process, unanswered."""
        return sum(c.buffered for c in self._clients.connections)

    async def close(self) -> None:
        """Stop listening, drop every TCP client, and wait until the sockets are closed."""
        self._tcp.close()
        self._udp.close()
        for connection in list(self._clients.connections):
            connection.abort()
        await self._tcp.wait_closed()
        await self._udp.wait_closed()


async def start_dns(
    index: ZoneIndex,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    limits: TcpLimits | None = None,
    dispatch: Callable[[Responder], Dispatcher] | None = None,
    udp_batches: bool = True,
    rrl: RateLimiter | None = None,
    cookies: ServerCookies | None = None,
    identity: ServerIdentity | None = None,
) -> DnsServer:
    """Serve `index` over UDP and TCP on host:port (port 0: one free port for both).

    Without `dispatch`, UPDATE and zone transfers are refused by the responder; with it,
    they go to the Dispatcher it makes around the server's responder. UDP is served in
    batches (homing.dns.udp) where the platform allows and `udp_batches` is left on,
    else through asyncio's datagram protocol. `rrl` limits the UDP answers per source
    prefix (None: no limit); with `cookies`, DNS Cookies are answered (None: ignored);
    `identity` is what the server says about itself (homing.dns.chaos; None: nothing).
    """
    loop = asyncio.get_running_loop()
    responder = Responder(index, cookies=cookies, identity=identity)
    if rrl is not None:
        _LIMITERS.append(rrl)
    dispatcher = None if dispatch is None else dispatch(responder)
    limits = limits or TcpLimits()
    counter = _Counter()
    _COUNTERS.append(counter)
    udp_sock, tcp_sock = _bind_pair(host, port, reuse_port=reuse_port)
    udp: BatchReceiver | _UdpProtocol
    try:
        if udp_batches and batch_receiver_available():
            udp = BatchReceiver(udp_sock, responder, dispatcher, counter.add_udp, rrl)
        else:
            _, udp = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(responder, dispatcher, counter, rrl), sock=udp_sock
            )
    except BaseException:
        udp_sock.close()
        tcp_sock.close()
        raise
    clients = Clients(limits)
    try:
        tcp = await loop.create_server(
            lambda: TcpConnection(responder, limits, clients, counter.add_tcp, dispatcher),
            sock=tcp_sock,
            backlog=1024,
        )
    except BaseException:
        tcp_sock.close()
        udp.close()
        raise
    server = DnsServer(udp, tcp, clients)
    logger.info("DNS listening on %s port %d (UDP and TCP)", server.host, server.port)
    return server


UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


def _bind_pair(host: str, port: int, *, reuse_port: bool) -> tuple[socket.socket, socket.socket]:
    """A bound UDP and a listening TCP socket on the same port.

    The sockets are made here rather than by the loop because uvloop leaks its
    transport when binding fails. With port 0 the kernel picks the UDP port, and if its
    TCP twin is taken we ask again.
    """
    attempts = _PORT_ZERO_ATTEMPTS if port == 0 else 1
    for attempt in range(attempts):
        udp = _bind(host, port, socket.SOCK_DGRAM, reuse_port=reuse_port)
        try:
            tcp = _bind(host, udp.getsockname()[1], socket.SOCK_STREAM, reuse_port=reuse_port)
        except OSError as exc:
            udp.close()
            if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                raise
            continue
        return udp, tcp
    raise AssertionError("unreachable")


def _bind(host: str, port: int, kind: socket.SocketKind, *, reuse_port: bool) -> socket.socket:
    """A non-blocking socket bound to host:port (listening, for TCP)."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            # As asyncio does: a restart must not wait for TIME_WAIT connections to expire.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if kind == socket.SOCK_DGRAM:
            # Room for bursts: the default buffer drops queries while an answer is prepared.
            # The kernel caps this at net.core.rmem_max.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        sock.bind(address)
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _UdpProtocol(asyncio.DatagramProtocol):
    """One datagram in, at most one datagram out (where UDP batches are not available)."""

    def __init__(
        self,
        responder: Responder,
        dispatcher: Dispatcher | None,
        counter: _Counter,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._responder = responder
        self._limiter = limiter
        self._dispatcher = dispatcher
        self._counter = counter
        self._dispatches: set[asyncio.Task[None]] = set()
        self._transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not a subclass of asyncio.DatagramTransport: no isinstance.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        client = b""
        if self._limiter is not None:
            verdict = self._limiter.check(prefix_of(addr[0]), int(time.monotonic()))
            if verdict:
                client = address_bytes(addr[0])
                if not self._responder.proven(data, client):
                    reply = self._responder.truncated(data, client) if verdict == SLIP else None
                    if reply is not None and self._transport is not None:
                        self._transport.sendto(reply, addr)
                    self._limiter.held(SLIP if reply is not None else DROP)
                    return
        if self._dispatcher is not None and needs_dispatch(data):
            if len(self._dispatches) < MAX_UDP_DISPATCHES:
                task = asyncio.ensure_future(self._dispatch(self._dispatcher, data, addr))
                self._dispatches.add(task)
                task.add_done_callback(self._dispatches.discard)
            return
        if not client and self._responder.cookies is not None:
            client = address_bytes(addr[0])
        reply = self._responder.answer(data, tcp=False, client=client)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)
            self._counter.udp += 1

    async def _dispatch(self, dispatcher: Dispatcher, data: bytes, addr: Any) -> None:
        for reply in await dispatcher.handle(data, str(addr[0]), tcp=False):
            if self._transport is None or self._transport.is_closing():
                return
            self._transport.sendto(reply, addr)
            self._counter.udp += 1

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        await self.closed

    def error_received(self, exc: Exception) -> None:
        # ICMP errors from earlier replies (the client went away); nothing to do.
        logger.debug("DNS UDP error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self._dispatches:
            task.cancel()
        if not self.closed.done():
            self.closed.set_result(None)
