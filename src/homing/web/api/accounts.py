"""/accounts: sign-up, user ID availability and password resets; no token needed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from homing.domain.errors import AccountError
from homing.service import accounts, resets, verification
from homing.service.context import Homing
from homing.web.api.auth import source_of
from homing.web.api.errors import THROTTLED, ErrorBody, error


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


ERRORS = {
    400: {"model": ErrorBody, "description": "BAD_REQUEST: the body is not JSON"},
    409: {"model": ErrorBody, "description": "USER_ID_DUPLICATE or USER_EMAIL_DUPLICATE"},
    422: {"model": ErrorBody, "description": "Invalid user ID, email, weak or mismatched password"},
    503: {
        "model": ErrorBody,
        "description": "INTERNAL_ERROR: the store is unavailable; nothing was written",
    },
}


def account_routes(homing: Homing) -> APIRouter:
    router = APIRouter(responses=THROTTLED)
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
                address=source_of(request),
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
                source_of(request),
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
                address=source_of(request),
            )
        except AccountError as exc:
            return error(exc.code, str(exc), None if exc.field == "form" else exc.field)
        await homing.throttle.forget_account(accounts.user_key(account.user_id))
        return Response(status_code=204)

    return router
