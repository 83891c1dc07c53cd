"""The operator's page for one zone's options: name servers and their addresses, its SOA,
the secondaries it notifies, who may transfer it, where its changes are pushed or where a
secondary zone comes from, the key its NOTIFYs are signed with (what `homing zone set`
changes)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homing.domain.errors import HomingError, NotFound
from homing.service import zoneoptions
from homing.service.accounts import Account
from homing.service.forms import AdminError
from homing.web.portal.admin import AdminPages, form_errors
from homing.web.portal.pages import FieldError, form_text


class ZoneOptionsPage:
    def __init__(self, pages: AdminPages) -> None:
        self.pages = pages
        self.db = pages.db

    async def page(self, request: Request, _account: Account) -> Response:
        try:
            view = await zoneoptions.read_options(self.db, int(request.path_params["zone_id"]))
        except NotFound:
            return await self.pages.portal.not_found(request)
        soa = view.soa
        values = {
            "ns": "\n".join(view.nameservers),
            "notify": "\n".join(view.notify),
            "allow_transfer": "\n".join(view.allow_transfer),
            **{name: str(getattr(soa, name)) for name in zoneoptions.SOA_FIELDS},
            **{name: getattr(view.routes, name) or "" for name in zoneoptions.ROUTE_FIELDS},
        }
        errors: dict[str, FieldError] = {}
        status = 200
        if request.method == "POST":
            form = await request.form()
            values = {name: form_text(form, name) for name in zoneoptions.FORM_FIELDS}
            try:
                options = zoneoptions.options_from_form(values, secondary=view.secondary)
                await zoneoptions.set_zone_options(self.db, view.name, options)
            except AdminError as exc:
                errors = form_errors(exc, "Not saved")
                status = 422
            except HomingError as exc:
                error = FieldError("ZONE_OPTIONS", str(exc))
                error.label = "Not saved"
                errors = {"form": error}
                status = 422
            else:
                return self.pages.done(request, f"{view.name}: options saved.", "/admin/zones")
        missing = await zoneoptions.nameservers_without_address(self.db, view.name)
        context = {"zone": view, "values": values, "errors": errors, "unaddressed": missing}
        return self.pages.render(request, "admin/zone_options.html", context, status)
