"""The dashboard and a user's hosts: create, look at, set addresses, new secret, unblock,
enable, delete."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from homing.domain.errors import HomingError, NotFound, StoreUnavailable
from homing.service import hostcare, reverse
from homing.service import portal as service
from homing.service.accounts import Account
from homing.service.hosts import Created
from homing.web.portal.pages import (
    ERROR_LABELS,
    ERROR_STATUS,
    MAX_FIELD,
    FieldError,
    Portal,
    form_text,
)
from homing.web.portal.snippets import Snippet, client_settings

log = logging.getLogger(__name__)


class HostPages:
    """The dashboard and /hosts/..., over homing.service.portal and hostcare."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.db = portal.db

    def _snippets(self, request: Request, created: Created) -> list[Snippet]:
        """The settings of the usual clients for a host whose secret is shown now."""
        return client_settings(self.portal.base_url(request), created.name, created.secret)

    async def dashboard(self, request: Request) -> Response:
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        board = await service.dashboard(self.db, account)
        return self.portal.render(request, "dashboard.html", {"board": board})

    async def host_new(self, request: Request) -> Response:
        account = await self.portal.current_account(request)
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
            "snippets": self._snippets(request, created),
        }
        return self.portal.render(request, "host_created.html", context, status_code=201)

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
        return self.portal.render(request, "host_new.html", context, status_code=status_code)

    async def host_availability(self, request: Request) -> Response:
        """JSON for the live check on the create-host form (logged-in users only)."""
        if await self.portal.current_account(request) is None:
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
        account = account or await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        host_id = int(request.path_params["host_id"])
        detail = await hostcare.host_detail(self.db, account, host_id)
        if detail is None:
            return await self.portal.not_found(request)
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
        return self.portal.render(request, "host.html", context, status_code=status_code)

    async def host_address(self, request: Request) -> Response:
        account = await self.portal.current_account(request)
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
                client_ip=self.portal.client_address.of(request),
                group_max_age=self.portal.homing.settings.group_member_max_age,
                allow_local=self.portal.homing.policy.allow_local_addresses,
            )
        except NotFound:
            return await self.portal.not_found(request)
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
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        try:
            created = await hostcare.regenerate_secret(
                self.db, account, int(request.path_params["host_id"])
            )
        except NotFound:
            return await self.portal.not_found(request)
        context = {
            "host": created,
            "heading": f"New secret for {created.name}",
            "snippets": self._snippets(request, created),
        }
        return self.portal.render(request, "host_created.html", context)

    async def host_unblock(self, request: Request) -> Response:
        max_age = self.portal.homing.settings.group_member_max_age
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
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        host_id = int(request.path_params["host_id"])
        try:
            name = await act(account, host_id)
        except NotFound:
            return await self.portal.not_found(request)
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
        found = await self.portal.own_host(request)
        if isinstance(found, Response):
            return found
        account, host = found
        host_id = host.id
        if request.method == "GET":
            return self.portal.render(request, "host_delete.html", {"host": host})
        try:
            name = await service.delete_host(
                self.db,
                account,
                host_id,
                group_max_age=self.portal.homing.settings.group_member_max_age,
            )
        except NotFound:
            return await self.portal.not_found(request)
        except HomingError as exc:
            log.warning("delete host %s: %s", host_id, exc)
            raise StoreUnavailable(str(exc)) from exc
        request.session["flash"] = f"{name} is deleted; its DNS records are gone."
        return RedirectResponse("/dashboard", status_code=303)
