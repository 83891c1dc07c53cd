"""CSRF: every state-changing request carries the session's token (form field or header)."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FIELD = "csrf_token"
HEADER = b"x-csrf-token"
SESSION_KEY = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM = "application/x-www-form-urlencoded"


def csrf_token(request: Request) -> str:
    """The session's token, created on first use (templates put it in every form)."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = token
    return token


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _same_origin(scope: Scope) -> bool:
    """A browser's Origin, when sent, must be this site (defence in depth beside the token)."""
    if _header(scope, b"sec-fetch-site") == "cross-site":
        return False
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    host = _header(scope, b"host")
    return origin != "null" and host is not None and urlsplit(origin).netloc == host


class CSRFProtection:
    """Rejects an unsafe request without the session's token; `reject` answers it (403).

    Runs inside the session middleware. The form body is read here and replayed to the app.
    """

    def __init__(self, app: ASGIApp, *, reject: ASGIApp) -> None:
        self.app = app
        self.reject = reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body, more = await _read_body(receive)
        expected = scope.get("session", {}).get(SESSION_KEY)
        provided = _header(scope, HEADER)
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if provided is None and content_type == FORM:
            fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
            provided = next((value for name, value in fields if name == FIELD), None)
        valid = (
            isinstance(expected, str)
            and bool(expected)
            and provided is not None
            and hmac.compare_digest(expected.encode(), provided.encode("latin-1", "replace"))
            and _same_origin(scope)
        )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive() if more else {"type": "http.disconnect"}

        await (self.app if valid else self.reject)(scope, replay, send)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole body (RequestLimits bounds it); `more` is whether the client may still send."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True
