"""The operator's pages under /admin: overview, zones, plans, accounts, hosts blocked for abuse.

Every page needs an active account with role admin (others get 403); every form carries
the session's CSRF token like the rest of the portal.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from homing.domain.errors import NotFound
from homing.service import abuse, admin, figures, plans, reverse, zonelist
from homing.service.accounts import Account
from homing.service.activity import address_changes_by_hour
from homing.service.forms import AdminError
from homing.service.querycounts import queries_by_hour
from homing.web.portal.charts import bar_chart, queries_chart
from homing.web.portal.pages import MAX_FIELD, FieldError, Portal, form_text

log = logging.getLogger(__name__)

AdminEndpoint = Callable[[Request, Account], Awaitable[Response]]
PLAN_FIELDS = (
    "name",
    "max_hosts",
    "max_groups",
    "min_interval",
    "price",
    "currency",
    "period",
    "self_unblock_days",
)
ADMIN_LABELS = {
    "ZONE_INVALID": "Zone not accepted",
    "ZONE_DUPLICATE": "Zone exists already",
    "PLAN_INVALID": "Plan not saved",
    "PLAN_DUPLICATE": "Plan name taken",
    "ACCOUNT_SELF": "Not allowed",
    "ROLE_INVALID": "Role not known",
}


def form_errors(exc: AdminError, label: str | None = None) -> dict[str, FieldError]:
    """Every field the refusal names, each with its message under a heading in words."""
    errors = {}
    for field, message in exc.fields.items():
        error = FieldError(exc.code, message)
        error.label = label or ADMIN_LABELS.get(exc.code, "Not saved")
        errors[field] = error
    return errors


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1")
    return int(text) if text.isdigit() and 0 < len(text) < 6 else 1


def _plan_form(plan: Any | None) -> dict[str, str]:
    """The plan form's values: a plan's own, or the defaults for a new one."""
    if plan is None:
        return {
            "name": "",
            "max_hosts": "5",
            "max_groups": "1",
            "min_interval": "0",
            "price": "0.00",
            "currency": "EUR",
            "period": "month",
            "self_unblock_days": "1",
            "custom_ttl": "",
        }
    return {
        "name": plan.name,
        "max_hosts": str(plan.max_hosts),
        "max_groups": str(plan.max_groups),
        "min_interval": str(plan.min_interval),
        "price": f"{plan.price_cents // 100}.{plan.price_cents % 100:02d}",
        "currency": plan.currency,
        "period": plan.period,
        "self_unblock_days": str(plan.self_unblock_days),
        "custom_ttl": "on" if plan.custom_ttl else "",
    }


class AdminPages:
    """Handlers for /admin, sharing the portal's rendering, sessions and error pages."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.db = portal.db
        self.group_max_age = portal.homing.settings.group_member_max_age

    def guard(self, endpoint: AdminEndpoint) -> Callable[[Request], Awaitable[Response]]:
        """Log in first; an account without role admin gets 403."""

        async def guarded(request: Request) -> Response:
            account = await self.portal.current_account(request)
            if account is None:
                return RedirectResponse("/login", status_code=303)
            if account.role != "admin":
                return self.portal.render(
                    request,
                    "error.html",
                    {
                        "status": 403,
                        "title": "Operators only",
                        "message": "These pages are for the service's operators.",
                    },
                    status_code=403,
                )
            return await endpoint(request, account)

        return self.portal.guard(guarded)

    def render(
        self, request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> Response:
        return self.portal.render(request, name, {"section": name, **context}, status_code=status)

    @staticmethod
    def done(request: Request, message: str, to: str) -> Response:
        request.session["flash"] = message
        return RedirectResponse(to, status_code=303)

    # -- overview ---------------------------------------------------------------------

    async def overview(self, request: Request, _account: Account) -> Response:
        counts = await figures.figures(self.db)
        meter = self.portal.homing.dns_meter
        dns = meter.rate() if meter is not None else figures.QueryRate(None, 0, 0.0)
        # Without it no reset or verification mail goes out (links never follow Host).
        no_public_url = not self.portal.homing.settings.public_url
        rrl_rate = self.portal.homing.settings.rrl_rate
        hourly = await address_changes_by_hour(self.db, counts.at)
        context = {
            "queries_chart": queries_chart(*await queries_by_hour(self.db)),
            "changes_chart": bar_chart(
                hourly.starts, hourly.counts, label="Address changes per hour, last 24 hours"
            ),
            "figures": counts,
            "dns": dns,
            "no_public_url": no_public_url,
            "rrl_rate": rrl_rate,
        }
        return self.render(request, "admin/overview.html", context)

    # -- zones ------------------------------------------------------------------------

    async def zones(self, request: Request, _account: Account) -> Response:
        values = {"name": "", "ns": "", "public": "on"}
        errors: dict[str, FieldError] = {}
        status = 200
        if request.method == "POST":
            form = await request.form()
            values = {
                "name": form_text(form, "name").strip(),
                "ns": form_text(form, "ns").strip(),
                "public": form_text(form, "public"),
            }
            try:
                name = await zonelist.create_zone(
                    self.db,
                    values["name"],
                    values["ns"].replace(",", " ").split(),
                    public=values["public"] == "on",
                )
            except AdminError as exc:
                errors = form_errors(exc)
                status = 409 if exc.code == "ZONE_DUPLICATE" else 422
            else:
                offered = "offered to users" if values["public"] == "on" else "not offered yet"
                return self.done(request, f"Zone {name} is created ({offered}).", "/admin/zones")
        listed = await zonelist.list_zones(self.db)
        context = {"zones": listed, "values": values, "errors": errors}
        return self.render(request, "admin/zones.html", context, status)

    async def zone_public(self, request: Request, _account: Account) -> Response:
        form = await request.form()
        public = form_text(form, "public") == "1"
        try:
            name = await zonelist.set_zone_public(
                self.db, int(request.path_params["zone_id"]), public
            )
        except NotFound:
            return await self.portal.not_found(request)
        state = "is offered to users" if public else "is no longer offered to new hosts"
        return self.done(request, f"{name} {state}.", "/admin/zones")

    async def zone_auto_ptr(self, request: Request, _account: Account) -> Response:
        form = await request.form()
        on = form_text(form, "auto_ptr") == "1"
        try:
            name, count = await reverse.set_auto_ptr(
                self.db, int(request.path_params["zone_id"]), on
            )
        except NotFound:
            return await self.portal.not_found(request)
        done = f"{count} PTRs written" if on else f"{count} PTRs removed"
        state = "follow the hosts' addresses" if on else "no longer follow the hosts"
        return self.done(request, f"{name}: PTRs {state} ({done}).", "/admin/zones")

    # -- plans ------------------------------------------------------------------------

    async def plans(self, request: Request, _account: Account) -> Response:
        values = _plan_form(None)
        errors: dict[str, FieldError] = {}
        status = 200
        if request.method == "POST":
            form = await request.form()
            values = {name: form_text(form, name) for name in (*PLAN_FIELDS, "custom_ttl")}
            try:
                await plans.create_plan(self.db, plans.plan_input(values))
            except AdminError as exc:
                errors = form_errors(exc)
                status = 409 if exc.code == "PLAN_DUPLICATE" else 422
            else:
                return self.done(
                    request, f"Plan {values['name'].strip()} is created.", "/admin/plans"
                )
        rows = await plans.list_plans(self.db)
        context = {"rows": rows, "values": values, "errors": errors, "periods": plans.PERIODS}
        return self.render(request, "admin/plans.html", context, status)

    async def plan_edit(self, request: Request, _account: Account) -> Response:
        plan_id = int(request.path_params["plan_id"])
        plan = await plans.get_plan(self.db, plan_id)
        if plan is None:
            return await self.portal.not_found(request)
        values = _plan_form(plan)
        errors: dict[str, FieldError] = {}
        status = 200
        if request.method == "POST":
            form = await request.form()
            values = {name: form_text(form, name) for name in (*PLAN_FIELDS, "custom_ttl")}
            try:
                await plans.update_plan(self.db, plan_id, plans.plan_input(values))
            except AdminError as exc:
                errors = form_errors(exc)
                status = 409 if exc.code == "PLAN_DUPLICATE" else 422
            except NotFound:
                return await self.portal.not_found(request)
            else:
                return self.done(
                    request, f"Plan {values['name'].strip()} is saved.", "/admin/plans"
                )
        context = {
            "plan": plan,
            "values": values,
            "errors": errors,
            "periods": plans.PERIODS,
        }
        return self.render(request, "admin/plan_edit.html", context, status)

    async def plan_default(self, request: Request, _account: Account) -> Response:
        try:
            name = await plans.set_default_plan(self.db, int(request.path_params["plan_id"]))
        except NotFound:
            return await self.portal.not_found(request)
        return self.done(request, f"New accounts now get the {name} plan.", "/admin/plans")

    # -- accounts -----------------------------------------------------------------------

    async def accounts(self, request: Request, _account: Account) -> Response:
        query = request.query_params.get("q", "")[:MAX_FIELD]
        found = await admin.search_accounts(self.db, query, _page_number(request))
        offered = [row.plan for row in await plans.list_plans(self.db)]
        return self.render(request, "admin/accounts.html", {"found": found, "plans": offered})

    async def account_change(self, request: Request, account: Account) -> Response:
        target = int(request.path_params["account_id"])
        form = await request.form()
        action = form_text(form, "action")
        query = form_text(form, "q").strip()
        back = "/admin/accounts" + (f"?{urlencode({'q': query})}" if query else "")
        try:
            if action in ("disable", "enable"):
                user = await admin.set_account_status(
                    self.db,
                    target,
                    action == "enable",
                    acting_id=account.id,
                    group_max_age=self.group_max_age,
                )
                message = f"{user} is {action}d."
            elif action == "plan":
                plan_text = form_text(form, "plan_id")
                plan_id = int(plan_text) if plan_text.isdigit() else -1
                user, plan = await admin.set_account_plan(self.db, target, plan_id)
                message = f"{user} is on the {plan} plan now."
            elif action in ("make_admin", "make_user"):
                role = "admin" if action == "make_admin" else "user"
                user = await admin.set_account_role(self.db, target, role, acting_id=account.id)
                message = f"{user} is {'an operator (admin)' if role == 'admin' else 'a user'} now."
            else:
                return self.done(request, "Choose what to change.", back)
        except AdminError as exc:
            return self.done(request, " ".join(str(e) for e in form_errors(exc).values()), back)
        except NotFound:
            return await self.portal.not_found(request)
        return self.done(request, message, back)

    # -- hosts blocked for abuse ----------------------------------------------------------

    async def blocked(self, request: Request, _account: Account) -> Response:
        found = await abuse.blocked_hosts(self.db)
        return self.render(request, "admin/blocked.html", {"hosts": found})

    async def unblock(self, request: Request, _account: Account) -> Response:
        try:
            name = await abuse.unblock_host(
                self.db, int(request.path_params["host_id"]), group_max_age=self.group_max_age
            )
        except NotFound:
            return await self.portal.not_found(request)
        return self.done(
            request, f"{name} is unblocked; its updates are accepted again.", "/admin/hosts"
        )
