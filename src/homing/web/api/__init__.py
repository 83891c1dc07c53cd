"""The REST API under /api/v1, OpenAPI at /api/v1/openapi.json; errors are {code, message, field}.

`create_api` assembles it, one router per resource, in this order (the OpenAPI document's):

- accounts.py   /accounts: sign-up, availability, password resets (no token)
- hosts.py      /zones, /hosts and a host's addresses, secret, history and prefix set-up
- groups.py     /groups and their members
- tokens.py     /tokens
- challenges.py /acme/{name}: a host's ACME challenge values and acme-dns delegation

Every operation that takes a token has the `Authorized` parameter (auth.py); every refusal is
mapped to its answer once, in errors.py.
"""

from __future__ import annotations

from fastapi import FastAPI

from homing.service.context import Homing
from homing.web.api.accounts import account_routes
from homing.web.api.challenges import challenge_routes
from homing.web.api.errors import add_error_handlers, error
from homing.web.api.groups import group_routes
from homing.web.api.hosts import host_routes
from homing.web.api.tokens import token_routes
from homing.web.apidocs import add_docs
from homing.web.clientip import ClientAddress

__all__ = ["create_api", "error"]


def create_api(homing: Homing) -> FastAPI:
    api = FastAPI(
        title="homing API",
        version="1",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    add_docs(api)  # Swagger UI from the package, no CDN
    api.state.homing = homing  # for the bearer token's dependency (auth.py)
    api.state.client_address = ClientAddress(homing.settings.trusted_proxies)
    add_error_handlers(api)
    api.include_router(account_routes(homing))
    api.include_router(host_routes(homing))
    api.include_router(group_routes(homing))
    api.include_router(token_routes(homing))
    api.include_router(challenge_routes(homing))
    return api
