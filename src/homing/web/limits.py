"""Refuse oversized requests before any handler runs (hostile or broken clients)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_TARGET = 4096  # path + query bytes; dyndns2 requests are a few hundred
MAX_BODY = 64 * 1024


class RequestLimits:
    """414 for an overlong URL, 413 for an overlong body; nothing reaches the app."""

    def __init__(
        self, app: ASGIApp, max_target: int = MAX_TARGET, max_body: int = MAX_BODY
    ) -> None:
        if max_target < 64 or max_body < 0:
            raise ValueError("request limits too small to serve any request")
        self.app = app
        self.max_target = max_target
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if target > self.max_target:
            await _plain(send, 414, b"URI too long\n")
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_body):
                await _plain(send, 413, b"request body too large\n")
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await _plain(send, 413, b"request body too large\n")


class BodyTooLarge(Exception):
    """A chunked body went past the limit."""


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
