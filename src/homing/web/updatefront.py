"""The update fast path: GET on the dyndns2 paths answered ahead of the application's router."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from homing.web.updates import CHALLENGE, TEXT

log = logging.getLogger(__name__)

_TEXT = TEXT.encode()
_CHALLENGE = CHALLENGE.encode()


class UpdateFront:
    """GET on `paths` goes straight to `endpoint`, ahead of the app's error and exception
    middleware and its router, whose per-request cost the update path, the busiest one,
    does without (docs/benchmarks.md). The endpoint reads the raw scope and gives a status
    and a text body, sent here without a Request or Response object. Anything else, HEAD
    (405: it must not update) and wrong methods on those paths included, goes to the app,
    whose routes stay the reference.
    """

    def __init__(
        self,
        app: ASGIApp,
        endpoint: Callable[[Scope], Awaitable[tuple[int, str]]],
        paths: tuple[str, ...],
    ) -> None:
        self.app = app
        self.endpoint = endpoint
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        try:
            status, text = await self.endpoint(scope)
        except Exception:  # a bug of ours: answered as the app's error middleware would
            log.exception("update request failed")
            status, text = 500, "Internal Server Error"
        body = text.encode()
        headers = [(b"content-length", b"%d" % len(body)), (b"content-type", _TEXT)]
        if status == 401:
            headers.append((b"www-authenticate", _CHALLENGE))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
