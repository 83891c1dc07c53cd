"""The ASGI application: update protocols at the root, the REST API under /api/v1, the portal."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from homing.service.context import Homing
from homing.web.acmedns import acmedns_routes
from homing.web.api import create_api, error
from homing.web.clientip import ClientAddress
from homing.web.limits import RequestLimits
from homing.web.metrics import HttpTimer, metrics_endpoints
from homing.web.portal import portal_routes
from homing.web.updates import CHALLENGE, TEXT, UpdateEndpoints

log = logging.getLogger(__name__)

# dyndns2 paths as clients know them from several providers: Dyn's (/nic/update, its
# /v3/update, and its first protocol's /nic/dyndns and /nic/statdns, which ddclient's
# dyndns1 still sends), and the /update other providers document; with a final slash
# too, since a redirect counts as a failure to ddclient.
DYNDNS2_PATHS = (
    "/nic/update",
    "/nic/update/",
    "/v3/update",
    "/update",
    "/update/",
    "/nic/dyndns",
    "/nic/statdns",
)


async def health(_request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def not_found(request: Request, _exc: Exception) -> Response:
    # A path no route matches (e.g. one with a newline, which Mount's pattern never spans)
    # still answers in the API's own error format under /api/v1.
    if request.url.path.startswith("/api/v1/"):
        return error("NOT_FOUND", "Not Found")
    return PlainTextResponse("Not Found", status_code=404)


class UpdateFront:
    """GET on the dyndns2 paths goes straight to its endpoint, ahead of the app's error and
    exception middleware and its router: the update hot path, where those layers cost
    about 65 us of CPU per request (docs/benchmarks.md). The endpoint reads the raw scope
    and gives a status and a text body, sent here without a Request or Response object.
    Anything else, HEAD (405: it must not update) and wrong methods on those paths
    included, goes to the app, whose routes stay the reference.
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


_TEXT = TEXT.encode()
_CHALLENGE = CHALLENGE.encode()


def _update_route(
    path: str, endpoint: Callable[[Request], Awaitable[Response]], methods: list[str]
) -> Route:
    """A route whose GET changes state: without the HEAD Starlette adds, which would run the
    same endpoint (a HEAD answers 405 and updates nothing)."""
    route = Route(path, endpoint, methods=methods)
    if route.methods is not None:
        route.methods.discard("HEAD")
    return route


def create_app(homing: Homing) -> ASGIApp:
    client = ClientAddress(homing.settings.trusted_proxies)
    endpoints = UpdateEndpoints(homing, client)
    metrics, ready = metrics_endpoints(homing, client)
    routes = [
        *(_update_route(path, endpoints.dyndns2, ["GET"]) for path in DYNDNS2_PATHS),
        _update_route("/dvr/update", endpoints.dvr, ["GET", "POST"]),
        Route("/checkip", endpoints.checkip, methods=["GET"]),
        Route("/myip", endpoints.myip, methods=["GET"]),
        Route("/checkip.json", endpoints.checkip_json, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),  # zones loaded and the store reachable
        Route("/metrics", metrics, methods=["GET"]),  # Prometheus; metrics_allow or its token
        *acmedns_routes(homing),  # acme-dns's POST /register and /update, when its zone is set
        Mount("/api/v1", app=create_api(homing)),
        *portal_routes(homing),  # the web site: its own session, CSRF and header middleware
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found})
    return HttpTimer(RequestLimits(UpdateFront(app, endpoints.dyndns2_answer, DYNDNS2_PATHS)))
