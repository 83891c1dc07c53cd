"""A host's IPv6 prefix set-up in the portal: follow a router's prefix with an interface id."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from homing.domain.errors import Conflict, InvalidAddress, InvalidName, NotFound
from homing.service import portal as service
from homing.service import prefixes
from homing.web.portal.pages import FieldError, Portal, form_text

CODE = "PREFIX_HOST_INVALID"


class PrefixPage:
    """GET/POST /hosts/{id}/prefix, over the same service as the API and the CLI."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.db = portal.db

    async def page(self, request: Request) -> Response:
        found = await self.portal.own_host(request)
        if isinstance(found, Response):
            return found
        account, host = found
        host_id = host.id
        current = await prefixes.prefix_host_of(self.db, host_id)
        values = {
            "router": current.router if current else "",
            "iid": current.iid if current else "",
        }
        errors: dict[str, FieldError] = {}
        if request.method == "POST":
            form = await request.form()
            if form_text(form, "action") == "stop":
                await prefixes.clear_prefix_host(self.db, host.name)
                flash = f"{host.name} no longer follows a prefix; its AAAA stays until changed."
                return self._done(request, host_id, flash)
            values = {"router": form_text(form, "router").strip(), "iid": form_text(form, "iid")}
            try:
                made = await prefixes.set_prefix_host(
                    self.db,
                    host.name,
                    values["router"],
                    values["iid"],
                    actor=f"user:{account.user_id}",
                    via="web",
                )
            except (InvalidAddress, NotFound, Conflict, InvalidName) as exc:
                error = FieldError(CODE, str(exc))
                error.label = "Prefix host not accepted"
                errors = {"iid" if isinstance(exc, InvalidAddress) else "router": error}
            else:
                where = f" and points to {made.address}" if made.address else ""
                flash = f"{host.name} follows the prefix of {made.router}{where}."
                return self._done(request, host_id, flash)
        board = await service.dashboard(self.db, account)
        context = {
            "host": host,
            "current": current,
            "routers": [h.name for h in board.hosts if h.id != host_id],
            "values": values,
            "errors": errors,
        }
        return self.portal.render(request, "host_prefix.html", context, 422 if errors else 200)

    def _done(self, request: Request, host_id: int, flash: str) -> Response:
        request.session["flash"] = flash
        return RedirectResponse(f"/hosts/{host_id}/prefix", status_code=303)
