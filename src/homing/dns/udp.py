"""DNS over UDP in batches: many datagrams per system call (Linux recvmmsg/sendmmsg).

With every answer prepared, a query costs the Responder a few microseconds; asyncio's
datagram protocol adds a Python callback, a receive and a send system call per query,
which was most of the time (docs/benchmarks.md). Here one readiness callback takes up
to BATCH datagrams with one recvmmsg, answers them in turn, and sends the answers with
one sendmmsg; a datagram whose bytes after the ID were answered before (its name in
any letter case) gets the reply the Responder kept for them, ahead of any other look:
one lower-casing and one dictionary lookup, whatever the letter case.
The callback runs in the event loop's thread between other callbacks, so every query
sees the zone index as the journal follower last left it (never half of a change), and
a busy socket gives the loop back after ROUNDS batches so the HTTP server and the
follower keep their turn.

Python has no recvmmsg, so the calls go through ctypes into the C library. Where it
has none (not Linux), `batch_receiver_available()` is False and the server falls back
to asyncio's datagram protocol.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import mmap
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

from homing.dns.answer import Responder
from homing.dns.dispatch import Dispatcher, needs_dispatch
from homing.dns.replies import EXACT, Kept
from homing.dns.rrl import DROP, IPV4_MASK, IPV6_MASK, SLIP, RateLimiter

__all__ = ["BATCH", "BatchReceiver", "DatagramBatch", "batch_receiver_available"]

logger = logging.getLogger(__name__)

BATCH = 64  # datagrams per system call
ROUNDS = 8  # batches per readiness callback before other callbacks get their turn
RECEIVE_SLOT = 65536  # any UDP datagram fits, so none is cut short
SEND_SLOT = 4096  # answers over UDP are at most 1232 bytes; a larger one is sent alone
MAX_UDP_DISPATCHES = 128  # UPDATEs and transfers in flight; more are dropped (clients retry)

_MSG_DONTWAIT = 0x40
_MSG_TRUNC = 0x20
# struct mmsghdr on 64-bit Linux: struct msghdr (56 bytes) then unsigned msg_len, padded.
_HDR = 64
_IOV = 16  # struct iovec: base pointer, length
_ADDR = 128  # struct sockaddr_storage
_INIT_HDR = struct.Struct("<QI4xQQ")  # msg_name, msg_namelen, msg_iov, msg_iovlen
_POINTER = struct.Struct("<Q")
_IOV_ENTRY = struct.Struct("<QQ")  # an iovec: where the bytes are, how many
_RESULTS: dict[int, struct.Struct] = {}  # per count: (msg_flags, msg_len) of each message
_TRUNCATED = b""  # a datagram larger than its slot (cannot happen with RECEIVE_SLOT)


def _load_calls() -> tuple[Any, Any] | None:
    if not sys.platform.startswith("linux") or struct.calcsize("P") != 8:
        return None
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path, use_errno=True)
        recvmmsg, sendmmsg = libc.recvmmsg, libc.sendmmsg
    except (OSError, AttributeError):
        return None
    recvmmsg.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    recvmmsg.restype = ctypes.c_int
    sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    sendmmsg.restype = ctypes.c_int
    return recvmmsg, sendmmsg


_CALLS = _load_calls()


def batch_receiver_available() -> bool:
    """Whether this platform has recvmmsg and sendmmsg (64-bit Linux)."""
    return _CALLS is not None


class _Memory:
    """Anonymous memory the kernel reads and writes; pages are only backed once touched."""

    def __init__(self, size: int) -> None:
        self.map = mmap.mmap(-1, size)
        self._anchor = ctypes.c_char.from_buffer(self.map)
        self.address = ctypes.addressof(self._anchor)
        self.view = memoryview(self.map)

    def close(self) -> None:
        self.view.release()
        del self._anchor
        self.map.close()


class DatagramBatch:
    """Up to `size` datagrams received with one call, and their answers sent with one.

    The answer to slot i goes to the address the datagram of slot i came from; its
    address is never copied out of the kernel's sockaddr, only pointed at.
    """

    def __init__(self, sock: socket.socket, size: int = BATCH) -> None:
        if _CALLS is None:
            raise OSError(errno.ENOSYS, "recvmmsg/sendmmsg are not available here")
        self._recvmmsg, self._sendmmsg = _CALLS
        self._fd = sock.fileno()
        self._sock = sock
        self.size = size
        self._received = _Memory(size * RECEIVE_SLOT)
        self._outgoing = _Memory(size * SEND_SLOT)
        self._addresses = _Memory(size * _ADDR)
        self._receive_iov = _Memory(size * _IOV)
        self._send_iov = _Memory(size * _IOV)
        self._receive_hdr = _Memory(size * _HDR)
        self._send_hdr = _Memory(size * _HDR)
        self._namelen = 16 if sock.family == socket.AF_INET else 28
        # Where a sockaddr holds the address (sockaddr_in's 4 bytes at 4, sockaddr_in6's
        # 16 at 8), and how rate limiting reads its prefix: an integer, masked.
        ipv4 = sock.family == socket.AF_INET
        self._client_format = "4x4s120x" if ipv4 else "8x16s104x"
        self._client_layouts: dict[int, struct.Struct] = {}
        self._prefix_format = "4xI120x" if ipv4 else "8xQ112x"
        self.prefix_mask = IPV4_MASK if ipv4 else IPV6_MASK
        self._prefix_layouts: dict[int, struct.Struct] = {}
        for i in range(size):
            struct.pack_into(
                "<QQ",
                self._receive_iov.view,
                i * _IOV,
                self._received.address + i * RECEIVE_SLOT,
                RECEIVE_SLOT,
            )
            struct.pack_into(
                "<QQ", self._send_iov.view, i * _IOV, self._outgoing.address + i * SEND_SLOT, 0
            )
            self._init_header(self._receive_hdr.view, i, i, _ADDR, self._receive_iov.address)
            self._init_header(self._send_hdr.view, i, i, self._namelen, self._send_iov.address)
        self._received_map = self._received.map  # the queue_kept path's, read once
        self._received_at = self._received.address
        self._send_iov_view = self._send_iov.view
        self._pending = 0  # answers queued for the next send()
        self._moved: list[int] = []  # send headers pointing at another slot's address

    def _init_header(self, view: memoryview, i: int, slot: int, namelen: int, iov: int) -> None:
        _INIT_HDR.pack_into(
            view, i * _HDR, self._addresses.address + slot * _ADDR, namelen, iov + i * _IOV, 1
        )

    def receive(self) -> int:
        """Take the datagrams waiting (at most `size`); 0 when there are none.

        Answers queued and not sent are forgotten: their slots are about to be reused.
        """
        self._forget_queued()
        while True:
            got: int = self._recvmmsg(
                self._fd, self._receive_hdr.address, self.size, _MSG_DONTWAIT, None
            )
            if got >= 0:
                return got
            code = ctypes.get_errno()
            if code == errno.EINTR:
                continue
            if code in (errno.EAGAIN, errno.EWOULDBLOCK):
                return 0
            # ICMP errors of earlier answers and the like: the client's business, not ours.
            logger.debug("DNS UDP receive: %s", errno.errorcode.get(code, code))
            if code in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                continue
            raise OSError(code, f"recvmmsg: {errno.errorcode.get(code, code)}")

    def datagrams(self, count: int) -> list[bytes]:
        """The `count` datagrams just received, by slot (b"" for one cut short)."""
        results = _RESULTS.get(count)
        if results is None:
            results = _RESULTS[count] = struct.Struct("<" + "48xi4xI4x" * count)
        fields = results.unpack_from(self._receive_hdr.view)
        received = self._received.map  # slicing the map makes the bytes in one step
        out = []
        for i in range(count):
            if fields[2 * i] & _MSG_TRUNC:
                out.append(_TRUNCATED)
                continue
            start = i * RECEIVE_SLOT
            out.append(received[start : start + fields[2 * i + 1]])
        return out

    def address(self, slot: int) -> tuple[str, int]:
        """Where the datagram in `slot` came from, as (host, port)."""
        offset = slot * _ADDR
        raw = self._addresses.view[offset : offset + self._namelen]
        port = int.from_bytes(raw[2:4], "big")
        if self._namelen == 16:
            return socket.inet_ntop(socket.AF_INET, raw[4:8]), port
        return socket.inet_ntop(socket.AF_INET6, raw[8:24]), port

    def clients(self, count: int) -> tuple[bytes, ...]:
        """The addresses of the `count` datagrams just received, by slot, read at once."""
        layout = self._client_layouts.get(count)
        if layout is None:
            layout = self._client_layouts[count] = struct.Struct("<" + self._client_format * count)
        return layout.unpack_from(self._addresses.view)

    def prefixes(self, count: int) -> tuple[int, ...]:
        """The sources of the `count` datagrams just received, by slot, each an integer
        whose bits under `prefix_mask` are its /24 or /56 (rrl.prefix_of), read at once."""
        layout = self._prefix_layouts.get(count)
        if layout is None:
            layout = self._prefix_layouts[count] = struct.Struct("<" + self._prefix_format * count)
        return layout.unpack_from(self._addresses.view)

    def queue(self, slot: int, reply: bytes) -> None:
        """Send `reply` to where slot's datagram came from, with the next send()."""
        length = len(reply)
        if length > SEND_SLOT:
            self._send_alone(reply, self.address(slot))
            return
        j = self._pending
        start = j * SEND_SLOT
        self._outgoing.map[start : start + length] = reply
        self._queued(slot, j, self._outgoing.address + start, length)

    def queue_kept(self, slot: int, kept: Kept) -> None:
        """Send a kept reply (replies.Kept) to where slot's datagram came from, with the
        next send(): made in place of the datagram, whose ID and spelling of the name
        stay as the asker sent them, so it costs the same whatever their letter case."""
        header, length, tail = kept
        start = slot * RECEIVE_SLOT
        received = self._received_map
        received[start + 2 : start + 12] = header
        at = start + 12 + length
        end = at + len(tail)  # a UDP reply is shorter than the slot (RECEIVE_SLOT)
        received[at:end] = tail
        # As _queued, inlined: every kept answer comes this way.
        j = self._pending
        _IOV_ENTRY.pack_into(self._send_iov_view, j * _IOV, self._received_at + start, end - start)
        if slot != j:
            _POINTER.pack_into(
                self._send_hdr.view, j * _HDR, self._addresses.address + slot * _ADDR
            )
            self._moved.append(j)
        self._pending = j + 1

    def _queued(self, slot: int, j: int, where: int, length: int) -> None:
        """Answer j, `length` bytes at address `where`, goes to slot's sender."""
        _IOV_ENTRY.pack_into(self._send_iov_view, j * _IOV, where, length)
        if slot != j:
            _POINTER.pack_into(
                self._send_hdr.view, j * _HDR, self._addresses.address + slot * _ADDR
            )
            self._moved.append(j)
        self._pending = j + 1

    def send(self) -> int:
        """Send the queued answers; how many went out (the rest are dropped, as UDP may)."""
        count = self._pending
        done = delivered = 0
        while done < count:
            got: int = self._sendmmsg(
                self._fd, self._send_hdr.address + done * _HDR, count - done, _MSG_DONTWAIT
            )
            if got > 0:
                done += got
                delivered += got
                continue
            code = ctypes.get_errno()
            if code == errno.EINTR:
                continue
            logger.debug("DNS UDP send: %s", errno.errorcode.get(code, code))
            if code in (errno.EAGAIN, errno.EWOULDBLOCK):
                break  # the send buffer is full: the rest are dropped
            done += 1  # this one answer cannot go (its address, say): skip it, not the rest
        self._forget_queued()
        return delivered

    def _forget_queued(self) -> None:
        self._pending = 0
        for j in self._moved:
            _POINTER.pack_into(self._send_hdr.view, j * _HDR, self._addresses.address + j * _ADDR)
        self._moved.clear()

    def _send_alone(self, reply: bytes, address: tuple[str, int]) -> None:
        try:
            self._sock.sendto(reply, address)
        except OSError as exc:
            logger.debug("DNS UDP send: %s", exc)

    def close(self) -> None:
        for memory in (
            self._received,
            self._outgoing,
            self._addresses,
            self._receive_iov,
            self._send_iov,
            self._receive_hdr,
            self._send_hdr,
        ):
            memory.close()


class BatchReceiver:
    """Serves one UDP socket from a readiness callback: receive a batch, answer, send."""

    def __init__(
        self,
        sock: socket.socket,
        responder: Responder,
        dispatcher: Dispatcher | None,
        on_answered: Callable[[int], None],
        limiter: RateLimiter | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._limiter = limiter
        self._sock = sock
        self._responder = responder
        self._dispatcher = dispatcher
        self._on_answered = on_answered
        self._batch = DatagramBatch(sock)
        self._no_clients = (b"",) * self._batch.size
        self._dispatches: set[asyncio.Task[None]] = set()
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        batch = self._batch
        responder = self._responder
        compute = responder.compute
        cookies = responder.cookies is not None
        # The index cannot change while this callback runs: one look at the replies kept.
        kept = responder.udp_replies()
        dispatcher = self._dispatcher
        limiter = self._limiter
        if limiter is not None:
            # Rate limiting's counts: the second is read once per callback, which is short.
            counts = limiter.window(int(self._loop.time()))
            rate = limiter.rate
            mask = batch.prefix_mask
        answered = 0
        for _ in range(ROUNDS):
            try:
                count = batch.receive()
            except OSError as exc:
                logger.warning("DNS UDP receive failed: %s", exc)
                break
            if not count:
                break
            prefixes = batch.prefixes(count) if limiter is not None else ()
            # DNS Cookies hash the client's address; an empty one turns them off.
            clients = batch.clients(count) if cookies else self._no_clients
            for slot, data in enumerate(batch.datagrams(count)):
                try:
                    if limiter is not None:
                        prefix = prefixes[slot] & mask
                        seen = counts[prefix] = counts.get(prefix, 0) + 1
                        verdict = limiter.over(seen) if seen > rate else 0
                        if verdict and self._held_back(slot, data, clients[slot], verdict, limiter):
                            continue
                    # A query seen before, its name in any letter case (a resolver's
                    # 0x20): its kept reply, as replies.kept_reply finds it (only plain
                    # queries are kept, so nothing for the dispatcher is ever found here).
                    asked = data[2:]
                    found = kept.get(asked.lower())
                    if found is None:
                        found = kept.get(EXACT + asked)  # kept for its own bytes alone
                    if found is not None:
                        batch.queue_kept(slot, found)
                        continue
                    if dispatcher is not None and needs_dispatch(data):
                        self._dispatch_later(dispatcher, data, batch.address(slot))
                        continue
                    reply = compute(data, tcp=False, client=clients[slot])
                    if reply is not None:
                        batch.queue(slot, reply)
                except Exception:
                    # Our bug (the Responder answers SERVFAIL for its own): the other
                    # queries of the batch are still answered.
                    logger.exception("DNS UDP query failed: %s", data[:512].hex())
            answered += batch.send()
            if count < batch.size:
                break  # the socket is drained
        if answered:
            self._on_answered(answered)

    def _held_back(
        self, slot: int, data: bytes, client: bytes, verdict: int, limiter: RateLimiter
    ) -> bool:
        """Over its prefix's rate: send the truncated answer or nothing, unless the query
        shows a server cookie we gave its address (then False: answer it as usual)."""
        if client and self._responder.proven(data, client):
            return False
        reply = self._responder.truncated(data, client) if verdict == SLIP else None
        if reply is not None:
            self._batch.queue(slot, reply)
        limiter.held(SLIP if reply is not None else DROP)  # what was done, not what was due
        return True

    def _dispatch_later(self, dispatcher: Dispatcher, data: bytes, addr: tuple[str, int]) -> None:
        if len(self._dispatches) >= MAX_UDP_DISPATCHES:
            return
        task = asyncio.ensure_future(self._dispatch(dispatcher, data, addr))
        self._dispatches.add(task)
        task.add_done_callback(self._dispatches.discard)

    async def _dispatch(self, dispatcher: Dispatcher, data: bytes, addr: tuple[str, int]) -> None:
        for reply in await dispatcher.handle(data, addr[0], tcp=False):
            if self._closed:
                return
            try:
                self._sock.sendto(reply, addr)
            except OSError as exc:
                logger.debug("DNS UDP send: %s", exc)
                return
            self._on_answered(1)

    def close(self) -> None:
        """Stop reading, cancel UPDATEs and transfers in flight, close the socket."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._sock.fileno())
        for task in self._dispatches:
            task.cancel()
        self._batch.close()
        self._sock.close()

    async def wait_closed(self) -> None:
        """Returns once the dispatches cancelled by close() have ended."""
        if self._dispatches:
            await asyncio.gather(*self._dispatches, return_exceptions=True)
