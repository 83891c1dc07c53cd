"""The acme-dns compatible API at the root of the HTTP port (when acme_dns_zone is set):
POST /register, POST /update, GET /health, with acme-dns's answers, so its clients (lego's
and certbot-dns-multi's acme-dns provider, acme.sh's dns_acmedns, Caddy and Traefik) work
unchanged."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from homing.domain.windows import parse_windows
from homing.service import acmedns
from homing.service.context import Homing
from homing.service.throttle import Throttled
from homing.web.clientip import ClientAddress

MAX_BODY = 4096  # a registration's or update's JSON; anything longer is not one


def _error(status: int, word: str) -> JSONResponse:
    return JSONResponse({"error": word}, status_code=status)


async def _json_object(request: Request, *, empty_ok: bool) -> dict[str, Any]:
    """The body's JSON object with its keys in lower case (acme-dns's decoder matches keys in
    any letter case); AcmeDnsError for anything else."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise acmedns.AcmeDnsError(400, "malformed_json_payload")
    if not body.strip() and empty_ok:
        return {}
    try:
        found = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise acmedns.AcmeDnsError(400, "malformed_json_payload") from exc
    if found is None and empty_ok:
        return {}  # what lego's client sends for a registration without allowfrom
    if not isinstance(found, dict):
        raise acmedns.AcmeDnsError(400, "malformed_json_payload")
    return {str(k).lower(): v for k, v in found.items()}


def acmedns_routes(homing: Homing) -> list[Route]:
    """The routes, or none when the operator has not chosen an acme-dns zone."""
    zone = homing.settings.acme_dns_zone
    if not zone:
        return []
    zone = zone.lower().rstrip(".")
    client_address = ClientAddress(homing.settings.trusted_proxies)
    windows = parse_windows(homing.settings.throttle_acme_dns_register)

    async def register(request: Request) -> Response:
        address = client_address.of(request)
        try:
            body = await _json_object(request, empty_ok=True)
            allowfrom = acmedns.parse_allowfrom(body.get("allowfrom"))
            made = await acmedns.register(
                homing.db,
                zone,
                allowfrom,
                throttle=homing.throttle,
                address=address,
                windows=windows,
            )
        except acmedns.AcmeDnsError as exc:
            return _error(exc.status, exc.word)
        except Throttled as exc:
            response = _error(429, "too_many_registrations")
            response.headers["Retry-After"] = str(math.ceil(exc.retry_after))
            return response
        return JSONResponse(
            {
                "username": made.username,
                "password": made.password,
                "fulldomain": made.fulldomain,
                "subdomain": made.subdomain,
                "allowfrom": list(made.allowfrom),
            },
            status_code=201,
        )

    async def update(request: Request) -> Response:
        address = client_address.of(request)
        user = request.headers.get("x-api-user", "")
        key = request.headers.get("x-api-key", "")
        try:
            body = await _json_object(request, empty_ok=False)
            subdomain, txt = body.get("subdomain"), body.get("txt")
            if not isinstance(subdomain, str) or not isinstance(txt, str):
                return _error(400, "bad_subdomain" if not isinstance(subdomain, str) else "bad_txt")
            value = await acmedns.update(
                homing.db,
                zone,
                user,
                key,
                subdomain,
                txt,
                throttle=homing.throttle,
                address=address,
            )
        except acmedns.AcmeDnsError as exc:
            return _error(exc.status, exc.word)
        return JSONResponse({"txt": value})

    async def health(_request: Request) -> Response:
        return PlainTextResponse("")

    return [
        Route("/register", register, methods=["POST"]),
        Route("/update", update, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
