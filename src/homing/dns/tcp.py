"""DNS over TCP (RFC 7766): one connection's pipelined queries, under TcpLimits.

Sans-I/O framing comes from homing.dns.framing; this is the asyncio protocol around it,
with the limits that keep one client, or one source, from holding the server: how many
connections, how long a message may take, how long a connection may sit idle, and no
reading while a message is in hand.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from homing.dns.answer import Responder
from homing.dns.cookies import address_bytes
from homing.dns.dispatch import Dispatcher, needs_dispatch
from homing.dns.framing import CLOSED, NEED_DATA, FramingError, StreamFramer, frame

__all__ = ["Clients", "TcpConnection", "TcpLimits"]

logger = logging.getLogger(__name__)


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


class Clients:
    """The TCP clients connected now, and how many each source holds (TcpLimits)."""

    def __init__(self, limits: TcpLimits) -> None:
        self.limits = limits
        self.connections: set[TcpConnection] = set()
        self.per_source: dict[str, int] = {}

    def admit(self, connection: TcpConnection, source: str) -> bool:
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

    def leave(self, connection: TcpConnection, source: str) -> None:
        if connection not in self.connections:
            return  # never admitted
        self.connections.discard(connection)
        held = self.per_source.pop(source, 1) - 1
        if held > 0:
            self.per_source[source] = held


class TcpConnection(asyncio.Protocol):
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
        clients: Clients,
        on_answered: Callable[[], None],
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self._responder = responder
        self._on_answered = on_answered
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
        self._client = address_bytes(str(peer[0])) if peer else b""
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
                self._on_answered()
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
                self._on_answered()
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
