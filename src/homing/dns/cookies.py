"""DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018), sans-I/O.

A server cookie is version 1, three reserved bytes, a 32-bit timestamp and SipHash-2-4
over the client cookie, those eight bytes and the client's address, keyed by a server
secret. Every worker and every restart reads the same secret from the data directory,
so a cookie one worker gave out is good at the others, and after a restart.

A client that shows a valid server cookie has proved it receives our answers at its
address: response rate limiting lets it through.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

from siphashc import siphash

from homing.dns.ednsopt import add_options, find_option

__all__ = [
    "COOKIE_OPTION",
    "CookieError",
    "ServerCookies",
    "address_bytes",
    "find_cookie",
    "load_secret",
    "split_cookie",
    "with_option",
]

COOKIE_OPTION = 10  # the EDNS option code (RFC 7873 4)
CLIENT_COOKIE = 8
SERVER_COOKIE = 16  # what we hand out: RFC 9018's layout
MIN_SERVER_COOKIE = 8
MAX_SERVER_COOKIE = 32
LIFETIME = 3600  # RFC 9018 4.3: older server cookies are no longer valid ...
SKEW = 300  # ... nor those stamped more than five minutes ahead of our clock
SECRET_FILE = "dns-cookie-secret"
SECRET_BYTES = 16  # SipHash-2-4's key

_VERSION_RESERVED = b"\x01\x00\x00\x00"
_STAMP = struct.Struct("!I")


class CookieError(ValueError):
    """A COOKIE option of a length RFC 7873 5.2.2 calls malformed: the answer is FORMERR."""


def address_bytes(host: str) -> bytes:
    """A peer's address as the 4 or 16 bytes DNS Cookies hash; b"" when it is not one."""
    try:
        if ":" in host:
            return socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
        return socket.inet_pton(socket.AF_INET, host)
    except OSError:
        return b""


def split_cookie(data: bytes) -> tuple[bytes, bytes]:
    """(client cookie, server cookie or b"") from a COOKIE option's data."""
    length = len(data)
    if length != CLIENT_COOKIE and not (
        CLIENT_COOKIE + MIN_SERVER_COOKIE <= length <= CLIENT_COOKIE + MAX_SERVER_COOKIE
    ):
        raise CookieError(f"a COOKIE option of {length} bytes")
    return data[:CLIENT_COOKIE], data[CLIENT_COOKIE:]


class ServerCookies:
    """Makes and checks server cookies with one secret."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        if len(secret) != SECRET_BYTES:
            raise ValueError(f"a cookie secret is {SECRET_BYTES} bytes, not {len(secret)}")
        self._secret = secret
        self._clock = clock

    def make(self, client_cookie: bytes, client_ip: bytes) -> bytes:
        """A fresh server cookie for this client cookie and client address (4 or 16 bytes)."""
        head = _VERSION_RESERVED + _STAMP.pack(int(self._clock()) & 0xFFFFFFFF)
        return head + self._hash(client_cookie + head + client_ip)

    def valid(self, client_cookie: bytes, server_cookie: bytes, client_ip: bytes) -> bool:
        """Whether we made `server_cookie` for this client within the last LIFETIME."""
        if len(server_cookie) != SERVER_COOKIE or server_cookie[:4] != _VERSION_RESERVED:
            return False
        (stamp,) = _STAMP.unpack_from(server_cookie, 4)
        # Serial number arithmetic (RFC 1982): the 32-bit timestamp wraps in 2106.
        age = (int(self._clock()) - stamp) & 0xFFFFFFFF
        if age >= 1 << 31:
            age -= 1 << 32
        if not -SKEW <= age <= LIFETIME:
            return False
        expected = self._hash(client_cookie + server_cookie[:8] + client_ip)
        return hmac.compare_digest(expected, server_cookie[8:])

    def option(self, client_cookie: bytes, client_ip: bytes) -> bytes:
        """The COOKIE option (code, length, data) to answer with."""
        server = self.make(client_cookie, client_ip)
        return (
            struct.pack("!HH", COOKIE_OPTION, CLIENT_COOKIE + len(server)) + client_cookie + server
        )

    def _hash(self, data: bytes) -> bytes:
        # The reference implementation writes its 64-bit result little-endian.
        return siphash(self._secret, data).to_bytes(8, "little")


def load_secret(data_dir: Path) -> bytes:
    """The server's cookie secret, from the data directory; made there (0600) the first time.

    Several workers starting at once agree: the first to link its file wins, the others
    read that one.
    """
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        spare = data_dir / f".{SECRET_FILE}.{os.getpid()}"
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(SECRET_BYTES) + "\n")
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(spare, path)  # never replaces a secret another worker wrote
        finally:
            spare.unlink(missing_ok=True)
    text = path.read_text().strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != SECRET_BYTES:
        raise ValueError(
            f"{path} must hold {SECRET_BYTES * 2} hex digits (the DNS cookie secret); "
            "remove it and a new one is made"
        )
    return secret


def find_cookie(wire: bytes, start: int) -> bytes | None:
    """The data of the first COOKIE option among the EDNS options from `start` to the end
    of `wire` (a query whose OPT record is its last, its options well-formed)."""
    return find_option(wire, start, COOKIE_OPTION)


def with_option(reply: bytes, option: bytes, question: bytes, limit: int) -> bytes:
    """`reply` with `option` added to the OPT record that ends it (one of ours).

    Over `limit` bytes, the answer becomes the question alone with TC, the option kept.
    A reply without such an OPT record is returned as it is.
    """
    return add_options(reply, option, question, limit)
