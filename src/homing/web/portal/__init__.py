"""The web portal: server-rendered pages (Jinja2) that work without JavaScript.

`portal_routes(homing)` gives the routes the app mounts; each carries the portal's
middleware (security headers, signed session, CSRF check), so the update protocols
and the REST API stay untouched by them.

The pages, one module per concern: pages.py what they all share (the Portal), accounts.py
the public site, sign-up and login, hosts.py the dashboard and a user's hosts (prefixes.py
a host's prefix set-up), groups.py, tokens.py, alerts.py (notifications), resets.py and
verify.py (mailed links), admin.py and the modules it uses for the operator's pages.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from homing.service.context import Homing
from homing.web.portal.accounts import AccountPages
from homing.web.portal.admin import AdminEndpoint, AdminPages
from homing.web.portal.alerts import AlertPages
from homing.web.portal.csrf import CSRFProtection
from homing.web.portal.delegations import DelegationsPage
from homing.web.portal.groups import GroupPages
from homing.web.portal.headers import SecurityHeaders
from homing.web.portal.hosts import HostPages
from homing.web.portal.inactivity import InactivityPage
from homing.web.portal.pages import Endpoint, Portal
from homing.web.portal.prefixes import PrefixPage
from homing.web.portal.resets import ResetPages
from homing.web.portal.sessionkey import SessionKey
from homing.web.portal.sessions import Sessions
from homing.web.portal.templating import STATIC
from homing.web.portal.tokens import TokenPages
from homing.web.portal.verify import VerifyPage
from homing.web.portal.zoneoptions import ZoneOptionsPage

__all__ = ["Portal", "portal_routes"]


def portal_routes(homing: Homing) -> list[BaseRoute]:
    portal = Portal(homing)
    account_pages = AccountPages(portal)
    host_pages = HostPages(portal)
    admin = AdminPages(portal)
    token_pages = TokenPages(portal)
    group_pages = GroupPages(portal)
    reset_pages = ResetPages(portal)
    alert_pages = AlertPages(portal)
    inactivity_page = InactivityPage(admin)
    delegation_pages = DelegationsPage(admin)
    key = SessionKey(homing.settings.data_dir / "session.key")
    stack = [
        Middleware(SecurityHeaders),
        Middleware(Sessions, key=key, trusted_proxies=homing.settings.trusted_proxies),
        Middleware(CSRFProtection, reject=portal.csrf_rejected),
    ]

    def page(path: str, endpoint: Endpoint, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, portal.guard(endpoint), methods=list(methods), middleware=stack)

    def admin_page(
        path: str, endpoint: AdminEndpoint, methods: tuple[str, ...] = ("GET",)
    ) -> Route:
        return Route(path, admin.guard(endpoint), methods=list(methods), middleware=stack)

    both = ("GET", "POST")
    post = ("POST",)
    return [
        page("/", account_pages.home),
        page("/pricing", account_pages.pricing),
        page("/signup", account_pages.signup, both),
        page("/login", account_pages.login, both),
        page("/logout", account_pages.logout, both),
        page("/forgot", reset_pages.forgot, both),
        page("/reset/{token}", reset_pages.reset, both),
        page("/verify/{token}", VerifyPage(portal).verify),
        page("/dashboard", host_pages.dashboard),
        page("/hosts/new", host_pages.host_new, both),
        page("/hosts/availability", host_pages.host_availability),
        page("/hosts/{host_id:int}", host_pages.host_page),
        page("/hosts/{host_id:int}/address", host_pages.host_address, post),
        page("/hosts/{host_id:int}/secret", host_pages.host_secret, post),
        page("/hosts/{host_id:int}/unblock", host_pages.host_unblock, post),
        page("/hosts/{host_id:int}/enable", host_pages.host_enable, post),
        page("/hosts/{host_id:int}/delete", host_pages.host_delete, both),
        page("/hosts/{host_id:int}/prefix", PrefixPage(portal).page, both),
        page("/tokens", token_pages.tokens, both),
        page("/groups", group_pages.groups, both),
        page("/groups/{group_id:int}", group_pages.group_page),
        page("/groups/{group_id:int}/members", group_pages.members, post),
        page("/groups/{group_id:int}/secret", group_pages.secret, post),
        page("/groups/{group_id:int}/delete", group_pages.delete, both),
        page("/tokens/{token_id:int}/revoke", token_pages.revoke, post),
        page("/notifications", alert_pages.page, both),
        page("/notifications/test", alert_pages.test, post),
        admin_page("/admin", admin.overview),
        admin_page("/admin/zones", admin.zones, both),
        admin_page("/admin/zones/{zone_id:int}/public", admin.zone_public, post),
        admin_page("/admin/zones/{zone_id:int}/auto-ptr", admin.zone_auto_ptr, post),
        admin_page("/admin/zones/{zone_id:int}/options", ZoneOptionsPage(admin).page, both),
        admin_page("/admin/zones/{zone_id:int}/delegations", delegation_pages.page, both),
        admin_page("/admin/zones/{zone_id:int}/delegations/remove", delegation_pages.remove, post),
        admin_page("/admin/plans", admin.plans, both),
        admin_page("/admin/plans/{plan_id:int}", admin.plan_edit, both),
        admin_page("/admin/plans/{plan_id:int}/default", admin.plan_default, post),
        admin_page("/admin/accounts", admin.accounts),
        admin_page("/admin/accounts/{account_id:int}", admin.account_change, post),
        admin_page("/admin/hosts", admin.blocked),
        admin_page("/admin/hosts/{host_id:int}/unblock", admin.unblock, post),
        admin_page("/admin/inactivity", inactivity_page.page, both),
        admin_page("/admin/inactivity/run", inactivity_page.run, post),
        Mount(
            "/static",
            app=StaticFiles(directory=STATIC),
            name="static",
            middleware=[Middleware(SecurityHeaders)],
        ),
    ]
