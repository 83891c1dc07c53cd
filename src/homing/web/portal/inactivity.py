"""The operator's inactivity policy page under /admin: the policy, where hosts stand, a run now."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homing.service import inactivity
from homing.service.accounts import Account
from homing.service.forms import AdminError
from homing.store.db import now
from homing.web.portal.admin import AdminPages, form_errors
from homing.web.portal.pages import FieldError, form_text

FIELDS = ("warn_days", "disable_days", "delete_days", "notice_days")


class InactivityPage:
    def __init__(self, pages: AdminPages) -> None:
        self.pages = pages
        self.db = pages.db
        self.settings = pages.portal.homing.settings

    async def page(self, request: Request, _account: Account) -> Response:
        policy, saved_at = await inactivity.get_policy(self.db, self.settings)
        values = {name: str(getattr(policy, name)) for name in FIELDS}
        errors: dict[str, FieldError] = {}
        status = 200
        if request.method == "POST":
            form = await request.form()
            values = {name: form_text(form, name).strip() for name in FIELDS}
            try:
                await inactivity.save_policy(self.db, inactivity.policy_input(values))
            except AdminError as exc:
                errors = form_errors(exc, "Policy not saved")
                status = 422
            else:
                return self.pages.done(
                    request,
                    "The inactivity policy is saved; it applies from the next run.",
                    "/admin/inactivity",
                )
        context = {
            "values": values,
            "errors": errors,
            "saved_at": saved_at,
            "counts": await inactivity.stage_counts(self.db),
        }
        return self.pages.render(request, "admin/inactivity.html", context, status)

    async def run(self, request: Request, _account: Account) -> Response:
        """Run the saved policy now (as the hourly job does)."""
        policy, _saved_at = await inactivity.get_policy(self.db, self.settings)
        report = await inactivity.run_policy(
            self.db, policy, now(), group_max_age=self.settings.group_member_max_age
        )
        return self.pages.done(
            request,
            f"Policy run: {report.warned} warning step(s), {report.disabled} host(s) disabled, "
            f"{report.deleted} deleted.",
            "/admin/inactivity",
        )
