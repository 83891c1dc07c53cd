"""DNS over TCP framing (RFC 1035 4.2.2, RFC 7766), sans-I/O in the style of h11.

`receive_data()` only buffers; `next_message()` cuts one message off the buffer when it
is complete, or says what it is waiting for. The transport owns sockets and clocks and
asks `in_message` to tell an idle connection from a slow client.
"""

from __future__ import annotations

import enum
import struct

__all__ = ["CLOSED", "NEED_DATA", "FramingError", "State", "StreamFramer", "frame"]

MAX_MESSAGE = 65535  # what a 2-byte length can say

_LENGTH = struct.Struct("!H")


class State(enum.Enum):
    """What `next_message()` returns when it has no message to give."""

    NEED_DATA = "need data"
    CLOSED = "closed"


NEED_DATA = State.NEED_DATA
CLOSED = State.CLOSED


class FramingError(Exception):
    """The peer broke the framing; the connection cannot be trusted any further."""


def frame(message: bytes) -> bytes:
    """`message` with its 2-byte length in front."""
    if not 0 < len(message) <= MAX_MESSAGE:
        raise ValueError(f"a DNS message over TCP is 1..{MAX_MESSAGE} bytes, not {len(message)}")
    return _LENGTH.pack(len(message)) + message


class StreamFramer:
    """Splits one direction of a DNS-over-TCP stream into messages."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        if not 12 <= max_message <= MAX_MESSAGE:
            raise ValueError(
                f"max_message must be 12..{MAX_MESSAGE} (a header is 12), not {max_message}"
            )
        self.max_message = max_message
        self._buffer = bytearray()
        self._eof = False

    @property
    def in_message(self) -> bool:
        """True while part of a message (or of its length) is buffered."""
        return bool(self._buffer)

    @property
    def buffered(self) -> int:
        """Bytes received and not yet cut into messages."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; b"" means the peer closed its side."""
        if self._eof:
            raise RuntimeError("receive_data() after the end of the stream")
        if data:
            self._buffer += data
        else:
            self._eof = True

    def next_message(self) -> bytes | State:
        """The next complete message, NEED_DATA, or CLOSED after a clean end of stream.

        Raises FramingError for a zero length, a length over `max_message`, or a stream
        that ends inside a message.
        """
        buffer = self._buffer
        if len(buffer) >= 2:
            (length,) = _LENGTH.unpack_from(buffer)
            if length == 0:
                raise FramingError("zero-length DNS message")
            if length > self.max_message:
                raise FramingError(
                    f"DNS message of {length} bytes over the limit of {self.max_message}"
                )
            if len(buffer) >= 2 + length:
                message = bytes(buffer[2 : 2 + length])
                del buffer[: 2 + length]
                return message
        if not self._eof:
            return NEED_DATA
        if buffer:
            raise FramingError(f"stream ended inside a message ({len(buffer)} bytes buffered)")
        return CLOSED
