"""The API tokens page under the dashboard: list, create (shown once), revoke."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from homing.domain.errors import NotFound
from homing.service import portal as service
from homing.service import tokens
from homing.service.accounts import Account
from homing.web.portal.pages import FieldError, Portal, form_text

TOKEN_LABELS = {
    "TOKEN_NAME_INVALID": "Token name not allowed",
    "TOKEN_ACTION_INVALID": "Actions not allowed",
    "TOKEN_HOSTS_INVALID": "Hosts not allowed",
    "TOKEN_QUOTA": "Token limit reached",
}


class TokenPages:
    """Personal API tokens in the portal, over the same service as the API."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.db = portal.db

    async def tokens(self, request: Request) -> Response:
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        if request.method == "GET":
            return await self._page(request, account, {"name": "", "scope": "all"}, set())
        form = await request.form()
        values = {"name": form_text(form, "name"), "scope": form_text(form, "scope") or "all"}
        actions = [a for a in form.getlist("actions") if isinstance(a, str)]
        chosen: list[int] = []
        for text in form.getlist("host_ids"):
            if isinstance(text, str) and text.isdigit() and len(text) < 10:
                chosen.append(int(text))
        host_ids = None if values["scope"] == "all" else chosen
        try:
            if host_ids is not None and not host_ids:
                raise service.PortalError(
                    "TOKEN_HOSTS_INVALID", "Choose at least one host, or all hosts.", "host_ids"
                )
            created = await tokens.create_token(self.db, account, values["name"], actions, host_ids)
        except service.PortalError as exc:
            error = FieldError(exc.code, str(exc))
            error.label = TOKEN_LABELS.get(exc.code, error.label)
            return await self._page(
                request, account, values, set(actions), set(chosen), {exc.field or "form": error}
            )
        context = {"created": created, "base": self.portal.base_url(request)}
        return self.portal.render(request, "token_created.html", context, status_code=201)

    async def _page(
        self,
        request: Request,
        account: Account,
        values: dict[str, str],
        actions: set[str],
        host_ids: set[int] | None = None,
        errors: dict[str, FieldError] | None = None,
    ) -> Response:
        board = await service.dashboard(self.db, account)
        context = {
            "tokens": await tokens.list_tokens(self.db, account),
            "hosts": board.hosts,
            "values": values,
            "actions": actions or {"read"},
            "host_ids": host_ids or set(),
            "action_help": tokens.ACTION_HELP,
            "errors": errors or {},
        }
        return self.portal.render(request, "tokens.html", context, 422 if errors else 200)

    async def revoke(self, request: Request) -> Response:
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        try:
            name = await tokens.revoke_token(self.db, account, int(request.path_params["token_id"]))
        except NotFound:
            return await self.portal.not_found(request)
        request.session["flash"] = f"The token “{name}” is revoked; it stops working at once."
        return RedirectResponse("/tokens", status_code=303)
