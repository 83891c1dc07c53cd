"""REST API under /api/v1, OpenAPI at /api/v1/openapi.json; errors are {code, message, field}."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route, compile_path

from homing.domain.errors import (
    AccountError,
    Conflict,
    HomingError,
    InvalidAddress,
    InvalidName,
    NotFound,
    StoreUnavailable,
)
from homing.service import (
    accounts,
    groupcare,
    hostcare,
    portal,
    prefixes,
    resets,
    tokens,
    verification,
)
from homing.service.context import Homing
from homing.service.throttle import Throttled
from homing.web.apidocs import add_docs
from homing.web.clientip import ClientAddress

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
}
HTTP_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


class ErrorBody(BaseModel):
    code: str = Field(description="Stable error code, e.g. USER_ID_DUPLICATE")
    message: str = Field(description="What went wrong, for people")
    field: str | None = Field(default=None, description="The request field at fault, if one")


class SignUp(BaseModel):
    # The rules JSON Schema can state are stated here; the service checks them all again,
    # and also what a schema cannot say (the confirmation matches, the password is not
    # guessable): those answer 422 with their own code.
    user_id: str = Field(
        max_length=64,
        description="3 to 32 letters, digits, dots, dashes or underscores; unique, any case",
        examples=["alice"],
    )
    email: str = Field(
        max_length=254, description="unique, any case", examples=["alice@example.org"]
    )
    password: str = Field(
        max_length=1024, description=f"at least {accounts.MIN_PASSWORD} characters"
    )
    password_confirm: str = Field(max_length=1024, description="the same password again")


class ResetRequest(BaseModel):
    login: str = Field(
        min_length=1,
        max_length=254,
        description="The account's user ID or email address",
        examples=["alice"],
    )


class ResetAccepted(BaseModel):
    message: str = Field(description="The same for every request, known account or not")


class ResetConfirm(BaseModel):
    token: str = Field(
        min_length=1, max_length=128, description="The part of the mailed link after /reset/"
    )
    password: str = Field(
        max_length=1024, description=f"at least {accounts.MIN_PASSWORD} characters"
    )
    password_confirm: str = Field(max_length=1024, description="the same password again")


class AccountOut(BaseModel):
    user_id: str
    email: str


class Availability(BaseModel):
    user_id: str
    available: bool


def error(code: str, message: str, field: str | None = None) -> JSONResponse:
    body = ErrorBody(code=code, message=message, field=field)
    return JSONResponse(body.model_dump(), status_code=STATUS.get(code, 400))


ERRORS = {
    400: {"model": ErrorBody, "description": "BAD_REQUEST: the body is not JSON"},
    409: {"model": ErrorBody, "description": "USER_ID_DUPLICATE or USER_EMAIL_DUPLICATE"},
    422: {"model": ErrorBody, "description": "Invalid user ID, email, weak or mismatched password"},
    503: {
        "model": ErrorBody,
        "description": "INTERNAL_ERROR: the store is unavailable; nothing was written",
    },
}


# -- tokens and hosts -------------------------------------------------------------

DatabaseId = Annotated[int, Field(ge=1, le=2**31 - 1)]
HostId = Annotated[int, Path(ge=1, le=2**31 - 1, description="A host's id, from GET /hosts")]
GroupId = Annotated[int, Path(ge=1, le=2**31 - 1, description="A group's id, from GET /groups")]
TokenId = Annotated[int, Path(ge=1, le=2**31 - 1, description="A token's id, from GET /tokens")]
Action = Literal["read", "update", "manage", "acme"]


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


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, examples=["backup script"])
    actions: list[Action] = Field(
        min_length=1,
        max_length=3,
        description="read: list hosts and history; update: set addresses; "
        "manage: create and delete hosts, new secrets, tokens",
        examples=[["update"]],
    )
    host_ids: list[DatabaseId] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Only these hosts (null or absent: all of the account's hosts)",
    )


class TokenOut(BaseModel):
    id: int
    name: str
    actions: list[str]
    host_ids: list[int] | None = Field(description="null: all of the account's hosts")
    host_names: list[str]
    created_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: tokens.Token) -> TokenOut:
        return cls(
            id=token.id,
            name=token.name,
            actions=list(token.actions),
            host_ids=None if token.host_ids is None else list(token.host_ids),
            host_names=list(token.host_names),
            created_at=token.created_at,
            last_used_at=token.last_used_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself, shown this once; only its SHA-256 is kept")


class DvrStatus(BaseModel):
    code: str = Field(description="ACT, ERR 0x8000800N, or — before the first update")
    meaning: str
    ok: bool | None


class HostOut(BaseModel):
    id: int
    name: str
    zone: str
    addresses: list[str] = Field(description="IPv4 first, then IPv6")
    status: str = Field(description="active, blocked or disabled")
    dvr_status: DvrStatus
    last_update_at: datetime | None
    last_client_ip: str | None
    last_via: str | None
    last_agent: str | None

    @classmethod
    def of(cls, host: portal.HostView) -> HostOut:
        return cls(
            id=host.id,
            name=host.name,
            zone=host.zone,
            addresses=list(host.addresses),
            status=host.status,
            dvr_status=DvrStatus(
                code=host.display.code, meaning=host.display.meaning, ok=host.display.ok
            ),
            last_update_at=host.last_update_at,
            last_client_ip=host.last_client_ip,
            last_via=host.last_via,
            last_agent=host.last_agent,
        )


class HostRef(BaseModel):
    id: int
    name: str


class PrefixIn(BaseModel):
    router: str = Field(
        max_length=255,
        description="Another of your hosts, whose updates carry its IPv6 prefix",
        examples=["router.dyn.example.net"],
    )
    iid: str = Field(
        max_length=64,
        description="The interface id on that prefix, in IPv6 form",
        examples=["::1234:56ff:fe78:9abc"],
    )


class PrefixOut(BaseModel):
    router: str
    iid: str
    address: str | None = Field(description="The AAAA the router's last prefix gives, or null")


class HostIn(BaseModel):
    label: str = Field(max_length=255, description="One label, e.g. cam", examples=["cam"])
    zone: str = Field(max_length=255, description="One of GET /zones", examples=["dyn.example.net"])
    prefix: PrefixIn | None = Field(
        default=None, description="Make it a prefix host: its AAAA follows the router's prefix"
    )


class HostSecret(BaseModel):
    id: int
    name: str
    secret: str = Field(description="The update secret, shown this once")


class AddressIn(BaseModel):
    ipv4: str = Field(default="", max_length=64, description="Empty or absent: no A record")
    ipv6: str = Field(default="", max_length=64, description="Empty or absent: no AAAA record")


class AddressOut(BaseModel):
    name: str
    changed: bool
    addresses: list[str]


class HistoryEntryOut(BaseModel):
    at: datetime | None
    serial: int
    rtype: str
    old: list[str]
    new: list[str]
    actor: str
    via: str
    challenge: bool = Field(
        default=False, description="At the host's _acme-challenge name, not the host's own"
    )


class HistoryOut(BaseModel):
    entries: list[HistoryEntryOut]
    page: int
    has_next: bool


class GroupIn(BaseModel):
    label: str = Field(
        max_length=253,
        description="With a zone: one label. Without: a full name with a dot outside our zones",
        examples=["office"],
    )
    zone: str = Field(
        default="",
        max_length=255,
        description="One of GET /zones to publish the group there; empty: not published",
    )
    members: list[DatabaseId] = Field(default=[], max_length=100, description="Host ids")


class GroupOut(BaseModel):
    id: int
    name: str
    zone: str | None = Field(description="null: not published")
    members: list[HostRef]
    addresses: list[str] = Field(description="What the published name answers now")

    @classmethod
    def of(cls, group: groupcare.GroupView) -> GroupOut:
        return cls(
            id=group.id,
            name=group.name,
            zone=group.zone,
            members=[HostRef(id=m.id, name=m.name) for m in group.members],
            addresses=list(group.addresses),
        )


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


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of one operation."""
    return {s: {"model": ErrorBody, "description": ERROR_TEXT[s]} for s in statuses}


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
    address = request.app.state.client_address.of(request)
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


Authorized = Annotated[tokens.Grant, Depends(_grant_of)]


def create_api(homing: Homing) -> FastAPI:
    api = FastAPI(
        title="homing API",
        version="1",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    add_docs(api)  # Swagger UI from the package, no CDN
    api.state.homing = homing
    # Any operation that takes a token (or signs up) may meet the throttle: 429 THROTTLED.
    router = APIRouter(responses={429: {"model": ErrorBody, "description": ERROR_TEXT[429]}})
    client_address = ClientAddress(homing.settings.trusted_proxies)
    api.state.client_address = client_address

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
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    def allowed_methods(request: Request) -> list[str]:
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

    @api.exception_handler(StoreUnavailable)
    async def unavailable(_request: Request, _exc: StoreUnavailable) -> JSONResponse:
        return error("INTERNAL_ERROR", "The service cannot store this right now; please try again.")

    signup_mails = verification.SignupMails(
        homing.db, lambda: homing.mailer, lambda: homing.settings.public_url
    )

    @router.post(
        "/accounts",
        status_code=201,
        response_model=AccountOut,
        responses=ERRORS,  # type: ignore[arg-type]
        summary="Sign up",
    )
    async def sign_up(body: SignUp, request: Request) -> AccountOut | JSONResponse:
        try:
            account = await accounts.create_account(
                homing.db,
                body.user_id,
                body.email,
                body.password,
                body.password_confirm,
                throttle=homing.throttle,
                address=client_address.of(request),
                unverified=homing.settings.signup_verify_email,
            )
        except AccountError as exc:
            return error(exc.code, str(exc), exc.field)
        if account.status == accounts.UNVERIFIED:
            await signup_mails.begin(account)  # active once the mailed link is followed
        return AccountOut(user_id=account.user_id, email=account.email)

    @router.get(
        "/accounts/availability",
        response_model=Availability,
        responses={422: ERRORS[422], 503: ERRORS[503]},
        summary="Is this user ID free?",
    )
    async def availability(user_id: str) -> Availability | JSONResponse:
        try:
            free = await accounts.user_id_available(homing.db, user_id.strip())
        except AccountError as exc:
            return error(exc.code, str(exc), exc.field)
        return Availability(user_id=user_id, available=free)

    reset_policy = resets.ResetPolicy()
    reset_sender = resets.ResetSender(lambda: homing.mailer, reset_policy)

    @router.post(
        "/accounts/password-reset",
        status_code=202,
        response_model=ResetAccepted,
        responses={
            400: ERRORS[400],
            422: {"model": ErrorBody, "description": "INVALID_REQUEST"},
            429: {
                "model": ErrorBody,
                "description": "RESET_THROTTLED: too many requests from this address",
            },
            503: ERRORS[503],
        },
        summary="Mail a password reset link",
        description="Answers the same whether or not the account exists; the mail, when "
        "there is one, goes to the account's address with a link valid for one hour.",
    )
    async def password_reset(body: ResetRequest, request: Request) -> ResetAccepted | JSONResponse:
        try:
            mail = await resets.request_reset(
                homing.db,
                body.login,
                client_address.of(request),
                policy=reset_policy,
                throttle=homing.throttle,
            )
        except resets.ResetThrottled as exc:
            response = error("RESET_THROTTLED", str(exc))
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
            return response
        if mail is not None:
            reset_sender.send_later(mail, homing.settings.public_url)
        minutes = round(reset_policy.ttl / 60)
        return ResetAccepted(
            message="If an account with that user ID or email exists, a mail with a reset "
            f"link valid for {minutes} minutes is on its way to its address."
        )

    @router.post(
        "/accounts/password-reset/confirm",
        status_code=204,
        responses={
            400: ERRORS[400],
            410: {
                "model": ErrorBody,
                "description": "RESET_LINK_INVALID: used, replaced by a newer one, or expired",
            },
            422: ERRORS[422],
            503: ERRORS[503],
        },
        summary="Set a new password with a mailed token",
        description="Uses the token up, ends the account's portal sessions and clears its "
        "login locks.",
    )
    async def password_reset_confirm(body: ResetConfirm, request: Request) -> Response:
        try:
            account = await resets.reset_password(
                homing.db,
                body.token,
                body.password,
                body.password_confirm,
                throttle=homing.throttle,
                address=client_address.of(request),
            )
        except AccountError as exc:
            return error(exc.code, str(exc), None if exc.field == "form" else exc.field)
        await homing.throttle.forget_account(accounts.user_key(account.user_id))
        return Response(status_code=204)

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

    def need(grant: tokens.Grant, action: str, host_id: int | None = None) -> None:
        if not grant.allows(action, host_id):
            what = f"host {host_id}" if host_id is not None else "the whole account"
            raise ApiError("TOKEN_SCOPE", f"This token may not {action} {what}.")

    def host_not_found() -> ApiError:
        return ApiError("HOST_NOT_FOUND", "No such host.")

    @router.get("/zones", response_model=list[str], responses=errors(503), summary="Zones offered")
    async def list_zones() -> list[str]:
        return await portal.offered_zones(homing.db)

    @router.get(
        "/hosts",
        response_model=list[HostOut],
        responses=errors(401, 403, 503),
        summary="The token's hosts with addresses and DVR status",
    )
    async def list_hosts(grant: Authorized) -> list[HostOut]:
        if "read" not in grant.actions:
            need(grant, "read")
        board = await portal.dashboard(homing.db, grant.account)
        return [HostOut.of(h) for h in board.hosts if grant.allows("read", h.id)]

    @router.post(
        "/hosts",
        status_code=201,
        response_model=HostSecret,
        responses=errors(400, 401, 403, 409, 422, 503),
        summary="Create a host (its secret is shown once)",
    )
    async def create_host(body: HostIn, grant: Authorized) -> HostSecret:
        need(grant, "manage")
        if body.prefix is not None:
            with prefix_refusals():
                await prefixes.check_prefix_host(
                    homing.db, grant.account.user_id, body.prefix.router, body.prefix.iid
                )
        created = await portal.create_host(homing.db, grant.account, body.label, body.zone)
        if body.prefix is not None:
            with prefix_refusals():
                await set_prefix(created.name, body.prefix, grant)
        return HostSecret(id=created.id, name=created.name, secret=created.secret)

    @contextlib.contextmanager
    def prefix_refusals() -> Iterator[None]:
        """A refused prefix set-up as the API's error (the message names the rule)."""
        try:
            yield
        except (InvalidAddress, NotFound, Conflict, InvalidName) as exc:
            raise ApiError("PREFIX_HOST_INVALID", str(exc), "prefix") from exc

    async def set_prefix(name: str, body: PrefixIn, grant: tokens.Grant) -> PrefixOut:
        actor = f"user:{grant.account.user_id}"
        made = await prefixes.set_prefix_host(
            homing.db, name, body.router, body.iid, actor=actor, via="api"
        )
        return PrefixOut(router=made.router, iid=made.iid, address=made.address)

    @router.put(
        "/hosts/{host_id}/prefix",
        response_model=PrefixOut,
        responses=errors(400, 401, 403, 404, 422, 503),
        summary="Make the host a prefix host of another of your hosts (its router)",
    )
    async def put_prefix(host_id: HostId, body: PrefixIn, grant: Authorized) -> PrefixOut:
        need(grant, "manage", host_id)
        host = await portal.get_host(homing.db, grant.account, host_id)
        if host is None:
            raise host_not_found()
        with prefix_refusals():
            return await set_prefix(host.name, body, grant)

    @router.get(
        "/hosts/{host_id}/prefix",
        response_model=PrefixOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="The host's prefix set-up (404 when it follows no prefix)",
    )
    async def get_prefix(host_id: HostId, grant: Authorized) -> PrefixOut:
        need(grant, "read", host_id)
        host = await portal.get_host(homing.db, grant.account, host_id)
        found = None if host is None else await prefixes.prefix_host_of(homing.db, host_id)
        if found is None:
            raise ApiError("NOT_FOUND", "The host follows no prefix.")
        return PrefixOut(router=found.router, iid=found.iid, address=found.address)

    @router.delete(
        "/hosts/{host_id}/prefix",
        status_code=204,
        response_class=Response,
        responses=errors(401, 403, 404, 422, 503),
        summary="The host no longer follows a prefix (its AAAA stays until changed)",
    )
    async def delete_prefix(host_id: HostId, grant: Authorized) -> Response:
        need(grant, "manage", host_id)
        host = await portal.get_host(homing.db, grant.account, host_id)
        if host is None:
            raise host_not_found()
        await prefixes.clear_prefix_host(homing.db, host.name)
        return Response(status_code=204)

    @router.get(
        "/hosts/{host_id}",
        response_model=HostOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="One host",
    )
    async def get_host(host_id: HostId, grant: Authorized) -> HostOut:
        need(grant, "read", host_id)
        host = await portal.get_host(homing.db, grant.account, host_id)
        if host is None:
            raise host_not_found()
        return HostOut.of(host)

    @router.delete(
        "/hosts/{host_id}",
        status_code=204,
        response_class=Response,
        responses=errors(401, 403, 404, 422, 503),
        summary="Delete a host and its records",
    )
    async def delete_host(host_id: HostId, grant: Authorized) -> Response:
        need(grant, "manage", host_id)
        try:
            await portal.delete_host(
                homing.db,
                grant.account,
                host_id,
                group_max_age=homing.settings.group_member_max_age,
            )
        except NotFound as exc:
            raise host_not_found() from exc
        return Response(status_code=204)

    @router.put(
        "/hosts/{host_id}/addresses",
        response_model=AddressOut,
        responses=errors(400, 401, 403, 404, 409, 422, 429, 503),
        summary="Set the host's addresses by hand",
    )
    async def set_addresses(
        host_id: HostId, body: AddressIn, grant: Authorized, request: Request
    ) -> AddressOut:
        need(grant, "update", host_id)
        try:
            result = await hostcare.set_addresses(
                homing.db,
                grant.account,
                host_id,
                body.ipv4,
                body.ipv6,
                client_ip=client_address.of(request),
                group_max_age=homing.settings.group_member_max_age,
                allow_local=homing.policy.allow_local_addresses,
            )
        except NotFound as exc:
            raise host_not_found() from exc
        return AddressOut(
            name=result.name, changed=result.changed, addresses=list(result.addresses)
        )

    @router.post(
        "/hosts/{host_id}/secret",
        response_model=HostSecret,
        responses=errors(401, 403, 404, 422, 503),
        summary="A new update secret (the old one stops working)",
    )
    async def new_secret(host_id: HostId, grant: Authorized) -> HostSecret:
        need(grant, "manage", host_id)
        try:
            created = await hostcare.regenerate_secret(homing.db, grant.account, host_id)
        except NotFound as exc:
            raise host_not_found() from exc
        return HostSecret(id=created.id, name=created.name, secret=created.secret)

    @router.get(
        "/hosts/{host_id}/history",
        response_model=HistoryOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="The host's record changes, newest first",
    )
    async def host_history(
        host_id: HostId,
        grant: Authorized,
        page: Annotated[int, Query(ge=1, le=hostcare.MAX_HISTORY_PAGE)] = 1,
    ) -> HistoryOut:
        need(grant, "read", host_id)
        try:
            found = await hostcare.history(homing.db, grant.account, host_id, page)
        except NotFound as exc:
            raise host_not_found() from exc
        entries = [
            HistoryEntryOut(
                at=e.at,
                serial=e.serial,
                rtype=e.rtype,
                old=list(e.old),
                new=list(e.new),
                actor=e.actor,
                via=e.via,
                challenge=e.challenge,
            )
            for e in found.entries
        ]
        return HistoryOut(entries=entries, page=found.page, has_next=found.has_next)

    def group_not_found() -> ApiError:
        return ApiError("GROUP_NOT_FOUND", "No such group.")

    # Groups span hosts: every group operation needs its action on all of the account's hosts.
    @router.get(
        "/groups",
        response_model=list[GroupOut],
        responses=errors(401, 403, 503),
        summary="The account's groups with members and published addresses",
    )
    async def list_groups(grant: Authorized) -> list[GroupOut]:
        need(grant, "read")
        return [GroupOut.of(g) for g in await groupcare.list_groups(homing.db, grant.account)]

    @router.post(
        "/groups",
        status_code=201,
        response_model=HostSecret,
        responses=errors(400, 401, 403, 409, 422, 503),
        summary="Create a group (its secret is shown once)",
    )
    async def create_group(body: GroupIn, grant: Authorized) -> HostSecret:
        need(grant, "manage")
        created = await groupcare.create_group(
            homing.db,
            grant.account,
            body.label,
            body.zone.strip(),
            body.members,
            group_max_age=homing.settings.group_member_max_age,
        )
        return HostSecret(id=created.id, name=created.name, secret=created.secret)

    @router.put(
        "/groups/{group_id}/members/{host_id}",
        response_model=GroupOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="Add a host to the group",
    )
    async def add_member(group_id: GroupId, host_id: HostId, grant: Authorized) -> GroupOut:
        return await set_member(group_id, host_id, grant, True)

    @router.delete(
        "/groups/{group_id}/members/{host_id}",
        response_model=GroupOut,
        responses=errors(401, 403, 404, 422, 503),
        summary="Remove a host from the group",
    )
    async def remove_member(group_id: GroupId, host_id: HostId, grant: Authorized) -> GroupOut:
        return await set_member(group_id, host_id, grant, False)

    async def set_member(
        group_id: int, host_id: int, grant: tokens.Grant, member: bool
    ) -> GroupOut:
        need(grant, "manage")
        try:
            await groupcare.set_member(
                homing.db,
                grant.account,
                group_id,
                host_id,
                member,
                group_max_age=homing.settings.group_member_max_age,
            )
        except NotFound as exc:
            raise group_not_found() from exc
        group = await groupcare.get_group(homing.db, grant.account, group_id)
        if group is None:
            raise group_not_found()
        return GroupOut.of(group)

    @router.post(
        "/groups/{group_id}/secret",
        response_model=HostSecret,
        responses=errors(401, 403, 404, 422, 503),
        summary="A new group secret (the old one stops working)",
    )
    async def new_group_secret(group_id: GroupId, grant: Authorized) -> HostSecret:
        need(grant, "manage")
        try:
            created = await groupcare.regenerate_secret(homing.db, grant.account, group_id)
        except NotFound as exc:
            raise group_not_found() from exc
        return HostSecret(id=created.id, name=created.name, secret=created.secret)

    @router.delete(
        "/groups/{group_id}",
        status_code=204,
        response_class=Response,
        responses=errors(401, 403, 404, 422, 503),
        summary="Delete a group and its published records",
    )
    async def delete_group(group_id: GroupId, grant: Authorized) -> Response:
        need(grant, "manage")
        try:
            await groupcare.delete_group(homing.db, grant.account, group_id)
        except NotFound as exc:
            raise group_not_found() from exc
        return Response(status_code=204)

    @router.get(
        "/tokens",
        response_model=list[TokenOut],
        responses=errors(401, 403, 503),
        summary="The account's API tokens (never their secrets)",
    )
    async def list_tokens(grant: Authorized) -> list[TokenOut]:
        need(grant, "manage")
        return [TokenOut.of(t) for t in await tokens.list_tokens(homing.db, grant.account)]

    @router.post(
        "/tokens",
        status_code=201,
        response_model=TokenCreated,
        responses=errors(400, 401, 403, 409, 422, 503),
        summary="Create a token no wider than this one (shown once)",
    )
    async def create_token(body: TokenIn, grant: Authorized) -> TokenCreated:
        need(grant, "manage")
        created = await tokens.create_token(
            homing.db, grant.account, body.name, body.actions, body.host_ids, within=grant
        )
        return TokenCreated(**TokenOut.of(created.token).model_dump(), token=created.secret)

    @router.delete(
        "/tokens/{token_id}",
        status_code=204,
        response_class=Response,
        responses=errors(401, 403, 404, 422, 503),
        summary="Revoke a token",
    )
    async def revoke_token(token_id: TokenId, grant: Authorized) -> Response:
        need(grant, "manage")
        try:
            await tokens.revoke_token(homing.db, grant.account, token_id)
        except NotFound as exc:
            raise ApiError("TOKEN_NOT_FOUND", "No such token.") from exc
        return Response(status_code=204)

    api.include_router(router)
    from homing.web.challenges_api import challenge_routes  # it imports this module's edge

    api.include_router(challenge_routes(homing), responses=router.responses)
    return api
