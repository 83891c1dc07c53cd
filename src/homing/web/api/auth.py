"""Who may call an operation: the bearer token's grant (a dependency) and its scope check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from homing.service import tokens
from homing.service.context import Homing
from homing.web.api.errors import ApiError

_bearer = HTTPBearer(
    auto_error=False,
    description="A personal API token (hom_…), made on the dashboard's API tokens page",
)


async def _grant_of(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tokens.Grant:
    """The grant of the request's bearer token; 401 without one or with a bad one."""
    if credentials is None:
        raise ApiError(
            "UNAUTHORIZED",
            "Send a personal API token: Authorization: Bearer TOKEN.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    homing: Homing = request.app.state.homing
    address = source_of(request)
    await homing.throttle.check_source(address)  # a source that failed often: 429
    grant = await tokens.authenticate(homing.db, credentials.credentials)
    if grant is None:
        await homing.throttle.failed(homing.throttle.source(address))
        raise ApiError(
            "UNAUTHORIZED",
            "This token is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return grant


def source_of(request: Request) -> str:
    """The caller's address, as the API's trusted proxies let it be known."""
    address: str = request.app.state.client_address.of(request)
    return address


# An operation's parameter of this type takes the bearer token and gives its grant.
Authorized = Annotated[tokens.Grant, Depends(_grant_of)]


def need(grant: tokens.Grant, action: str, host_id: int | None = None) -> None:
    """403 unless the token may do `action` on host `host_id` (None: the whole account)."""
    if not grant.allows(action, host_id):
        what = f"host {host_id}" if host_id is not None else "the whole account"
        raise ApiError("TOKEN_SCOPE", f"This token may not {action} {what}.")
