"""HTTP bounds against the real server, over real sockets: one source that opens idle
connections, trickles a request head or sends a huge one never keeps another source's
`/nic/update` from answering `good`.

Loopback has all of 127/8, so a second source is a socket bound to 127.0.0.2.
"""

from __future__ import annotations

import ipaddress
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from homing.web.connections import ConnectionLimits
from tests.e2e.conftest import LOOPBACK, Server

PER_SOURCE = 8
TOTAL = 16
TIMEOUT = 2.0  # seconds for a whole request, lowered so the test is short
WAIT = 15.0  # the most a test waits for the server to act; a bound, never a pause


@pytest.fixture
def bounded(server: Server) -> Server:
    server.env.update(
        HOMING_HTTP_CONNECTIONS_PER_SOURCE=str(PER_SOURCE),
        HOMING_HTTP_MAX_CONNECTIONS=str(TOTAL),
        HOMING_HTTP_REQUEST_TIMEOUT=str(TIMEOUT),
    )
    server.restart()
    return server


def _connect(server: Server, source: str = LOOPBACK) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(WAIT)
    sock.connect((LOOPBACK, server.http_port))
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded by the socket's timeout)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _update(server: Server, source: str, fqdn: str, secret: str, address: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=WAIT) as client:
        return client.get(
            f"{server.http_url}/nic/update",
            params={"hostname": fqdn, "myip": address},
            auth=(fqdn, secret),
        )


@pytest.fixture
def held() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def test_idle_connections_of_one_source_leave_others_served(
    bounded: Server, held: list[socket.socket]
) -> None:
    fqdn, secret = bounded.new_host("cam")
    # More idle connections than one source may hold: the extra ones are refused at once
    # with 503, and only this source's.
    for _ in range(PER_SOURCE):
        held.append(_connect(bounded))
    extra = _connect(bounded)
    assert _read_until_closed(extra).startswith(b"HTTP/1.1 503 ")
    extra.close()
    response = _update(bounded, "127.0.0.2", fqdn, secret, "192.0.2.20")
    assert (response.status_code, response.text) == (200, "good 192.0.2.20\n")

    # A third source fills the server's total; a new source still gets in, because the
    # oldest connection without a request makes room.
    for _ in range(TOTAL - PER_SOURCE):
        held.append(_connect(bounded, "127.0.0.3"))
    response = _update(bounded, "127.0.0.2", fqdn, secret, "192.0.2.21")
    assert (response.status_code, response.text) == (200, "good 192.0.2.21\n")
    evicted = held[0]
    assert _read_until_closed(evicted) == b""  # closed without an answer: it asked nothing
    answer = bounded.dig(fqdn, "A")
    assert answer.values("A") == ["192.0.2.21"], answer


def test_a_request_head_trickled_byte_by_byte_is_closed_with_408(bounded: Server) -> None:
    fqdn, secret = bounded.new_host("cam")
    sock = _connect(bounded)
    head = f"GET /nic/update?hostname={fqdn}&myip=192.0.2.30 HTTP/1.1\r\nHost: x\r\n"
    head += "X-Padding: " + "a" * 200  # at five bytes a second: longer than any bound
    sent = 0
    with sock:
        # One byte whenever the server has said nothing for a fifth of a second: the
        # attack itself is slow, the test waits on the socket, not on a clock.
        while sent < len(head):
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                break
            try:
                sock.sendall(head[sent].encode())
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert sent < len(head)  # closed before the head was complete
    response = _update(bounded, LOOPBACK, fqdn, secret, "192.0.2.31")
    assert response.text == "good 192.0.2.31\n"  # the trickled update was never applied


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_30_mib_header_is_refused_unbuffered(bounded: Server) -> None:
    assert bounded.process is not None
    before = _rss(bounded.process.pid)
    size = 30 * 1024 * 1024
    chunk = b"a" * 65536
    sent = 0
    sock = _connect(bounded)
    with sock:
        sock.sendall(b"GET /checkip HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            while sent < size:
                sent += sock.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""  # the server's answer was lost to the reset of our unread bytes
    assert sent < size  # the server closed before we finished sending
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer
    assert _rss(bounded.process.pid) - before < 8 * 1024 * 1024


def test_too_many_header_fields_answer_431(bounded: Server) -> None:
    sock = _connect(bounded)
    with sock:
        fields = "".join(f"X-F{n}: v\r\n" for n in range(200))
        sock.sendall(f"GET /checkip HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
        assert _read_until_closed(sock).startswith(b"HTTP/1.1 431 ")


def test_keep_alive_and_pipelined_requests_still_work(bounded: Server) -> None:
    sock = _connect(bounded)
    with sock:
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(request * 3 + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = _read_until_closed(sock)
    assert answer.count(b"HTTP/1.1 200 ") == 4, answer


def test_sources_are_counted_by_address_and_ipv6_prefix() -> None:
    limits = ConnectionLimits(exempt=(ipaddress.ip_network("10.0.0.0/8"),))
    assert limits.source_of("192.0.2.1") == "192.0.2.1"
    assert limits.source_of("10.1.2.3") is None  # a trusted proxy carries many clients
    assert limits.source_of("::ffff:192.0.2.1") == "192.0.2.1"
    one = limits.source_of("2001:db8:0:ff::1")
    assert one == limits.source_of("2001:db8:0:1::2") == "2001:db8::/56"
    assert limits.source_of("2001:db8:0:100::1") != one


def test_a_body_trickled_after_its_head_is_closed_with_408(bounded: Server) -> None:
    sock = _connect(bounded)
    body = b"host=x&password=y&" + b"a" * 200
    with sock:
        sock.sendall(
            b"POST /dvr/update HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        sent = 0
        while sent < len(body):
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                break
            try:
                sock.sendall(body[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert sent < len(body)


def test_a_large_body_sent_with_its_head_in_one_piece_is_read_whole(bounded: Server) -> None:
    fqdn, secret = bounded.new_host("cam")
    # The head and 30 KiB of body arrive together: only the head counts against the
    # head's bound, and the body reaches the endpoint intact.
    body = f"host={fqdn}&password={secret}&ip=192.0.2.40&pad=".encode() + b"a" * 30000
    request = (
        b"POST /dvr/update HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    sock = _connect(bounded)
    with sock:
        sock.sendall(request)
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.rstrip().endswith(b"ACT"), answer
    assert bounded.dig(fqdn, "A").values("A") == ["192.0.2.40"]


def test_a_request_pipelined_behind_a_refused_one_is_not_run(bounded: Server) -> None:
    fqdn, secret = bounded.new_host("cam")
    fields = "".join(f"X-F{n}: v\r\n" for n in range(200))
    update = (
        f"GET /dvr/update?host={fqdn}&password={secret}&ip=192.0.2.50 HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    sock = _connect(bounded)
    with sock:
        sock.sendall(f"GET /checkip HTTP/1.1\r\nHost: x\r\n{fields}\r\n{update}".encode())
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 ") and answer.count(b"HTTP/1.1") == 1, answer
    response = _update(bounded, LOOPBACK, fqdn, secret, "192.0.2.50")
    assert response.text == "good 192.0.2.50\n"  # the pipelined update changed nothing
