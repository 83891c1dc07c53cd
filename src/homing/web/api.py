"""REST API under /api/v1, OpenAPI at /api/v1/openapi.json; errors are {code, message, field}."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from homing.domain.errors import AccountError, StoreUnavailable
from homing.service import accounts
from homing.service.context import Homing

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


def create_api(homing: Homing) -> FastAPI:
    api = FastAPI(
        title="homing API",
        version="1",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    router = APIRouter()

    @api.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(p) for p in first.get("loc", ()) if p not in ("body", "query")]
        return error(
            "INVALID_REQUEST", str(first.get("msg", "invalid request")), ".".join(location) or None
        )

    @api.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "BAD_REQUEST")
        response = error(code, str(exc.detail))
        response.status_code = exc.status_code
        # e.g. Allow on a 405, which RFC 9110 requires
        response.headers.update(exc.headers or {})
        return response

    @api.exception_handler(StoreUnavailable)
    async def unavailable(_request: Request, _exc: StoreUnavailable) -> JSONResponse:
        return error("INTERNAL_ERROR", "The service cannot store this right now; please try again.")

    @router.post(
        "/accounts",
        status_code=201,
        response_model=AccountOut,
        responses=ERRORS,  # type: ignore[arg-type]
        summary="Sign up",
    )
    async def sign_up(body: SignUp) -> AccountOut | JSONResponse:
        try:
            account = await accounts.create_account(
                homing.db, body.user_id, body.email, body.password, body.password_confirm
            )
        except AccountError as exc:
            return error(exc.code, str(exc), exc.field)
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

    api.include_router(router)
    return api
