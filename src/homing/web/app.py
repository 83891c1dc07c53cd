"""The HTTP application: every layer a request passes and every path each part answers.

A request meets these in order, outermost first (`create_app`):

1. HttpTimer (metrics.py): times the request for /metrics, by route group.
2. RequestLimits (limits.py): 414 for an overlong URL, 413 for an overlong body.
3. UpdateFront (updatefront.py): GET on DYNDNS2_PATHS, the update fast path, is answered
   here by UpdateEndpoints.dyndns2_answer (updates.py) and goes no further.
4. The router (Starlette), first match wins, in the order of `routes` below:
   the update protocols and /checkip at the root, health and metrics, acme-dns,
   the REST API mounted at /api/v1 (api/), and the portal's pages (portal/).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from homing.service.context import Homing
from homing.web.acmedns import acmedns_routes
from homing.web.api import create_api, error
from homing.web.clientip import ClientAddress
from homing.web.limits import RequestLimits
from homing.web.metrics import HttpTimer, metrics_endpoints
from homing.web.portal import portal_routes
from homing.web.updatefront import UpdateFront
from homing.web.updates import UpdateEndpoints

__all__ = ["DYNDNS2_PATHS", "UpdateFront", "create_app"]

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


def create_app(homing: Homing) -> ASGIApp:
    """The application `homing serve` runs, assembled from the outside in (module docstring)."""
    client = ClientAddress(homing.settings.trusted_proxies)
    endpoints = UpdateEndpoints(homing, client)
    router = Starlette(
        routes=_routes(homing, client, endpoints), exception_handlers={404: not_found}
    )
    fast_path = UpdateFront(router, endpoints.dyndns2_answer, DYNDNS2_PATHS)
    return HttpTimer(RequestLimits(fast_path))


def _routes(homing: Homing, client: ClientAddress, endpoints: UpdateEndpoints) -> list[BaseRoute]:
    metrics, ready = metrics_endpoints(homing, client)
    return [
        # GET never gets here (UpdateFront answers it with the same rules, from the raw
        # scope); these routes give every other method its 405 and keep the router whole.
        *(_update_route(path, endpoints.dyndns2, ["GET"]) for path in DYNDNS2_PATHS),
        _update_route("/dvr/update", endpoints.dvr, ["GET", "POST"]),
        Route("/checkip", endpoints.checkip, methods=["GET"]),
        Route("/myip", endpoints.myip, methods=["GET"]),
        Route("/checkip.json", endpoints.checkip_json, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),  # zones loaded and the store reachable
        Route("/metrics", metrics, methods=["GET"]),  # Prometheus; metrics_allow or its token
        *acmedns_routes(homing),  # acme-dns's POST /register and /update, when its zone is set
        Mount("/api/v1", app=create_api(homing)),  # one router per resource: web/api/
        *portal_routes(homing),  # the web site: its own session, CSRF and header middleware
    ]


def _update_route(
    path: str, endpoint: Callable[[Request], Awaitable[Response]], methods: list[str]
) -> Route:
    """A route whose GET changes state: without the HEAD Starlette adds, which would run the
    same endpoint (a HEAD answers 405 and updates nothing)."""
    route = Route(path, endpoint, methods=methods)
    if route.methods is not None:
        route.methods.discard("HEAD")
    return route


async def health(_request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def not_found(request: Request, _exc: Exception) -> Response:
    # A path no route matches (e.g. one with a newline, which Mount's pattern never spans)
    # still answers in the API's own error format under /api/v1.
    if request.url.path.startswith("/api/v1/"):
        return error("NOT_FOUND", "Not Found")
    return PlainTextResponse("Not Found", status_code=404)
