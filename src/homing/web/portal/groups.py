"""The groups pages under the dashboard: create (secret shown once), members, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from homing.domain.errors import NotFound
from homing.service import groupcare
from homing.service import portal as service
from homing.service.accounts import Account
from homing.web.portal.pages import FieldError, Portal, form_text

GROUP_LABELS = {
    "GROUP_NAME_INVALID": "Group name not allowed",
    "GROUP_NAME_DUPLICATE": "Group name taken",
    "GROUP_MEMBER_INVALID": "Member not accepted",
    "GROUP_QUOTA": "Group limit reached",
}


def _error(exc: service.PortalError) -> FieldError:
    error = FieldError(exc.code, str(exc))
    error.label = GROUP_LABELS.get(exc.code, error.label)
    return error


def _ids(values: list[object]) -> list[int]:
    return [int(v) for v in values if isinstance(v, str) and v.isdigit() and len(v) < 10]


class GroupPages:
    """A user's groups in the portal, over homing.service.groupcare."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.db = portal.db

    @property
    def max_age(self) -> int:
        return self.portal.homing.settings.group_member_max_age

    async def groups(self, request: Request) -> Response:
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        if request.method == "GET":
            return await self._page(request, account, {"label": "", "zone": ""}, set())
        form = await request.form()
        values = {"label": form_text(form, "label").strip(), "zone": form_text(form, "zone")}
        members = _ids(list(form.getlist("members")))
        try:
            created = await groupcare.create_group(
                self.db,
                account,
                values["label"],
                values["zone"].strip(),
                members,
                group_max_age=self.max_age,
            )
        except service.PortalError as exc:
            return await self._page(
                request, account, values, set(members), {exc.field or "form": _error(exc)}
            )
        context = {"group": created, "base": self.portal.base_url(request)}
        return self.portal.render(request, "group_created.html", context, status_code=201)

    async def _page(
        self,
        request: Request,
        account: Account,
        values: dict[str, str],
        members: set[int],
        errors: dict[str, FieldError] | None = None,
    ) -> Response:
        board = await service.dashboard(self.db, account)
        context = {
            "groups": await groupcare.list_groups(self.db, account),
            "board": board,
            "zones": await service.offered_zones(self.db),
            "values": values,
            "members": members,
            "errors": errors or {},
        }
        codes = {e.code for e in (errors or {}).values()}
        status = 409 if any(c.endswith("_DUPLICATE") for c in codes) else (422 if codes else 200)
        return self.portal.render(request, "groups.html", context, status)

    async def group_page(self, request: Request) -> Response:
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        return await self._group(request, account)

    async def _group(
        self,
        request: Request,
        account: Account,
        errors: dict[str, FieldError] | None = None,
        status_code: int = 200,
    ) -> Response:
        group = await groupcare.get_group(self.db, account, int(request.path_params["group_id"]))
        if group is None:
            return await self.portal.not_found(request)
        board = await service.dashboard(self.db, account)
        inside = {m.id for m in group.members}
        context = {
            "group": group,
            "others": [h for h in board.hosts if h.id not in inside],
            "errors": errors or {},
        }
        return self.portal.render(request, "group.html", context, status_code=status_code)

    async def members(self, request: Request) -> Response:
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        group_id = int(request.path_params["group_id"])
        form = await request.form()
        host = _ids([form.get("host_id")])
        adding = form_text(form, "action") == "add"
        try:
            name = await groupcare.set_member(
                self.db,
                account,
                group_id,
                host[0] if host else 0,
                adding,
                group_max_age=self.max_age,
            )
        except NotFound:
            return await self.portal.not_found(request)
        except service.PortalError as exc:
            return await self._group(request, account, {"members": _error(exc)}, 422)
        request.session["flash"] = (
            f"{name} is in the group now." if adding else f"{name} left the group."
        )
        return RedirectResponse(f"/groups/{group_id}", status_code=303)

    async def secret(self, request: Request) -> Response:
        """A new group secret, shown once (the old one stops working)."""
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        try:
            created = await groupcare.regenerate_secret(
                self.db, account, int(request.path_params["group_id"])
            )
        except NotFound:
            return await self.portal.not_found(request)
        context = {
            "group": created,
            "base": self.portal.base_url(request),
            "heading": f"New secret for {created.name}",
        }
        return self.portal.render(request, "group_created.html", context)

    async def delete(self, request: Request) -> Response:
        account = await self.portal.current_account(request)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        group_id = int(request.path_params["group_id"])
        if request.method == "GET":
            group = await groupcare.get_group(self.db, account, group_id)
            if group is None:
                return await self.portal.not_found(request)
            return self.portal.render(request, "group_delete.html", {"group": group})
        try:
            name = await groupcare.delete_group(self.db, account, group_id)
        except NotFound:
            return await self.portal.not_found(request)
        request.session["flash"] = f"The group {name} is deleted."
        return RedirectResponse("/groups", status_code=303)
