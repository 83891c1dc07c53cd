"""What every portal page shares: the Portal (rendering, the session's account, the store's
failure page), form fields and how an error code reads next to its field."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from homing.domain.errors import StoreUnavailable
from homing.service import portal as service
from homing.service.accounts import Account
from homing.service.context import Homing
from homing.service.throttle import Throttled
from homing.web.clientip import ClientAddress
from homing.web.portal import csrf
from homing.web.portal.sessions import is_https, trusted_networks
from homing.web.portal.templating import make_templates

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

# How each stable error code reads next to its field: a heading in words, then a sentence.
ERROR_LABELS = {
    "USER_ID_DUPLICATE": "User ID taken",
    "USER_EMAIL_DUPLICATE": "Email address already used",
    "USER_ID_INVALID": "User ID not allowed",
    "USER_EMAIL_INVALID": "Not an email address",
    "PASSWORD_MISMATCH": "Passwords differ",
    "PASSWORD_WEAK": "Password too weak",
    "HOST_LABEL_INVALID": "Host name not allowed",
    "HOST_NAME_DUPLICATE": "Host name taken",
    "HOST_NAME_RESERVED": "Host name reserved",
    "HOST_QUOTA": "Host limit reached",
    "ZONE_INVALID": "Zone not accepted",
    "ADDRESS_INVALID": "Address not accepted",
    "TOO_SOON": "Too soon",
    "HOST_BLOCKED": "Host blocked",
    "HOST_DISABLED": "Host disabled",
    "HOST_NOT_BLOCKED": "Host not blocked",
    "UNBLOCK_NOT_ALLOWED": "Unblocking not allowed",
    "UNBLOCK_TOO_SOON": "Unblocked too recently",
    "HOST_NOT_INACTIVE": "Nothing to enable",
    "RESET_LINK_INVALID": "Link no longer valid",
    "RESET_THROTTLED": "Too many requests",
    "SIGNUP_THROTTLED": "Too many sign-ups",
    "LOGIN_MISSING": "User ID or email missing",
}
ERROR_HINTS = {
    "USER_ID_DUPLICATE": "Someone already signed up with that user ID; choose another one.",
    "USER_EMAIL_DUPLICATE": (
        "An account with that email address exists already. Log in instead, or use another address."
    ),
}
ERROR_STATUS = {
    "USER_ID_DUPLICATE": 409,
    "USER_EMAIL_DUPLICATE": 409,
    "HOST_NAME_DUPLICATE": 409,
    "HOST_NAME_RESERVED": 409,
    "HOST_BLOCKED": 409,
    "HOST_DISABLED": 409,
    "HOST_NOT_BLOCKED": 409,
    "UNBLOCK_NOT_ALLOWED": 403,
    "UNBLOCK_TOO_SOON": 429,
    "TOO_SOON": 429,
}
INTERNAL_ERROR = (
    "Nothing saved: the service cannot store this right now, so nothing was saved. "
    "Please try again in a moment."
)
MAX_FIELD = 1024


class FieldError:
    """One message shown next to a form field (or above the form when `field` is "form")."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.label = ERROR_LABELS.get(code, code.replace("_", " ").capitalize())
        self.message = ERROR_HINTS.get(code, message)

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"


def retry_after(exc: Throttled) -> dict[str, str]:
    """The Retry-After header of a throttled answer, in whole seconds."""
    return {"Retry-After": str(math.ceil(exc.retry_after))}


def form_text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value[:MAX_FIELD] if isinstance(value, str) else ""


class Portal:
    """Page handlers over one Homing; its throttle counts failures in the store."""

    def __init__(self, homing: Homing) -> None:
        self.homing = homing
        self.db = homing.db
        self.client_address = ClientAddress(homing.settings.trusted_proxies)
        self.trusted = trusted_networks(homing.settings.trusted_proxies)
        self.throttle = homing.throttle
        self.templates = make_templates()

    # -- plumbing ---------------------------------------------------------------

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return self.templates.TemplateResponse(
            request, name, context or {}, status_code=status_code, headers=headers
        )

    def guard(self, endpoint: Endpoint) -> Endpoint:
        """A dead store becomes the internal-error page, never a traceback."""

        async def guarded(request: Request) -> Response:
            try:
                return await endpoint(request)
            except StoreUnavailable as exc:
                log.warning("portal: %s", exc)
                return self.render(request, "error.html", _error_page(503), status_code=503)

        return guarded

    async def csrf_rejected(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = self.render(request, "error.html", _error_page(403), status_code=403)
        await response(scope, receive, send)

    async def not_found(self, request: Request) -> Response:
        return self.render(request, "error.html", _error_page(404), status_code=404)

    async def current_account(self, request: Request) -> Account | None:
        uid = request.session.get("uid")
        if not isinstance(uid, int):
            return None
        account = await service.account_by_id(self.db, uid)
        # A password reset raised the epoch: sessions made before it end here.
        stale = request.session.get("epoch", 0) != account.session_epoch if account else True
        if account is None or account.status != "active" or stale:
            request.session.clear()
            return None
        return account

    async def own_host(self, request: Request) -> tuple[Account, service.HostView] | Response:
        """The session's account and its host of the path's host_id; or, without them, the
        answer instead: the login page, or 404 for a host of no account or of another."""
        account = await self.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        host = await service.get_host(self.db, account, int(request.path_params["host_id"]))
        if host is None:
            return await self.not_found(request)
        return account, host

    def start_session(self, request: Request, account: Account) -> None:
        # A fresh session (and CSRF token) at login: nothing from before carries over.
        request.session.clear()
        request.session["uid"] = account.id
        request.session["user"] = account.user_id
        request.session["admin"] = account.role == "admin"  # the nav link only; pages re-check
        request.session["epoch"] = account.session_epoch
        csrf.csrf_token(request)

    def base_url(self, request: Request) -> str:
        scheme = "https" if is_https(request.scope, self.trusted) else request.url.scheme
        return f"{scheme}://{request.url.netloc}"


def _error_page(status: int) -> dict[str, Any]:
    pages = {
        403: (
            "This form has expired",
            "The page was open too long or came from another site. Go back, reload the "
            "page and send the form again.",
        ),
        404: ("Page not found", "There is nothing here. The host may have been deleted."),
        503: ("Internal error", INTERNAL_ERROR),
    }
    title, message = pages[status]
    return {"status": status, "title": title, "message": message}
