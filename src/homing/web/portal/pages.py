"""The portal's pages: public site, sign-up, login, dashboard, host creation and deletion."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from homing.domain.errors import AccountError, HomingError, NotFound, StoreUnavailable
from homing.service import accounts, hostcare, reverse, verification
from homing.service import portal as service
from homing.service.accounts import Account
from homing.service.context import Homing
from homing.service.throttle import Throttled
from homing.web.clientip import ClientAddress
from homing.web.portal import csrf
from homing.web.portal.sessions import is_https, trusted_networks
from homing.web.portal.snippets import client_settings
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
SIGNUP_FIELDS = ("user_id", "email")
SIGNUP_MAILED = (
    "Almost done: we mailed a link to {email}. Follow it to activate your account, then log in."
)
MAX_FIELD = 1024


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
        self.signup_mails = verification.SignupMails(
            homing.db, lambda: homing.mailer, lambda: homing.settings.public_url
        )

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

    def _start_session(self, request: Request, account: Account) -> None:
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

    # -- public pages -------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        plans = await service.list_plans(self.db)
        zones = await service.offered_zones(self.db)
        return self.render(request, "home.html", {"plans": plans, "zones": zones})

    async def pricing(self, request: Request) -> Response:
        plans = await service.list_plans(self.db)
        return self.render(request, "pricing.html", {"plans": plans})

    # -- sign-up ------------------------------------------------------------------

    async def signup(self, request: Request) -> Response:
        if request.method == "GET":
            if await self.current_account(request):
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
                throttle=self.throttle,
                address=self.client_address.of(request),
                unverified=self.homing.settings.signup_verify_email,
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
        self._start_session(request, account)
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
        return self.render(request, "signup.html", context, status_code=status_code)

    # -- login / logout -----------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            if await self.current_account(request):
                return RedirectResponse("/dashboard", status_code=303)
            return self.render(request, "login.html", {"user_id": "", "error": ""})
        form = await request.form()
        user_id = form_text(form, "user_id").strip()
        password = form_text(form, "password")
        address = self.client_address.of(request)
        try:
            account = await accounts.authenticate(
                self.db, user_id, password, throttle=self.throttle, address=address
            )
        except Throttled as exc:
            minutes = max(1, math.ceil(exc.retry_after / 60))
            error = (
                f"Too many failed logins. For your account's safety, try again in "
                f"{minutes} minute{'s' if minutes != 1 else ''}."
            )
            return self.render(
                request,
                "login.html",
                {"user_id": user_id, "error": error},
                status_code=429,
                headers=retry_after(exc),
            )
        except StoreUnavailable:
            return self.render(
                request, "login.html", {"user_id": user_id, "error": INTERNAL_ERROR}, 503
            )
        if account is None:
            return self.render(
                request,
                "login.html",
                {"user_id": user_id, "error": "Wrong user ID or password."},
                status_code=401,
            )
        self._start_session(request, account)
        return RedirectResponse("/dashboard", status_code=303)

    async def logout(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "logout.html")
        request.session.clear()
        request.session["flash"] = "You are logged out."
        return RedirectResponse("/", status_code=303)

    # -- dashboard and hosts --------------------------------------------------------

    async def dashboard(self, request: Request) -> Response:
        account = await self.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        board = await service.dashboard(self.db, account)
        return self.render(request, "dashboard.html", {"board": board})

    async def host_new(self, request: Request) -> Response:
        account = await self.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        if request.method == "GET":
            return await self._host_form(request, account, {"label": "", "zone": ""})
        form = await request.form()
        values = {
            "label": form_text(form, "label").strip(),
            "zone": form_text(form, "zone").strip(),
        }
        try:
            if form_text(form, "action") == "check":
                found = await service.host_name_available(self.db, values["label"], values["zone"])
                if found.available:
                    return await self._host_form(request, account, values, available=found.message)
                raise service.PortalError("HOST_NAME_DUPLICATE", found.message, "label")
            created = await service.create_host(self.db, account, values["label"], values["zone"])
        except service.PortalError as exc:
            error = FieldError(exc.code, str(exc))
            status = ERROR_STATUS.get(exc.code, 422)
            return await self._host_form(
                request, account, values, {exc.field or "form": error}, status
            )
        context = {
            "host": created,
            "snippets": client_settings(self.base_url(request), created.name, created.secret),
        }
        return self.render(request, "host_created.html", context, status_code=201)

    async def _host_form(
        self,
        request: Request,
        account: Account,
        values: dict[str, str],
        errors: dict[str, FieldError] | None = None,
        status_code: int = 200,
        *,
        available: str = "",
    ) -> Response:
        board = await service.dashboard(self.db, account)
        zones = await service.offered_zones(self.db)
        context = {
            "board": board,
            "zones": zones,
            "values": values,
            "errors": errors or {},
            "available": available,
        }
        return self.render(request, "host_new.html", context, status_code=status_code)

    async def host_availability(self, request: Request) -> Response:
        """JSON for the live check on the create-host form (logged-in users only)."""
        if await self.current_account(request) is None:
            return JSONResponse({"code": "LOGIN_REQUIRED", "message": "Log in first."}, 401)
        label = request.query_params.get("label", "")[:MAX_FIELD]
        zone = request.query_params.get("zone", "")[:MAX_FIELD]
        try:
            found = await service.host_name_available(self.db, label, zone)
        except service.PortalError as exc:
            label_text = ERROR_LABELS.get(exc.code, exc.code)
            return JSONResponse(
                {"available": False, "code": exc.code, "message": f"{label_text}: {exc}"}
            )
        message = found.message
        if not found.available:
            message = f"{ERROR_LABELS['HOST_NAME_DUPLICATE']}: {message}"
        return JSONResponse({"name": found.name, "available": found.available, "message": message})

    async def host_page(
        self,
        request: Request,
        account: Account | None = None,
        *,
        values: dict[str, str] | None = None,
        errors: dict[str, FieldError] | None = None,
        status_code: int = 200,
    ) -> Response:
        """One host: its state, the address form, a new secret, unblocking, its history."""
        account = account or await self.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        host_id = int(request.path_params["host_id"])
        detail = await hostcare.host_detail(self.db, account, host_id)
        if detail is None:
            return await self.not_found(request)
        text = request.query_params.get("page", "1")
        page = int(text) if text.isdigit() and len(text) < 6 else 1
        history = await hostcare.history(self.db, account, host_id, page)
        if values is None:
            ipv4 = next((a for a in detail.host.addresses if ":" not in a), "")
            ipv6 = next((a for a in detail.host.addresses if ":" in a), "")
            values = {"ipv4": ipv4, "ipv6": ipv6}
        ptrs = await reverse.host_ptrs(self.db, detail.host.name, detail.host.addresses)
        context = {
            "detail": detail,
            "host": detail.host,
            "ptrs": ptrs,
            "history": history,
            "values": values,
            "errors": errors or {},
        }
        return self.render(request, "host.html", context, status_code=status_code)

    async def host_address(self, request: Request) -> Response:
        account = await self.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        host_id = int(request.path_params["host_id"])
        form = await request.form()
        values = {"ipv4": form_text(form, "ipv4").strip(), "ipv6": form_text(form, "ipv6").strip()}
        try:
            result = await hostcare.set_addresses(
                self.db,
                account,
                host_id,
                values["ipv4"],
                values["ipv6"],
                client_ip=self.client_address.of(request),
                group_max_age=self.homing.settings.group_member_max_age,
                allow_local=self.homing.policy.allow_local_addresses,
            )
        except NotFound:
            return await self.not_found(request)
        except service.PortalError as exc:
            return await self.host_page(
                request,
                account,
                values=values,
                errors={exc.field or "address": FieldError(exc.code, str(exc))},
                status_code=ERROR_STATUS.get(exc.code, 422),
            )
        shown = ", ".join(result.addresses) or "no address"
        if result.changed:
            message = f"{result.name} now points to {shown}."
        else:
            message = f"{result.name} already pointed to {shown}; nothing changed."
        request.session["flash"] = message
        return RedirectResponse(f"/hosts/{host_id}", status_code=303)

    async def host_secret(self, request: Request) -> Response:
        """A new update secret, shown once with fresh settings (the old one stops working)."""
        account = await self.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        try:
            created = await hostcare.regenerate_secret(
                self.db, account, int(request.path_params["host_id"])
            )
        except NotFound:
            return await self.not_found(request)
        context = {
            "host": created,
            "heading": f"New secret for {created.name}",
            "snippets": client_settings(self.base_url(request), created.name, created.secret),
        }
        return self.render(request, "host_created.html", context)

    async def host_unblock(self, request: Request) -> Response:
        max_age = self.homing.settings.group_member_max_age
        return await self._host_action(
            request,
            lambda account, host_id: hostcare.unblock_own_host(
                self.db, account, host_id, group_max_age=max_age
            ),
            error_key="unblock",
            status_of=lambda code: ERROR_STATUS.get(code, 422),
            flash="{name} is unblocked; its device's updates count again.",
        )

    async def host_enable(self, request: Request) -> Response:
        """Take back a host the inactivity policy disabled."""
        return await self._host_action(
            request,
            lambda account, host_id: hostcare.enable_inactive_host(self.db, account, host_id),
            error_key="form",
            status_of=lambda _code: 409,
            flash="{name} is active again; its device's next update publishes it.",
        )

    async def _host_action(
        self,
        request: Request,
        act: Callable[[Account, int], Awaitable[str]],
        *,
        error_key: str,
        status_of: Callable[[str], int],
        flash: str,
    ) -> Response:
        """A button on a host's page: `act` changes the host and returns its name; then the
        page again with `flash`, or with the refusal under `error_key`."""
        account = await self.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        host_id = int(request.path_params["host_id"])
        try:
            name = await act(account, host_id)
        except NotFound:
            return await self.not_found(request)
        except service.PortalError as exc:
            return await self.host_page(
                request,
                account,
                errors={error_key: FieldError(exc.code, str(exc))},
                status_code=status_of(exc.code),
            )
        request.session["flash"] = flash.format(name=name)
        return RedirectResponse(f"/hosts/{host_id}", status_code=303)

    async def host_delete(self, request: Request) -> Response:
        account = await self.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        host_id = int(request.path_params["host_id"])
        host = await service.get_host(self.db, account, host_id)
        if host is None:
            return await self.not_found(request)
        if request.method == "GET":
            return self.render(request, "host_delete.html", {"host": host})
        try:
            name = await service.delete_host(
                self.db,
                account,
                host_id,
                group_max_age=self.homing.settings.group_member_max_age,
            )
        except NotFound:
            return await self.not_found(request)
        except HomingError as exc:
            log.warning("delete host %s: %s", host_id, exc)
            raise StoreUnavailable(str(exc)) from exc
        request.session["flash"] = f"{name} is deleted; its DNS records are gone."
        return RedirectResponse("/dashboard", status_code=303)


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
