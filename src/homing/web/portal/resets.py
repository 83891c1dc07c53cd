"""Forgot password: ask for a link by user ID or email, then set a new password through it."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from homing.domain.errors import AccountError
from homing.service import accounts, resets
from homing.service.throttle import Throttled
from homing.web.portal.pages import FieldError, Portal, form_text, retry_after

SENT = (
    "If an account with that user ID or email exists, a mail with a link to choose a new "
    "password is on its way to the account's address. The link works once, within {minutes} "
    "minutes. Nothing arrived? Look in the spam folder, or ask again in a few minutes."
)


class ResetPages:
    """/forgot and /reset/TOKEN."""

    def __init__(self, portal: Portal, policy: resets.ResetPolicy | None = None) -> None:
        self.portal = portal
        self.db = portal.db
        self.policy = policy or resets.ResetPolicy()
        self.sender = resets.ResetSender(lambda: portal.homing.mailer, self.policy)

    async def forgot(self, request: Request) -> Response:
        if request.method == "GET":
            return self._forgot_page(request, "", {})
        form = await request.form()
        login = form_text(form, "login").strip()
        if not login:
            error = FieldError("LOGIN_MISSING", "Enter your user ID or your email address.")
            return self._forgot_page(request, login, {"login": error}, 422)
        address = self.portal.client_address.of(request)
        try:
            mail = await resets.request_reset(
                self.db, login, address, policy=self.policy, throttle=self.portal.throttle
            )
        except resets.ResetThrottled as exc:
            minutes = max(1, math.ceil(exc.retry_after / 60))
            error = FieldError(
                "RESET_THROTTLED",
                f"Too many reset requests from your address; try again in {minutes} minutes.",
            )
            retry = {"Retry-After": str(math.ceil(exc.retry_after))}
            return self._forgot_page(request, login, {"form": error}, 429, headers=retry)
        if mail is not None:
            self.sender.send_later(mail, self.portal.homing.settings.public_url)
        sent = SENT.format(minutes=round(self.policy.ttl / 60))
        return self._forgot_page(request, "", {}, sent=sent)

    def _forgot_page(
        self,
        request: Request,
        login: str,
        errors: dict[str, FieldError],
        status: int = 200,
        *,
        sent: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response:
        context = {"login": login, "errors": errors, "sent": sent}
        return self.portal.render(
            request, "forgot.html", context, status_code=status, headers=headers
        )

    async def reset(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        throttle = self.portal.throttle
        address = self.portal.client_address.of(request)
        revoke = True  # the form's default: a reset also ends the account's API tokens
        try:
            if request.method == "GET":
                account = await resets.account_for_token(
                    self.db, token, throttle=throttle, address=address
                )
                if account is None:
                    return self._invalid(request)
                return self._form(request, account.user_id, {})
            form = await request.form()
            revoke = form_text(form, "revoke_tokens") == "on"
            account = await resets.reset_password(
                self.db,
                token,
                form_text(form, "password"),
                form_text(form, "password_confirm"),
                throttle=throttle,
                address=address,
                revoke_tokens=revoke,
            )
        except Throttled as exc:
            error = FieldError("RESET_THROTTLED", "Too many failed attempts from your address.")
            return self._forgot_page(request, "", {"form": error}, 429, headers=retry_after(exc))
        except AccountError as exc:
            if exc.code == "RESET_LINK_INVALID":
                return self._invalid(request)
            found = await resets.account_for_token(self.db, token)  # checked just now
            if found is None:
                return self._invalid(request)
            error = FieldError(exc.code, str(exc))
            return self._form(
                request, found.user_id, {exc.field or "form": error}, 422, revoke=revoke
            )
        await self.portal.throttle.forget_account(accounts.user_key(account.user_id))
        request.session.clear()
        request.session["flash"] = "Your password is changed. Log in with the new one."
        return RedirectResponse("/login", status_code=303)

    def _form(
        self,
        request: Request,
        user_id: str,
        errors: dict[str, FieldError],
        status: int = 200,
        *,
        revoke: bool = True,
    ) -> Response:
        context = {
            "user_id": user_id,
            "errors": errors,
            "min_password": accounts.MIN_PASSWORD,
            "revoke_tokens": revoke,
        }
        return self.portal.render(request, "reset.html", context, status_code=status)

    def _invalid(self, request: Request) -> Response:
        error = FieldError("RESET_LINK_INVALID", resets.LINK_INVALID)
        return self._forgot_page(request, "", {"form": error}, 410)
