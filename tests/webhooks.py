"""A real HTTP server on loopback (stdlib http.server) that receives webhooks for the tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the server got, in order; `answer` sets the next replies (status, headers)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None  # set: answer only once it is set (a slow server)
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _taken: int = 0

    def record(self, request: Received) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    def _wait(self, timeout: float) -> Received:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.requests) > self._taken, timeout):
                raise AssertionError(f"no webhook arrived within {timeout}s")
            self._taken += 1
            return self.requests[self._taken - 1]

    async def next(self, within: float = 10.0) -> Received:
        """The next request not yet taken, waiting for the server to receive it."""
        return await asyncio.to_thread(self._wait, within)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            receiver.record(
                Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            if receiver.hold is not None:
                receiver.hold.wait(30)
            self.send_response(receiver.status)
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET = do_PUT = _any

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # the test reads `requests`, not stderr

    return Handler


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 with a free port; stopped (and its thread joined) after."""
    receiver = Receiver("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
