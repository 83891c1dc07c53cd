"""The ASGI application: update protocols at the root, the REST API under /api/v1, the portal."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from homing.service.context import Homing
from homing.web.api import create_api, error
from homing.web.clientip import ClientAddress
from homing.web.limits import RequestLimits
from homing.web.portal import portal_routes
from homing.web.updates import UpdateEndpoints


async def health(_request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def not_found(request: Request, _exc: Exception) -> Response:
    # A path no route matches (e.g. one with a newline, which Mount's pattern never spans)
    # still answers in the API's own error format under /api/v1.
    if request.url.path.startswith("/api/v1/"):
        return error("NOT_FOUND", "Not Found")
    return PlainTextResponse("Not Found", status_code=404)


def create_app(homing: Homing) -> Starlette:
    endpoints = UpdateEndpoints(homing, ClientAddress(homing.settings.trusted_proxies))
    routes = [
        # dyndns2 paths as clients know them from several providers
        Route("/nic/update", endpoints.dyndns2, methods=["GET"]),
        Route("/v3/update", endpoints.dyndns2, methods=["GET"]),
        Route("/update", endpoints.dyndns2, methods=["GET"]),
        Route("/dvr/update", endpoints.dvr, methods=["GET", "POST"]),
        Route("/checkip", endpoints.checkip, methods=["GET"]),
        Route("/checkip.json", endpoints.checkip_json, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        Mount("/api/v1", app=create_api(homing)),
        *portal_routes(homing),  # the web site: its own session, CSRF and header middleware
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestLimits)],
        exception_handlers={404: not_found},
    )
