"""The operator's page for one zone's delegations: subzones handed to other name servers
(what `homing zone delegate` and `zone undelegate` change)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homing.domain.errors import HomingError, NotFound
from homing.service import delegations
from homing.service.accounts import Account
from homing.service.zoneoptions import form_lines
from homing.web.portal.admin import AdminPages
from homing.web.portal.pages import FieldError, form_text


class DelegationsPage:
    def __init__(self, pages: AdminPages) -> None:
        self.pages = pages
        self.db = pages.db

    async def page(self, request: Request, _account: Account) -> Response:
        try:
            view = await delegations.list_delegations(self.db, int(request.path_params["zone_id"]))
        except NotFound:
            return await self.pages.portal.not_found(request)
        values = {"child": "", "ns": ""}
        errors: dict[str, FieldError] = {}
        status = 200
        if request.method == "POST":
            form = await request.form()
            values = {name: form_text(form, name) for name in values}
            try:
                done = await delegations.delegate(
                    self.db, view.zone, values["child"], form_lines(values["ns"])
                )
            except HomingError as exc:
                error = FieldError("DELEGATION", str(exc))
                error.label = "Not delegated"
                errors = {"form": error}
                status = 422
            else:
                to = f"/admin/zones/{view.zone_id}/delegations"
                return self.pages.done(request, f"{done.child}: delegated.", to)
        context = {"zone": view, "values": values, "errors": errors}
        return self.pages.render(request, "admin/zone_delegations.html", context, status)

    async def remove(self, request: Request, _account: Account) -> Response:
        try:
            view = await delegations.list_delegations(self.db, int(request.path_params["zone_id"]))
        except NotFound:
            return await self.pages.portal.not_found(request)
        form = await request.form()
        to = f"/admin/zones/{view.zone_id}/delegations"
        try:
            done = await delegations.undelegate(self.db, view.zone, form_text(form, "child"))
        except HomingError as exc:
            return self.pages.done(request, f"Not removed: {exc}", to)
        return self.pages.done(request, f"{done.child}: delegation removed.", to)
