"""The API's errors: every refusal is {code, message, field} with the status of its code.

The service's exceptions and Starlette's HTTP errors are mapped here once, by the handlers
`add_error_handlers` installs; endpoints raise `ApiError`, or let a service error through.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route, compile_path

from homing.domain.errors import HomingError, NotFound, StoreUnavailable
from homing.service import portal
from homing.service.throttle import Throttled

# The HTTP status of each stable error code.
STATUS = {
    "USER_ID_DUPLICATE": 409,
    "USER_EMAIL_DUPLICATE": 409,
    "USER_ID_INVALID": 422,
    "USER_EMAIL_INVALID": 422,
    "PASSWORD_MISMATCH": 422,
    "PASSWORD_WEAK": 422,
    "INVALID_REQUEST": 422,
    "INTERNAL_ERROR": 503,
    "BAD_REQUEST": 400,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "UNAUTHORIZED": 401,
    "THROTTLED": 429,
    "TOKEN_SCOPE": 403,
    "HOST_NOT_FOUND": 404,
    "TOKEN_NOT_FOUND": 404,
    "HOST_NAME_DUPLICATE": 409,
    "HOST_NAME_RESERVED": 409,
    "HOST_QUOTA": 409,
    "TOKEN_QUOTA": 409,
    "HOST_BLOCKED": 409,
    "HOST_DISABLED": 409,
    "HOST_LABEL_INVALID": 422,
    "ZONE_INVALID": 422,
    "ADDRESS_INVALID": 422,
    "PREFIX_HOST_INVALID": 422,
    "TOKEN_NAME_INVALID": 422,
    "TOKEN_ACTION_INVALID": 422,
    "TOKEN_HOSTS_INVALID": 422,
    "TOO_SOON": 429,
    "GROUP_NOT_FOUND": 404,
    "GROUP_NAME_DUPLICATE": 409,
    "GROUP_QUOTA": 409,
    "GROUP_NAME_INVALID": 422,
    "GROUP_MEMBER_INVALID": 422,
    "RESET_LINK_INVALID": 410,
    "RESET_THROTTLED": 429,
    "ACME_VALUE_INVALID": 422,
    "ACME_VALUES_FULL": 409,
    "ACME_TOO_OFTEN": 429,
    "ACME_DELEGATED": 409,
    "ACME_DELEGATION_INVALID": 422,
    "ACME_DELEGATION_CONFLICT": 409,
}
HTTP_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
# What a missing object of each kind answers (404).
MISSING = {
    "HOST_NOT_FOUND": "No such host.",
    "GROUP_NOT_FOUND": "No such group.",
    "TOKEN_NOT_FOUND": "No such token.",
}


class ErrorBody(BaseModel):
    code: str = Field(description="Stable error code, e.g. USER_ID_DUPLICATE")
    message: str = Field(description="What went wrong, for people")
    field: str | None = Field(default=None, description="The request field at fault, if one")


class ApiError(HomingError):
    """Refused at the API edge: a stable code, a message, maybe a field and headers."""

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.headers = headers or {}


def error(code: str, message: str, field: str | None = None) -> JSONResponse:
    """The API's answer for one refusal, with its code's status."""
    body = ErrorBody(code=code, message=message, field=field)
    return JSONResponse(body.model_dump(), status_code=STATUS.get(code, 400))


ERROR_TEXT = {
    400: "BAD_REQUEST: the body is not JSON",
    401: "UNAUTHORIZED: no token, or an unknown or revoked one",
    403: "TOKEN_SCOPE: the token's actions or hosts do not cover this",
    404: "HOST_NOT_FOUND, TOKEN_NOT_FOUND or GROUP_NOT_FOUND",
    409: "HOST_NAME_DUPLICATE, HOST_NAME_RESERVED, HOST_QUOTA, TOKEN_QUOTA, HOST_BLOCKED, "
    "HOST_DISABLED, GROUP_NAME_DUPLICATE or GROUP_QUOTA",
    422: "INVALID_REQUEST, or a field refused: HOST_LABEL_INVALID, ZONE_INVALID, "
    "ADDRESS_INVALID, TOKEN_NAME_INVALID, TOKEN_ACTION_INVALID, TOKEN_HOSTS_INVALID, "
    "GROUP_NAME_INVALID, GROUP_MEMBER_INVALID, PREFIX_HOST_INVALID",
    429: "TOO_SOON: the plan's minimum interval between address changes; THROTTLED: too "
    "many failed attempts from this source or for this account (see Retry-After)",
    503: "INTERNAL_ERROR: the store is unavailable; nothing was written",
}
# Any operation that takes a token (or signs up) may meet the throttle: 429 THROTTLED.
THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": ERROR_TEXT[429]}
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of one operation."""
    return {s: {"model": ErrorBody, "description": ERROR_TEXT[s]} for s in statuses}


T = TypeVar("T")


def existing(found: T | None, code: str) -> T:
    """`found`, or the 404 of `code` (one of MISSING) when the account has no such object."""
    if found is None:
        raise ApiError(code, MISSING[code])
    return found


@contextlib.contextmanager
def missing_as(code: str) -> Iterator[None]:
    """The service's NotFound, raised inside, as the 404 of `code` (one of MISSING)."""
    try:
        yield
    except NotFound as exc:
        raise ApiError(code, MISSING[code]) from exc


def add_error_handlers(api: FastAPI) -> None:
    """Map every refusal the API's endpoints meet to its {code, message, field} answer."""

    @api.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            response = error("BAD_REQUEST", "The body is not JSON.")
            response.status_code = 400
            return response
        location = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
        return error(
            "INVALID_REQUEST", str(first.get("msg", "invalid request")), ".".join(location) or None
        )

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "BAD_REQUEST")
        response = error(code, str(exc.detail))
        response.status_code = exc.status_code
        # e.g. Allow on a 405, which RFC 9110 requires
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(api, request))
        return response

    @api.exception_handler(StoreUnavailable)
    async def unavailable(_request: Request, _exc: StoreUnavailable) -> JSONResponse:
        return error("INTERNAL_ERROR", "The service cannot store this right now; please try again.")

    @api.exception_handler(Throttled)
    async def throttled(_request: Request, exc: Throttled) -> JSONResponse:
        response = error("THROTTLED", str(exc))
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return response

    @api.exception_handler(ApiError)
    async def refused(_request: Request, exc: ApiError) -> JSONResponse:
        response = error(exc.code, str(exc), exc.field)
        response.headers.update(exc.headers)
        return response

    @api.exception_handler(portal.PortalError)
    async def portal_refused(_request: Request, exc: portal.PortalError) -> JSONResponse:
        return error(exc.code, str(exc), exc.field)


def _allowed_methods(api: FastAPI, request: Request) -> list[str]:
    # Starlette's 405 names the methods of the first route on the path only; a path
    # served by several routes (GET and POST /hosts) allows them all.
    methods: set[str] = set()
    for route in api.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and isinstance(route, (APIRoute, Route)):
            methods |= route.methods or set()
    # Included routers are not flat routes: their operations are the schema's.
    root = request.scope.get("root_path", "")
    path = request.scope["path"].removeprefix(root) if root else request.scope["path"]
    for template, operations in api.openapi().get("paths", {}).items():
        if compile_path(template)[0].match(path):
            methods |= {m.upper() for m in operations}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
