"""asyncio UDP and TCP transports around the sans-I/O answer() and StreamFramer."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from homing.dns.answer import Responder
from homing.dns.cookies import ServerCookies
from homing.dns.dispatch import Dispatcher, needs_dispatch
from homing.dns.framing import CLOSED, NEED_DATA, FramingError, StreamFramer, frame
from homing.dns.index import ZoneIndex
from homing.dns.rrl import SLIP, RateLimiter, prefix_of
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


def _client_bytes(host: str) -> bytes:
    """A peer's address as the 4 or 16 bytes DNS Cookies hash; b"" when it is not one."""
    try:
        if ":" in host:
            return socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
        return socket.inet_pton(socket.AF_INET, host)
    except OSError:
        return b""


@dataclass(frozen=True)
class TcpLimits:
    """How long and how many TCP clients may hold on to the server (RFC 7766 6.2)."""

    idle_timeout: float = 10.0  # no query in this long: the connection is closed
    message_timeout: float = 2.0  # a message started must be complete within this
    max_connections: int = 256  # more at once are turned away, so memory stays bounded
    # One source (an IPv4 address, an IPv6 /64) may not take every connection for itself.
    max_per_source: int = 32

    def __post_init__(self) -> None:
        for name in ("idle_timeout", "message_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(
                    f"TcpLimits.{name} must be a positive number of seconds, not {value!r}"
                )
        for name in ("max_connections", "max_per_source"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"TcpLimits.{name} must be at least 1, not {value}")


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
        clients: _Clients,
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
) -> DnsServer:
    """Serve `index` over UDP and TCP on host:port (port 0: one free port for both).

    Without `dispatch`, UPDATE and zone transfers are refused by the responder; with it,
    they go to the Dispatcher it makes around the server's responder. UDP is served in
    batches (homing.dns.udp) where the platform allows and `udp_batches` is left on,
    else through asyncio's datagram protocol. `rrl` limits the UDP answers per source
    prefix (None: no limit); with `cookies`, DNS Cookies are answered (None: ignored).
    """
    loop = asyncio.get_running_loop()
    responder = Responder(index, cookies=cookies)
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
    clients = _Clients(limits)
    try:
        tcp = await loop.create_server(
            lambda: _TcpConnection(responder, limits, clients, counter, dispatcher),
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
                client = _client_bytes(addr[0])
                if not self._responder.proven(data, client):
                    self._limiter.held(verdict)
                    reply = self._responder.truncated(data, client) if verdict == SLIP else None
                    if reply is not None and self._transport is not None:
                        self._transport.sendto(reply, addr)
                    return
        if self._dispatcher is not None and needs_dispatch(data):
            if len(self._dispatches) < MAX_UDP_DISPATCHES:
                task = asyncio.ensure_future(self._dispatch(self._dispatcher, data, addr))
                self._dispatches.add(task)
                task.add_done_callback(self._dispatches.discard)
            return
        if not client and self._responder.cookies is not None:
            client = _client_bytes(addr[0])
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


def _source(peer: Any) -> str:
    """Whose connection this is: the IPv4 address, or the IPv6 /64 (one site's hosts)."""
    if not peer:
        return ""
    host = str(peer[0])
    if ":" not in host:
        return host
    try:
        return str(ipaddress.IPv6Network((host.partition("%")[0], 64), strict=False))
    except ValueError:
        return host


class _Clients:
    """The TCP clients connected now, and how many each source holds (TcpLimits)."""

    def __init__(self, limits: TcpLimits) -> None:
        self.limits = limits
        self.connections: set[_TcpConnection] = set()
        self.per_source: dict[str, int] = {}

    def admit(self, connection: _TcpConnection, source: str) -> bool:
        """Count the connection in, or say no when it is one too many."""
        held = self.per_source.get(source, 0)
        if len(self.connections) >= self.limits.max_connections:
            logger.debug("DNS TCP connection refused: %d open", len(self.connections))
            return False
        if held >= self.limits.max_per_source:
            logger.debug("DNS TCP connection from %s refused: it holds %d", source, held)
            return False
        self.connections.add(connection)
        self.per_source[source] = held + 1
        return True

    def leave(self, connection: _TcpConnection, source: str) -> None:
        if connection not in self.connections:
            return  # never admitted
        self.connections.discard(connection)
        held = self.per_source.pop(source, 1) - 1
        if held > 0:
            self.per_source[source] = held


class _TcpConnection(asyncio.Protocol):
    """One TCP client: pipelined queries answered in order, under TcpLimits.

    One timer per connection enforces both timeouts. It is re-armed only when it fires
    (or when a started message brings the deadline forward), not on every query. While
    an UPDATE or transfer is in hand, or the client does not read its answers, the
    connection stops reading: what the client sends meanwhile waits in the kernel's
    buffers (which then hold the client back), never in ours.
    """

    def __init__(
        self,
        responder: Responder,
        limits: TcpLimits,
        clients: _Clients,
        counter: _Counter,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self._responder = responder
        self._counter = counter
        self._dispatcher = dispatcher
        # An UPDATE or transfer being answered; later messages wait, so answers keep order.
        self._busy: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._limits = limits
        self._clients = clients
        self._source = ""
        self._client = b""  # the peer's address, for DNS Cookies
        self._reading = True
        self._loop = asyncio.get_running_loop()
        self._framer = StreamFramer()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_query = self._loop.time()
        self._message_started: float | None = None
        self._writing_paused = False
        self._stalled_at = 0.0  # when the client last stopped taking its answers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's either: no isinstance.
        self._transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self._source = _source(peer)
        self._client = _client_bytes(str(peer[0])) if peer else b""
        if not self._clients.admit(self, self._source):
            transport.abort()
            return
        self._arm(self._deadline())

    @property
    def buffered(self) -> int:
        """Bytes received and not yet answered."""
        return self._framer.buffered

    def connection_lost(self, exc: Exception | None) -> None:
        self._clients.leave(self, self._source)
        if self._busy is not None:
            self._busy.cancel()
            self._busy = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        self._framer.receive_data(data)
        self._serve()

    def eof_received(self) -> bool:
        # The client may half-close after its last query: answer what came, then close.
        self._framer.receive_data(b"")
        self._serve()
        return True

    def pause_writing(self) -> None:
        # The client is not reading its answers: stop reading its queries too.
        self._writing_paused = True
        self._stalled_at = self._loop.time()
        self._writable.clear()
        self._read_when_free()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._writable.set()
        if self._transport is not None and not self._transport.is_closing():
            self._read_when_free()
            self._serve()

    def _read_when_free(self) -> None:
        """Read only while no message is in hand and the client takes its answers."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        wanted = self._busy is None and not self._writing_paused
        if wanted != self._reading:
            self._reading = wanted
            if wanted:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def abort(self) -> None:
        """Drop the connection at once, unsent answers and all."""
        if self._transport is not None:
            self._transport.abort()

    def _serve(self) -> None:
        transport = self._transport
        assert transport is not None
        if self._busy is not None:
            return  # resumed when the UPDATE or transfer is answered
        while not self._writing_paused and not transport.is_closing():
            try:
                message = self._framer.next_message()
            except FramingError as exc:
                logger.debug("DNS TCP framing error: %s", exc)
                transport.abort()
                return
            if message is NEED_DATA:
                break
            if message is CLOSED:
                transport.close()
                return
            assert isinstance(message, bytes)
            self._last_query = self._loop.time()
            self._message_started = None
            if self._dispatcher is not None and needs_dispatch(message):
                self._busy = asyncio.ensure_future(self._dispatch(self._dispatcher, message))
                self._read_when_free()
                return
            reply = self._responder.answer(message, tcp=True, client=self._client)
            if reply is not None:
                transport.write(frame(reply))
                self._counter.tcp += 1
        if self._framer.in_message and self._message_started is None:
            self._message_started = self._loop.time()
            deadline = self._deadline()
            if self._timer is not None and deadline < self._timer.when():
                self._timer.cancel()
                self._arm(deadline)

    async def _dispatch(self, dispatcher: Dispatcher, message: bytes) -> None:
        transport = self._transport
        assert transport is not None
        peer = transport.get_extra_info("peername")
        try:
            for reply in await dispatcher.handle(message, str(peer[0]) if peer else "", tcp=True):
                if transport.is_closing():
                    return
                transport.write(frame(reply))
                self._counter.tcp += 1
                # A transfer can be large: hold back while the client is not reading.
                await self._writable.wait()
        except Exception:
            logger.exception("DNS TCP dispatch failed")
            transport.abort()
            return
        finally:
            self._busy = None
            self._last_query = self._loop.time()
        if not transport.is_closing():
            self._read_when_free()
            self._serve()

    def _deadline(self) -> float:
        if self._message_started is not None:
            return self._message_started + self._limits.message_timeout
        return self._last_query + self._limits.idle_timeout

    def _arm(self, deadline: float) -> None:
        self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        deadline = self._deadline()
        if self._writing_paused:
            # A client that does not take its answers (a transfer, say) gets as long as
            # an idle one, and no longer.
            deadline = max(deadline, self._stalled_at + self._limits.idle_timeout)
        elif self._busy is not None:
            # Waiting for the store is our time, not the client's.
            deadline = max(deadline, self._loop.time() + self._limits.idle_timeout)
        if self._loop.time() < deadline:
            self._arm(deadline)
            return
        if self._message_started is None and not transport.get_write_buffer_size():
            logger.debug("DNS TCP connection idle, closing")
            transport.close()
        else:
            # A slow or stalled client gets no graceful close: nothing of it is worth waiting for.
            logger.debug("DNS TCP client too slow, aborting")
            transport.abort()
