"""The public site and the way into an account: home, pricing, sign-up, login, logout."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from homing.domain.errors import AccountError, StoreUnavailable
from homing.service import accounts, verification
from homing.service import portal as service
from homing.service.throttle import Throttled
from homing.web.portal.pages import (
    ERROR_STATUS,
    INTERNAL_ERROR,
    FieldError,
    Portal,
    form_text,
    retry_after,
)

log = logging.getLogger(__name__)

SIGNUP_FIELDS = ("user_id", "email")
SIGNUP_MAILED = (
    "Almost done: we mailed a link to {email}. Follow it to activate your account, then log in."
)


def signup_errors(
    values: dict[str, str], password: str, confirmation: str
) -> dict[str, FieldError]:
    """Every field's own mistake in a sign-up form, by field (the rules that need no store)."""
    checks: tuple[Callable[[], None], ...] = (
        lambda: accounts.check_user_id(values["user_id"]),
        lambda: accounts.check_email(values["email"]),
        lambda: accounts.check_password(password, None, values["user_id"]),
        lambda: accounts.check_password(password, confirmation, ""),
    )
    errors: dict[str, FieldError] = {}
    for check in checks:
        try:
            check()
        except AccountError as exc:
            errors.setdefault(exc.field or "form", FieldError(exc.code, str(exc)))
    return errors


class AccountPages:
    """Pages anyone may open, and the ones that start and end a session."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.db = portal.db
        homing = portal.homing
        self.signup_mails = verification.SignupMails(
            homing.db, lambda: homing.mailer, lambda: homing.settings.public_url
        )

    async def home(self, request: Request) -> Response:
        plans = await service.list_plans(self.db)
        zones = await service.offered_zones(self.db)
        return self.portal.render(request, "home.html", {"plans": plans, "zones": zones})

    async def pricing(self, request: Request) -> Response:
        plans = await service.list_plans(self.db)
        return self.portal.render(request, "pricing.html", {"plans": plans})

    # -- sign-up ------------------------------------------------------------------

    async def signup(self, request: Request) -> Response:
        if request.method == "GET":
            if await self.portal.current_account(request):
                return RedirectResponse("/dashboard", status_code=303)
            return self._signup_page(request, {})
        form = await request.form()
        values = {name: form_text(form, name).strip() for name in SIGNUP_FIELDS}
        if form_text(form, "action") == "check":
            return await self._signup_check(request, values)
        found = signup_errors(
            values, form_text(form, "password"), form_text(form, "password_confirm")
        )
        if found:  # every mistake at once, before the store is asked
            return self._signup_page(request, values, found, 422)
        try:
            account = await accounts.create_account(
                self.db,
                values["user_id"],
                values["email"],
                form_text(form, "password"),
                form_text(form, "password_confirm"),
                throttle=self.portal.throttle,
                address=self.portal.client_address.of(request),
                unverified=self.portal.homing.settings.signup_verify_email,
            )
        except Throttled as exc:
            error = FieldError("SIGNUP_THROTTLED", "Too many sign-ups from your network.")
            page = self._signup_page(request, values, {"form": error}, 429)
            page.headers.update(retry_after(exc))
            return page
        except AccountError as exc:
            field = exc.field or "form"
            status = ERROR_STATUS.get(exc.code, 422)
            return self._signup_page(
                request, values, {field: FieldError(exc.code, str(exc))}, status_code=status
            )
        except StoreUnavailable as exc:
            log.warning("sign-up: %s", exc)
            return self._signup_page(
                request, values, {"form": FieldError("INTERNAL_ERROR", INTERNAL_ERROR)}, 503
            )
        if account.status == accounts.UNVERIFIED:
            await self.signup_mails.begin(account)
            request.session["flash"] = SIGNUP_MAILED.format(email=account.email)
            return RedirectResponse("/login", status_code=303)
        self.portal.start_session(request, account)
        request.session["flash"] = f"Welcome, {account.user_id}! Create your first host below."
        return RedirectResponse("/dashboard", status_code=303)

    async def _signup_check(self, request: Request, values: dict[str, str]) -> Response:
        """The "Check availability" button without JavaScript: the same page with the answer."""
        try:
            free = await accounts.user_id_available(self.db, values["user_id"])
        except AccountError as exc:
            return self._signup_page(
                request, values, {"user_id": FieldError(exc.code, str(exc))}, 422
            )
        except StoreUnavailable:
            return self._signup_page(
                request, values, {"form": FieldError("INTERNAL_ERROR", INTERNAL_ERROR)}, 503
            )
        if free:
            return self._signup_page(
                request, values, available=f"{values['user_id']} is available."
            )
        error = FieldError("USER_ID_DUPLICATE", "That user ID is already taken.")
        return self._signup_page(request, values, {"user_id": error})

    def _signup_page(
        self,
        request: Request,
        values: dict[str, str],
        errors: dict[str, FieldError] | None = None,
        status_code: int = 200,
        *,
        available: str = "",
    ) -> Response:
        context = {
            "values": {name: values.get(name, "") for name in SIGNUP_FIELDS},
            "errors": errors or {},
            "available": available,
            "min_password": accounts.MIN_PASSWORD,
        }
        return self.portal.render(request, "signup.html", context, status_code=status_code)

    # -- login / logout -----------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            if await self.portal.current_account(request):
                return RedirectResponse("/dashboard", status_code=303)
            return self.portal.render(request, "login.html", {"user_id": "", "error": ""})
        form = await request.form()
        user_id = form_text(form, "user_id").strip()
        password = form_text(form, "password")
        address = self.portal.client_address.of(request)
        try:
            account = await accounts.authenticate(
                self.db, user_id, password, throttle=self.portal.throttle, address=address
            )
        except Throttled as exc:
            minutes = max(1, math.ceil(exc.retry_after / 60))
            error = (
                f"Too many failed logins. For your account's safety, try again in "
                f"{minutes} minute{'s' if minutes != 1 else ''}."
            )
            return self.portal.render(
                request,
                "login.html",
                {"user_id": user_id, "error": error},
                status_code=429,
                headers=retry_after(exc),
            )
        except StoreUnavailable:
            return self.portal.render(
                request, "login.html", {"user_id": user_id, "error": INTERNAL_ERROR}, 503
            )
        if account is None:
            return self.portal.render(
                request,
                "login.html",
                {"user_id": user_id, "error": "Wrong user ID or password."},
                status_code=401,
            )
        self.portal.start_session(request, account)
        return RedirectResponse("/dashboard", status_code=303)

    async def logout(self, request: Request) -> Response:
        if request.method == "GET":
            return self.portal.render(request, "logout.html")
        request.session.clear()
        request.session["flash"] = "You are logged out."
        return RedirectResponse("/", status_code=303)
